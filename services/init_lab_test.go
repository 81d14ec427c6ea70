//go:build lab

package services_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/faxbox/faxbox/tools/lab"
)

// TestInitScriptsBootInQemu boots S20dahdi and S95faxbox under BusyBox init
// in qemu (tools/qemu-init): the first script makes the box's config with a
// fresh API token (faxbox firstboot), which the API then accepts; S20dahdi
// renders the board's system.conf (the
// kernel has no DAHDI driver, so it stops there); faxbox starts from its
// script, answers /healthz, and stops cleanly on poweroff.
func TestInitScriptsBootInQemu(t *testing.T) {
	console := boot(t, "run.sh", guestFaxbox(t))
	wantConsole(t, console, "faxbox: first boot: API token ", "FAXBOX-INIT-AUTH yes", "Starting dahdi: no DAHDI hardware", "FAXBOX-INIT-DAHDI fxsks = 1-4", "Starting faxbox: OK", "FAXBOX-INIT-HEALTHZ yes", "FAXBOX-INIT-STOP /etc/init.d/S95faxbox ok", `msg="faxbox ready"`, `msg="faxbox stopped"`)
}

// TestInitScriptsWithAsteriskInQemu boots S20dahdi, S50asterisk and
// S95faxbox under BusyBox init in qemu with the real Asterisk (the lab's
// chroot as the guest's root, read-only, with a tmpfs overlay;
// tools/qemu-init/asterisk.sh) and the image's kind of config: the first
// script makes the box's config (token, AMI secret), S50asterisk renders
// Asterisk's configuration onto the data partition and starts Asterisk as
// the asterisk user with res_fax_spandsp, faxbox logs in to its manager
// interface, and poweroff stops both cleanly.
func TestInitScriptsWithAsteriskInQemu(t *testing.T) {
	console := boot(t, "asterisk.sh", labFaxbox(t), lab.Root())
	wantConsole(t, console, "faxbox: first boot: API token ", "Starting faxbox: OK",
		"FAXBOX-AST-HEALTHZ yes", "FAXBOX-AST-AMI-CONNECTED yes", "FAXBOX-AST-USER asterisk", "FAXBOX-AST-FAXMOD 1",
		"FAXBOX-AST-STOP /etc/init.d/S95faxbox ok", "FAXBOX-AST-STOP /etc/init.d/S50asterisk ok", "FAXBOX-AST-LEFT 0",
		`FAXBOX-AST-ALARMS "alarms":`)
	// faxbox runs as root, Asterisk as its own user: S50asterisk gives the
	// documents to Asterisk's group, so faxbox's start-up check finds that
	// Asterisk can read what it will send.
	if strings.Contains(console, "cannot read documents") {
		t.Fatalf("Asterisk's user cannot read faxbox's documents on the image:\n%s", console)
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
	console := boot(t, "asterisk.sh", labFaxbox(t), lab.Root(), "dahdi")
	wantConsole(t, console, "Starting dahdi: OK", "FAXBOX-AST-DAHDI-SPANS 1", "Dynamic 'loc' span at '1:0'", "FAXBOX-AST-DAHDI-CHANNELS 4",
		"FAXBOX-AST-DAHDI-DOWN 4", `"channel 1: Red Alarm"`, "FAXBOX-AST-DAHDI-ALARMS", "FAXBOX-AST-STOP /etc/init.d/S20dahdi ok", "FAXBOX-AST-LEFT 0")
}

// guestFaxbox is a static faxbox for the guests, built once for the package.
func guestFaxbox(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "faxbox-guest-")
		if err != nil {
			buildErr = err
			return
		}
		guestBin = filepath.Join(dir, "faxbox")
		build := exec.Command("go", "build", "-o", guestBin, "../cmd/faxbox")
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return guestBin
}

var (
	buildOnce sync.Once
	guestBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if guestBin != "" {
		os.RemoveAll(filepath.Dir(guestBin))
	}
	os.Exit(code)
}

// labFaxbox checks that the lab's chroot is there (the guest's root) and
// returns the guest faxbox.
func labFaxbox(t *testing.T) string {
	t.Helper()
	if !lab.Ready() {
		t.Fatalf("the lab's Asterisk chroot is not set up at %s: run make lab-setup (make test does)", lab.Root())
	}
	return guestFaxbox(t)
}

// boot runs a tools/qemu-init script and returns the guest's console.
func boot(t *testing.T, script string, args ...string) string {
	t.Helper()
	out, err := exec.Command("bash", append([]string{"../tools/qemu-init/" + script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu: %v\n%s", err, out)
	}
	return string(out)
}

// wantConsole checks that the console shows every line in want.
func wantConsole(t *testing.T, console string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(console, w) {
			t.Errorf("the boot did not show %q", w)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", console)
	}
}
