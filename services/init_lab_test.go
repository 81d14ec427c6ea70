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
	bin := guestFaxbox(t)
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

// TestDAHDIInQemu runs real DAHDI in the same kind of guest
// (tools/qemu-init/asterisk.sh … dahdi): DAHDI's kernel modules built for the
// guest's kernel from Debian's dahdi-source, a 4-channel dynamic span on
// the local loopback driver as the box's FXO line group "trunk".
// S20dahdi renders system.conf and applies it with dahdi_cfg (spans
// assigned without udev, device nodes for the asterisk user); chan_dahdi
// loads the rendered chan_dahdi.conf; the span has no peer, so DAHDI raises
// a red alarm, which faxbox learns through AMI (DAHDIShowChannels after
// FullyBooted) and shows as 4 lines down and in /v1/status.
func TestDAHDIInQemu(t *testing.T) {
	bin := guestFaxbox(t)
	out, err := exec.Command("bash", "../tools/qemu-init/asterisk.sh", bin, lab.Root(), "dahdi").CombinedOutput()
	console := string(out)
	if err != nil {
		t.Fatalf("qemu: %v\n%s", err, console)
	}
	for _, want := range []string{"Starting dahdi: OK", "FAXBOX-AST-DAHDI-SPANS 1", "Dynamic 'loc' span at '1:0'", "FAXBOX-AST-DAHDI-CHANNELS 4",
		"FAXBOX-AST-DAHDI-DOWN 4", `"channel 1: Red Alarm"`, "FAXBOX-AST-DAHDI-ALARMS", "FAXBOX-AST-STOP /etc/init.d/S20dahdi ok", "FAXBOX-AST-LEFT 0"} {
		if !strings.Contains(console, want) {
			t.Errorf("the boot did not show %q", want)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", console)
	}
}

// guestFaxbox checks that the lab's chroot is there and builds a static
// faxbox for the guest.
func guestFaxbox(t *testing.T) string {
	t.Helper()
	if !lab.Ready() {
		t.Fatalf("the lab's Asterisk chroot is not set up at %s: run make lab-setup (make test does)", lab.Root())
	}
	bin := filepath.Join(t.TempDir(), "faxbox")
	build := exec.Command("go", "build", "-o", bin, "../cmd/faxbox")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}
