//go:build lab

package dahdi

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/faxbox/faxbox/tools/lab/labroot"
)

// TestDahdiCfg hands the rendered system.conf to the real dahdi_cfg in test
// mode (-t: parse and check every line, apply nothing), the one in the lab's
// chroot (the host has no DAHDI package). dahdi_cfg opens /dev/dahdi/ctl
// before it reads the file, so it runs in a private mount namespace with a
// stand-in; no DAHDI driver is needed.
func TestDahdiCfg(t *testing.T) {
	sys, _, err := Render(layout)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := dahdiCfg(t, sys); err != nil {
		t.Fatalf("dahdi_cfg refuses the rendered system.conf: %v\n%s\n%s", err, out, sys)
	}
	// The check can fail: a span line with a framing dahdi_cfg does not know.
	bad := strings.Replace(string(sys), "ccs,hdb3", "ccs,b8zz", 1)
	if out, err := dahdiCfg(t, []byte(bad)); err == nil {
		t.Fatalf("dahdi_cfg accepted a bad span line:\n%s", out)
	}
}

// TestDynamicSpans: dynamic spans (TDMoE, local loopback) get their
// dynamic= line before the channels, pass the real dahdi_cfg, and must come
// last.
func TestDynamicSpans(t *testing.T) {
	c := Config{Spans: []Span{
		{Type: "fxo", First: 1, Channels: 4, Group: 1, Dynamic: "loc,1:0"},
		{Type: "e1", First: 5, Group: 2, Dynamic: "eth,eth0/00:02:b3:35:43:9c/0", Timing: 1},
	}}
	sys, _, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(sys)
	for _, want := range []string{"dynamic = loc,1:0,4,0\n", "dynamic = eth,eth0/00:02:b3:35:43:9c/0,31,1\n"} {
		if !strings.Contains(s, want) || strings.Index(s, want) > strings.Index(s, "fxsks") {
			t.Errorf("system.conf lacks %q before the channels:\n%s", strings.TrimSpace(want), s)
		}
	}
	if out, err := dahdiCfg(t, sys); err != nil {
		t.Fatalf("dahdi_cfg refuses the dynamic spans: %v\n%s\n%s", err, out, sys)
	}
	for name, bad := range map[string]Config{
		"injection":  {Spans: []Span{{Type: "fxo", First: 1, Channels: 1, Dynamic: "loc,1:0\nfxsks=9"}}},
		"driver":     {Spans: []Span{{Type: "fxo", First: 1, Channels: 1, Dynamic: "tor,1"}}},
		"card after": {Spans: []Span{{Type: "fxo", First: 1, Channels: 1, Dynamic: "loc,1:0"}, {Type: "fxo", First: 2, Channels: 1}}},
	} {
		if _, _, err := Render(bad); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
}

// dahdiCfg runs the lab chroot's real dahdi_cfg -t on conf (see
// TestDahdiCfg). The file goes in on stdin and lives on the command's own
// tmpfs /dev, which its private mount namespace drops afterwards.
func dahdiCfg(t *testing.T, conf []byte) (string, error) {
	t.Helper()
	cmd, err := labroot.Command(context.Background(), "sh", "-ec",
		`mount -t tmpfs faxbox-dahdi /dev; mkdir /dev/dahdi; : > /dev/dahdi/ctl; cat > /dev/system.conf
exec dahdi_cfg -t -c /dev/system.conf`)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = bytes.NewReader(conf)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
