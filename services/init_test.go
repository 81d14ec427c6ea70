package services

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitScriptsBootInQemu boots S20dahdi and S95faxbox under BusyBox init
// in qemu (tools/qemu-init): the first script makes the box's config with a
// fresh API token (faxbox firstboot), which the API then accepts; S20dahdi
// renders the board's system.conf (the
// kernel has no DAHDI driver, so it stops there); faxbox starts from its
// script, answers /healthz, and stops cleanly on poweroff.
func TestInitScriptsBootInQemu(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "faxbox")
	build := exec.Command("go", "build", "-o", bin, "../cmd/faxbox")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command("bash", "../tools/qemu-init/run.sh", bin).CombinedOutput()
	console := string(out)
	if err != nil {
		t.Fatalf("qemu: %v\n%s", err, console)
	}
	for _, want := range []string{"faxbox: first boot: API token ", "FAXBOX-INIT-AUTH yes", "Starting dahdi: no DAHDI hardware", "FAXBOX-INIT-DAHDI fxsks = 1-4", "Starting faxbox: OK", "FAXBOX-INIT-HEALTHZ yes", "FAXBOX-INIT-STOP /etc/init.d/S95faxbox ok", `msg="faxbox ready"`, `msg="faxbox stopped"`} {
		if !strings.Contains(console, want) {
			t.Errorf("the boot did not show %q", want)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", console)
	}
}

func TestInitScriptsShape(t *testing.T) {
	for _, name := range []string{"S20dahdi", "S50asterisk", "S95faxbox"} {
		b, err := os.ReadFile(filepath.Join("init", name))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, want := range []string{"start)", "stop)", "restart)", "status)"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s has no %s", name, want)
			}
		}
		if out, err := exec.Command("sh", "-n", filepath.Join("init", name)).CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v %s", name, err, out)
		}
	}
	b, _ := os.ReadFile("init/S50asterisk")
	if !strings.Contains(string(b), "faxbox render-config") || !strings.Contains(string(b), "-U asterisk") {
		t.Error("S50asterisk must render the configuration first and run as the asterisk user")
	}
}
