package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/faxbox/faxbox/dahdi"
	"github.com/faxbox/faxbox/firmware/destctl"
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
	d.DAHDI = &dahdi.Config{}
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

// TestDAHDILineGroups: the board's FXO card becomes a line group dialling
// DAHDI/g1; a configured group of that name keeps its prefixes and windows;
// the config's spans replace the board's; a bad span is refused at load.
func TestDAHDILineGroups(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.json")
	load := func(js string) (Config, error) {
		t.Helper()
		os.WriteFile(p, []byte(js), 0o600)
		return Load(p)
	}
	c, err := load(`{"panel":{"board":"pc-x86"},"asterisk":{}}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.LineGroups) != 1 || !reflect.DeepEqual(c.LineGroups[0], LineGroup{Name: "trunk", Channels: 4, Dial: "DAHDI/g1/%s"}) || c.DAHDI == nil || len(c.DAHDI.Spans) != 1 {
		t.Fatalf("line groups %+v, dahdi %+v", c.LineGroups, c.DAHDI)
	}
	c, err = load(`{"panel":{"board":"pc-x86"},"asterisk":{},"line_groups":[{"name":"trunk","prefixes":["0"],"windows":["08:00-20:00"]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if g := c.LineGroups; len(g) != 1 || g[0].Dial != "DAHDI/g1/%s" || g[0].Channels != 4 || g[0].Prefixes[0] != "0" || len(g[0].Windows) != 1 {
		t.Fatalf("merged group %+v", g)
	}
	c, err = load(`{"panel":{"board":"pc-x86"},"asterisk":{},"dahdi":{"tone_zone":"us","spans":[{"type":"e1","first":1,"group":2,"line_group":"isdn"}]}}`)
	if err != nil {
		t.Fatal(err)
	}
	if g := c.LineGroups; len(g) != 1 || !reflect.DeepEqual(g[0], LineGroup{Name: "isdn", Channels: 30, Dial: "DAHDI/g2/%s"}) || c.DAHDI.ToneZone != "us" {
		t.Fatalf("config spans: %+v", g)
	}
	// Without Asterisk there is nothing to dial DAHDI with: no line group.
	if c, err = load(`{"panel":{"board":"pc-x86"}}`); err != nil || len(c.LineGroups) != 0 || c.DAHDI == nil {
		t.Fatalf("no asterisk: %+v %v", c.LineGroups, err)
	}
	if c, err = load(`{}`); err != nil || c.DAHDI != nil {
		t.Fatalf("no board: %+v %v", c.DAHDI, err)
	}
	if _, err = load(`{"asterisk":{},"dahdi":{"spans":[{"type":"fxo","first":1,"channels":2},{"type":"fxo","first":2,"channels":2}]}}`); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Fatalf("overlapping spans: %v", err)
	}
	if _, err = load(`{"dahdi":{"context":"x]\n[evil","spans":[{"type":"fxo","first":1,"channels":2}]}}`); err == nil {
		t.Fatal("a context that breaks chan_dahdi.conf was accepted")
	}
}

// TestFirstBoot: the image's default config becomes the box's own on the
// data partition, with a fresh token and AMI secret; a second boot leaves it
// alone; a broken default is refused without writing anything.
func TestFirstBoot(t *testing.T) {
	dir := t.TempDir()
	base, out := filepath.Join(dir, "base.json"), filepath.Join(dir, "data", "faxbox.json")
	os.WriteFile(base, []byte(`{"listen": "0.0.0.0:8080", "asterisk": {"ami_addr": "127.0.0.1:5038"}, "retention": "48h"}`), 0o644)
	tok, created, err := FirstBoot(base, out)
	if err != nil || !created || len(tok) != 32 {
		t.Fatalf("first boot: %q %v %v", tok, created, err)
	}
	c, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if c.Asterisk.AMIUser != "faxbox" || c.Asterisk.AMIAddr != "127.0.0.1:5038" {
		t.Fatalf("AMI login defaults: user %q addr %q (manager.conf is rendered for faxbox@127.0.0.1:5038)", c.Asterisk.AMIUser, c.Asterisk.AMIAddr)
	}
	if len(c.Tokens) != 1 || c.Tokens[0] != tok || len(c.Asterisk.AMISecret) != 32 || c.Listen != "0.0.0.0:8080" || c.Retention.D().Hours() != 48 {
		t.Fatalf("config: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v: the token is a secret", st.Mode())
	}
	before, _ := os.ReadFile(out)
	if tok, created, err := FirstBoot(base, out); err != nil || created || tok != "" {
		t.Fatalf("second boot: %q %v %v", tok, created, err)
	}
	if after, _ := os.ReadFile(out); string(after) != string(before) {
		t.Fatal("the second boot changed the config")
	}
	// Tokens in the default are kept; a default that does not load is refused.
	os.WriteFile(base, []byte(`{"tokens": ["given-token-1"]}`), 0o644)
	out2 := filepath.Join(dir, "two.json")
	if tok, created, err := FirstBoot(base, out2); err != nil || !created || tok != "" {
		t.Fatalf("given token: %q %v %v", tok, created, err)
	}
	os.WriteFile(base, []byte(`{"tokenz": []}`), 0o644)
	out3 := filepath.Join(dir, "three.json")
	if _, _, err := FirstBoot(base, out3); err == nil {
		t.Fatal("a default with an unknown key was accepted")
	}
	if _, err := os.Stat(out3); !os.IsNotExist(err) {
		t.Fatal("a refused default left a file")
	}
}

// TestDestinations: the destinations rules load and match; a bad rule is a
// load error naming the file, the rule's index and pattern, and Validate
// refuses one set in code.
func TestDestinations(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(p, []byte(`{"tokens":["abcdefgh1"],"destinations":[
		{"prefix":"107","max_concurrent":4},
		{"regex":"108","max_batch":10,"batch_wait":"20s","retry_waits":{"line.busy":"30s"}},
		{"prefix":"0900","reject":"premium rate"}]}`), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	dc, err := c.DestControls()
	if err != nil {
		t.Fatal(err)
	}
	if m := dc.Match("107"); m.Rule != 0 || m.MaxConcurrent != 4 || m.MaxBatch != 1 {
		t.Errorf("107: %+v", m)
	}
	if m := dc.Match("108"); m.Rule != 1 || m.MaxConcurrent != 1 || m.MaxBatch != 10 || m.BatchWait.String() != "20s" {
		t.Errorf("108: %+v", m)
	}
	if r, ok := dc.Reject("0900123"); !ok || r != "premium rate" {
		t.Errorf("0900: %q %v", r, ok)
	}
	for js, want := range map[string][]string{
		`{"destinations":[{"prefix":"1"},{"regex":"10(7"}]}`:                        {p, `destinations[1] (regex "10(7")`, "bad regex"},
		`{"destinations":[{"prefix":"1","retry_waits":{"line.bsy":"1m"}}]}`:         {`destinations[0] (prefix "1")`, `unknown failure code "line.bsy"`},
		`{"destinations":[{"prefix":"1","max_batch":51,"max_concurrent":65}]}`:      {"max_batch 51", "max_concurrent 65"},
		`{"destinations":[{"prefix":"1","max_concurrent":4,"max_simultaneous":1}]}`: {`unknown field "max_simultaneous"`},
	} {
		os.WriteFile(p, []byte(js), 0o600)
		_, err := Load(p)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: load error %v does not say %s", js, err, w)
			}
		}
	}
	c = Default()
	c.Tokens = []string{"abcdefgh1"}
	c.Destinations = []destctl.Rule{{Prefix: "1", MaxBatch: -1}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max_batch -1") {
		t.Errorf("Validate: %v", err)
	}
}
