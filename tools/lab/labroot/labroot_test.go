//go:build lab

package labroot

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestCommand runs commands in the real chroot: they see the chroot's files
// (its sid /etc/debian_version, not the host's) and DAHDI's tools, and a
// mount one makes stays in its own namespace.
func TestCommand(t *testing.T) {
	if !Ready() {
		t.Fatalf("the lab's chroot is not set up at %s: run make lab-setup (make test does)", Root())
	}
	want, err := os.ReadFile(Root() + "/etc/debian_version")
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := Command(context.Background(), "sh", "-ec",
		`cat /etc/debian_version; command -v dahdi_cfg; mount -t tmpfs labroot-test /mnt; : > /mnt/leak`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), string(want)) || !strings.Contains(string(out), "/dahdi_cfg\n") {
		t.Fatalf("output %q: want the chroot's %q and its dahdi_cfg", out, want)
	}
	if _, err := os.Stat(Root() + "/mnt/leak"); err == nil {
		os.Remove(Root() + "/mnt/leak")
		t.Fatal("the command's tmpfs mount reached the chroot seen by the host")
	}
	if m, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(m), "labroot-test") {
		t.Fatal("the command's mount is in the host's mount table")
	}
}

// TestCommandNotReady: without a set-up chroot, Command says how to get one.
func TestCommandNotReady(t *testing.T) {
	t.Setenv("FAXBOX_LAB_ROOT", t.TempDir())
	if Ready() {
		t.Fatal("an empty directory counts as a set-up chroot")
	}
	if _, err := Command(context.Background(), "true"); err == nil || !strings.Contains(err.Error(), "make lab-setup") {
		t.Fatalf("err = %v", err)
	}
}
