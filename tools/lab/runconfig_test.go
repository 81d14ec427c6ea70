package lab

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/faxbox/faxbox/firmware/config"
)

// TestRunConfigLoads: the file `make run` starts faxbox with passes the
// box's own load and validation (the token comes from -token), and carries
// the lab's destination controls and loopback callbacks.
func TestRunConfigLoads(t *testing.T) {
	l := &Lab{Opts: Options{Channels: 4},
		Box:    &Instance{Dir: "/tmp/faxbox-lab/lab/box", SIPPort: 15060, AMIPort: 15062, RTPStart: 15160, UDPTLStart: 15360, AMIUser: BoxAMIUser, AMISecret: BoxAMISecret},
		Remote: &Instance{Dir: "/tmp/faxbox-lab/lab/remote", SIPPort: 15061, AMIPort: 15063},
	}
	b, err := l.RunConfig("/work/.run/data")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "faxbox.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	c.Tokens = []string{"run-token-1"}
	if err := c.Validate(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	dc, err := c.DestControls()
	if err != nil {
		t.Fatal(err)
	}
	if m := dc.Match("107"); m.MaxConcurrent != 4 || m.MaxBatch != 1 {
		t.Errorf("107: %+v", m)
	}
	if m := dc.Match("108"); m.MaxConcurrent != 1 || m.MaxBatch != 10 {
		t.Errorf("108: %+v", m)
	}
	if m := dc.Match("100"); m.Rule != -1 {
		t.Errorf("100 matched rule %d", m.Rule)
	}
	if !c.Webhook.AllowLoopback || c.DataDir != "/work/.run/data" || c.Asterisk.AMIAddr != "127.0.0.1:15062" || len(c.LineGroups) != 1 {
		t.Errorf("run config: %+v", c)
	}
}
