package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestLoadOverDefaults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(p, []byte(`{"tokens":["abcdefgh1"],"defaults":{"max_attempts":5},"test_line":{"page_time":"1s"}}`), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Defaults.MaxAttempts != 5 || c.Defaults.RetryInterval.D().String() != "5m0s" || c.TestLine.PageTime.D().String() != "1s" || c.TestLine.Prefix != "9999000" {
		t.Fatalf("%+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte(`{"tokenz":["x"]}`), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "tokenz") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestValidate(t *testing.T) {
	c := Default()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("no token: %v", err)
	}
	c.Tokens = []string{"abcdefgh1"}
	c.LineGroups = []LineGroup{{Name: "Bad Name", Channels: 0, Prefixes: []string{"0x"}}}
	err := c.Validate()
	for _, want := range []string{"Bad Name", "channels", `"0x"`, "asterisk"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

// TestREADMEDocumentsEveryKey keeps the README's configuration table and the
// Config struct in step.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| (`[^|]+) \\|")
	key := regexp.MustCompile("`([a-z_.0-9]+)`")
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		for _, k := range key.FindAllStringSubmatch(m[1], -1) {
			doc[k[1]] = true
		}
	}
	d := Default()
	d.Asterisk = &Asterisk{Trunk: &Trunk{}}
	raw, _ := json.Marshal(d)
	var m map[string]any
	json.Unmarshal(raw, &m)
	var keys []string
	var walk func(prefix string, v map[string]any)
	walk = func(prefix string, v map[string]any) {
		for k, x := range v {
			full := prefix + k
			if sub, ok := x.(map[string]any); ok {
				walk(full+".", sub)
				continue
			}
			keys = append(keys, full)
		}
	}
	walk("", m)
	for _, k := range keys {
		if !doc[k] {
			t.Errorf("config key %s is not documented in the README", k)
		}
	}
	for k := range doc {
		found := false
		for _, c := range keys {
			if c == k {
				found = true
			}
		}
		if !found && strings.Contains(k, "_") || !found && strings.Contains(k, ".") {
			t.Errorf("README documents %s, which is not a config key", k)
		}
	}
}
