package services_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faxbox/faxbox/tools/lab"
)

// TestInitScriptsWithAsteriskInQemu boots S20dahdi, S50asterisk and
// S95faxbox under BusyBox init in qemu with the real Asterisk (the lab's
// chroot as the guest's root, read-only, with a tmpfs overlay;
// tools/qemu-init/asterisk.sh) and the image's kind of config: the first
// script makes the box's config (token, AMI secret), S50asterisk renders
// Asterisk's configuration onto the data partition and starts Asterisk as
// the asterisk user with res_fax_spandsp, faxbox logs in to its manager
// interface, and poweroff stops both cleanly.
func TestInitScriptsWithAsteriskInQemu(t *testing.T) {
	if !lab.Ready() {
		t.Fatalf("the lab's Asterisk chroot is not set up at %s: run make lab-setup (make test does)", lab.Root())
	}
	bin := filepath.Join(t.TempDir(), "faxbox")
	build := exec.Command("go", "build", "-o", bin, "../cmd/faxbox")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command("bash", "../tools/qemu-init/asterisk.sh", bin, lab.Root()).CombinedOutput()
	console := string(out)
	if err != nil {
		t.Fatalf("qemu: %v\n%s", err, console)
	}
	for _, want := range []string{"faxbox: first boot: API token ", "Starting faxbox: OK",
		"FAXBOX-AST-HEALTHZ yes", "FAXBOX-AST-AMI-CONNECTED yes", "FAXBOX-AST-USER asterisk", "FAXBOX-AST-FAXMOD 1",
		"FAXBOX-AST-STOP /etc/init.d/S95faxbox ok", "FAXBOX-AST-STOP /etc/init.d/S50asterisk ok", "FAXBOX-AST-LEFT 0"} {
		if !strings.Contains(console, want) {
			t.Errorf("the boot did not show %q", want)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", console)
	}
}
