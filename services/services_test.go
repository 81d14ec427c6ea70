package services

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faxbox/faxbox/dahdi"
	"github.com/faxbox/faxbox/firmware/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sample() config.Config {
	c := config.Default()
	c.Asterisk = &config.Asterisk{AMISecret: "s3cretpass", SIPPort: 5060, AMIPort: 5038, BindAddr: "0.0.0.0",
		Trunk: &config.Trunk{Name: "carrier", Host: "192.0.2.10:5060", Username: "box1", Password: "pw123456", T38: true, Qualify: 30}}
	c.Calls.Callback.Number = "5000"
	return c
}

func TestGolden(t *testing.T) {
	files, err := Render(sample())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d files", len(files))
	}
	for name, got := range files {
		golden := filepath.Join("testdata", name+".golden")
		if *update {
			os.WriteFile(golden, got, 0o644)
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%s: %v (run go test ./services -update)", name, err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from %s:\n%s", name, golden, got)
		}
	}
}

func TestSecurityOfRenderedFiles(t *testing.T) {
	files, _ := Render(sample())
	mgr := string(files["manager.conf"])
	classes := 0
	for _, line := range strings.Split(mgr, "\n") {
		k, v, _ := strings.Cut(line, "=")
		if k = strings.TrimSpace(k); k != "read" && k != "write" {
			continue
		}
		for _, class := range strings.Split(v, ",") {
			classes++
			switch c := strings.TrimSpace(class); {
			case c == "command", c == "config", c == "agi", c == "all":
				t.Errorf("manager.conf grants %q: %s", class, line)
			case c == "system" && k == "write":
				// Reading system events (ContactStatus, alarms) is fine;
				// running system actions (restart, reload) is not.
				t.Errorf("manager.conf grants system actions: %s", line)
			}
		}
	}
	if classes == 0 {
		t.Error("no read/write lines in manager.conf")
	}
	if !strings.Contains(mgr, "bindaddr = 127.0.0.1") {
		t.Error("AMI not bound to 127.0.0.1")
	}
	mods := string(files["modules.conf"])
	if !strings.Contains(mods, "autoload = no") || !strings.Contains(mods, "load => res_fax_spandsp.so") {
		t.Error("modules.conf")
	}
	pj := string(files["pjsip.conf"])
	for _, want := range []string{"t38_udptl = yes", "t38_udptl_ec = redundancy", "t38_udptl_maxdatagram = 400", "direct_media = no", "qualify_frequency = 30", "[carrier-g711]"} {
		if !strings.Contains(pj, want) {
			t.Errorf("pjsip.conf lacks %q", want)
		}
	}
}

func TestHostileConfigRefused(t *testing.T) {
	for name, mod := range map[string]func(*config.Asterisk){
		"newline in secret":   func(a *config.Asterisk) { a.AMISecret = "abcdefgh\n[evil]" },
		"semicolon in trunk":  func(a *config.Asterisk) { a.Trunk.Name = "a;b" },
		"bracket in password": func(a *config.Asterisk) { a.Trunk.Password = "pw]\nallow=all" },
		"relative spool":      func(a *config.Asterisk) { a.SpoolDir = "spool" },
		"space in dir":        func(a *config.Asterisk) { a.ReceiveDir = "/var/fax in" },
		"bad bind":            func(a *config.Asterisk) { a.BindAddr = "0.0.0.0\nx" },
		"bad host":            func(a *config.Asterisk) { a.Trunk.Host = "host;x:5060" },
	} {
		c := sample()
		mod(c.Asterisk)
		if _, err := Render(c); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
}

func TestRenderTo(t *testing.T) {
	dir := t.TempDir()
	names, err := RenderTo(sample(), dir)
	if err != nil || len(names) < 10 {
		t.Fatal(names, err)
	}
	st, _ := os.Stat(filepath.Join(dir, "manager.conf"))
	if st.Mode().Perm()&0o004 != 0 {
		t.Errorf("manager.conf is world-readable: %v", st.Mode())
	}
	// Asterisk reads the files where they were written, not config_dir's
	// default /etc/asterisk (the image renders them onto its data partition).
	if b, _ := os.ReadFile(filepath.Join(dir, "asterisk.conf")); !strings.Contains(string(b), "astetcdir => "+dir+"\n") {
		t.Errorf("asterisk.conf does not point Asterisk at %s:\n%s", dir, b)
	}
}

// TestDAHDI: a box with DAHDI line cards gets chan_dahdi.conf, loads
// chan_dahdi and puts the echo canceller into fax mode on DAHDI calls; a
// box without gets none of it (the lab's golden files above).
func TestDAHDI(t *testing.T) {
	c := sample()
	c.DAHDI = &dahdi.Config{Spans: []dahdi.Span{{Type: "fxo", First: 1, Channels: 4, Group: 1}}}
	files, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(files["chan_dahdi.conf"]), "signalling = fxs_ks") || !strings.Contains(string(files["chan_dahdi.conf"]), "context = faxbox-receive") {
		t.Errorf("chan_dahdi.conf:\n%s", files["chan_dahdi.conf"])
	}
	for _, m := range []string{"load => chan_dahdi.so", "load => app_exec.so"} {
		if !strings.Contains(string(files["modules.conf"]), m) {
			t.Errorf("modules.conf lacks %s", m)
		}
	}
	if n := strings.Count(string(files["extensions.conf"]), "Set(CHANNEL(echocan_mode)=fax)"); n != 2 {
		t.Errorf("echocan_mode=fax %d times in extensions.conf (send and receive)", n)
	}
	mgr := string(files["manager.conf"])
	if !strings.Contains(mgr, "read = call,reporting,user,originate,dtmf,system\n") || !strings.Contains(mgr, "write = call,originate,reporting\n") {
		t.Errorf("with DAHDI, faxbox reads system events (alarms) and writes nothing more:\n%s", mgr)
	}
	plain, _ := Render(sample())
	if _, ok := plain["chan_dahdi.conf"]; ok || strings.Contains(string(plain["modules.conf"]), "chan_dahdi") || len(Modules) != strings.Count(string(plain["modules.conf"]), "load =>") {
		t.Error("a box without DAHDI renders DAHDI parts")
	}
	c.DAHDI.Context = "evil]\n[x"
	if _, err := Render(c); err == nil {
		t.Error("a context that breaks chan_dahdi.conf was rendered")
	}
}

// TestSendFAXOptions: t38=on requests T.38 itself (z) without audio; every
// other attempt takes T.38 only when the far end asks and G.711 otherwise,
// in the same call (f without z: the lab's G.711-only 101 failed every first
// call with z).
func TestSendFAXOptions(t *testing.T) {
	files, err := Render(sample())
	if err != nil {
		t.Fatal(err)
	}
	ext := string(files["extensions.conf"])
	for _, want := range []string{" same => n,SendFAX(${FAXBOX_FILE},dz)\n", " same => n(fallback),SendFAX(${FAXBOX_FILE},df)\n"} {
		if !strings.Contains(ext, want) {
			t.Errorf("extensions.conf lacks %q", strings.TrimSpace(want))
		}
	}
	if n := strings.Count(ext, "SendFAX("); n != 2 {
		t.Errorf("%d SendFAX in extensions.conf, want 2", n)
	}
}
