package config

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/faxbox/faxbox/internal/atomicfile"
)

// FirstBoot makes the box's own configuration on its first start: when out
// does not exist, it copies base (the read-only image's default) to out,
// adding a random API token when base has none and a random AMI secret when
// base has an asterisk section without one, and returns the token it made
// ("" when base had tokens). out is written with mode 0600 through a
// temporary file and a rename, and must load (Load) before it is kept. When
// out exists, FirstBoot changes nothing and returns created false.
func FirstBoot(base, out string) (token string, created bool, err error) {
	if _, err := os.Stat(out); err == nil {
		return "", false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("config: first boot: %w", err)
	}
	b, err := os.ReadFile(base)
	if err != nil {
		return "", false, fmt.Errorf("config: first boot: %w", err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return "", false, fmt.Errorf("config: first boot: %s: %w", base, err)
	}
	if toks, _ := m["tokens"].([]any); len(toks) == 0 {
		token = randomHex(16)
		m["tokens"] = []any{token}
	}
	if a, ok := m["asterisk"].(map[string]any); ok {
		if s, _ := a["ami_secret"].(string); s == "" {
			a["ami_secret"] = randomHex(16)
		}
	}
	nb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", false, fmt.Errorf("config: first boot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
		return "", false, fmt.Errorf("config: first boot: %w", err)
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, append(nb, '\n'), 0o600); err != nil {
		return "", false, fmt.Errorf("config: first boot: %w", err)
	}
	if _, err := Load(tmp); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("config: first boot: the result does not load: %w", err)
	}
	if err := atomicfile.Rename(tmp, out, 0o600); err != nil {
		return "", false, fmt.Errorf("config: first boot: %w", err)
	}
	return token, true, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
