// Package labroot locates the lab's Debian sid chroot (built by tools/lab's
// Setup, with Asterisk and DAHDI's tools) and runs commands inside it. It
// imports nothing of faxbox, so the tests of any package can use it —
// tools/lab itself imports services and dahdi.
package labroot

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// DefaultRoot is where the chroot lives unless FAXBOX_LAB_ROOT says otherwise.
const DefaultRoot = "/var/cache/faxbox-lab/root"

// Marker is the file, relative to the root, whose presence says the chroot
// is completely set up.
const Marker = "/.faxbox-lab-ready"

// Root returns the chroot's path: FAXBOX_LAB_ROOT, or DefaultRoot.
func Root() string {
	if r := os.Getenv("FAXBOX_LAB_ROOT"); r != "" {
		return r
	}
	return DefaultRoot
}

// Ready reports whether the chroot is set up.
func Ready() bool {
	_, err := os.Stat(Root() + Marker)
	return err == nil
}

// Command returns a command that runs name (looked up in the chroot's
// /usr/sbin, /usr/bin, /sbin, /bin) with args inside the chroot, as the
// caller's user (chroot needs root), with only PATH and LC_ALL=C in its
// environment, on the host's network. The command gets a private mount
// namespace (unshare --mount): mounts it makes, such as a tmpfs over /dev,
// vanish with it and reach neither the host nor the lab; directories the lab
// shares into the chroot after it started are not seen, so it is for
// short-lived tools, not for the lab's long-running Asterisk. It fails, saying
// how to build the chroot, when the chroot is not set up.
func Command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	if !Ready() {
		return nil, fmt.Errorf("labroot: the lab's chroot is not set up at %s: run `make lab-setup` (make test does)", Root())
	}
	argv := append([]string{"--mount", "--propagation", "private", "chroot", Root(), name}, args...)
	cmd := exec.CommandContext(ctx, "unshare", argv...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	return cmd, nil
}
