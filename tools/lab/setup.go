// Package lab runs the real parts of faxbox's tests on a development machine:
// a Debian sid chroot with Asterisk 22 + spandsp (Debian 12 has no Asterisk
// package) and Asterisk instances started from it — the box's own Asterisk,
// configured only from what faxbox renders (services/), and a "remote" that
// plays the far end with the lab's numbers (see remote.go).
//
// Paths: the chroot is Root() (default /var/cache/faxbox-lab/root, or
// FAXBOX_LAB_ROOT). Instance directories and faxbox's data directory live on
// the host and are bind-mounted into the chroot at the same path (Share), so
// a TIFF path faxbox writes is the path Asterisk opens.
package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/faxbox/faxbox/tools/lab/labroot"
)

// DefaultRoot is where the chroot lives unless FAXBOX_LAB_ROOT says otherwise.
const DefaultRoot = labroot.DefaultRoot

// Packages installed in the chroot: Asterisk, and DAHDI (chan_dahdi,
// dahdi_cfg, and the dahdi-linux source the qemu DAHDI test builds its
// kernel modules from).
var Packages = []string{"asterisk", "asterisk-modules", "asterisk-core-sounds-en", "asterisk-dahdi", "dahdi", "dahdi-source"}

const marker = labroot.Marker

// Root returns the chroot's path (labroot.Root).
func Root() string { return labroot.Root() }

// Mirror returns the Debian mirror from this machine's apt configuration.
func Mirror() (string, error) {
	out, err := exec.Command("apt-get", "indextargets", "--format", "$(REPO_URI)").Output()
	if err != nil {
		return "", fmt.Errorf("lab: apt-get indextargets: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		u := strings.TrimSpace(sc.Text())
		if u != "" && !strings.Contains(u, "security") && strings.Contains(u, "debian") {
			return u, nil
		}
	}
	return "", errors.New("lab: no Debian mirror in the apt configuration (run apt-get update first)")
}

// Ready reports whether the chroot is set up.
func Ready() bool { return labroot.Ready() }

// Setup builds the chroot if it is not there (idempotent; a half-finished
// root is removed and redone). Progress goes to log.
func Setup(ctx context.Context, log io.Writer) error {
	root := Root()
	if Ready() {
		if err := mountProc(root); err != nil {
			return err
		}
		return ensurePackages(ctx, root, log)
	}
	if os.Geteuid() != 0 {
		return errors.New("lab: setting up the Asterisk chroot needs root (debootstrap, chroot, mount)")
	}
	for _, c := range []string{"debootstrap", "chroot", "mount"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("lab: %s not found: run tools/deps.sh run (make deps-run)", c)
		}
	}
	mirror, err := Mirror()
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err := os.Stat(root); err == nil {
		fmt.Fprintf(log, "lab: removing half-built chroot %s\n", root)
		unmountAll(root)
		if err := os.RemoveAll(root); err != nil {
			return fmt.Errorf("lab: remove %s: %w", root, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return err
	}
	fmt.Fprintf(log, "lab: debootstrap sid into %s from %s\n", root, mirror)
	if err := run(ctx, log, "debootstrap", "--variant=minbase", "sid", root, mirror); err != nil {
		return err
	}
	if err := os.WriteFile(root+"/etc/apt/apt.conf.d/99faxbox-lab", []byte("Acquire::Check-Valid-Until \"false\";\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(root+"/usr/sbin/policy-rc.d", []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return err
	}
	if err := mountProc(root); err != nil {
		return err
	}
	fmt.Fprintf(log, "lab: installing %s\n", strings.Join(Packages, " "))
	script := "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends " + strings.Join(Packages, " ")
	if err := run(ctx, log, "chroot", root, "sh", "-c", script); err != nil {
		return err
	}
	if _, err := os.Stat(root + "/usr/sbin/asterisk"); err != nil {
		return fmt.Errorf("lab: asterisk missing after install: %w", err)
	}
	if err := os.WriteFile(root+marker, []byte(time.Now().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(log, "lab: chroot ready in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// ensurePackages installs the Packages a chroot made by an older Setup
// lacks (one installer at a time: a lock file beside the chroot).
func ensurePackages(ctx context.Context, root string, log io.Writer) error {
	missing := func() []string {
		var out []string
		for _, p := range Packages {
			b, err := exec.Command("chroot", root, "dpkg-query", "-W", "-f=${Status}", p).Output()
			if err != nil || !strings.Contains(string(b), "install ok installed") {
				out = append(out, p)
			}
		}
		return out
	}
	if len(missing()) == 0 {
		return nil
	}
	lock, err := os.OpenFile(root+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lab: lock %s: %w", lock.Name(), err)
	}
	m := missing()
	if len(m) == 0 {
		return nil
	}
	fmt.Fprintf(log, "lab: installing %s into the chroot\n", strings.Join(m, " "))
	script := "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends " + strings.Join(m, " ")
	return run(ctx, log, "chroot", root, "sh", "-c", script)
}

func run(ctx context.Context, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var tail bytes.Buffer
	cmd.Stdout = io.MultiWriter(&tail, io.Discard)
	cmd.Stderr = &tail
	if err := cmd.Run(); err != nil {
		out := tail.String()
		if len(out) > 3000 {
			out = out[len(out)-3000:]
		}
		return fmt.Errorf("lab: %s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func mountProc(root string) error {
	if mounted(root + "/proc") {
		return nil
	}
	if err := syscall.Mount("proc", root+"/proc", "proc", 0, ""); err != nil {
		return fmt.Errorf("lab: mount proc in %s: %w", root, err)
	}
	return nil
}

// mounted reports whether path is a mount point (per /proc/self/mounts).
func mounted(path string) bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[1] == path {
			return true
		}
	}
	return false
}

// unmountAll unmounts everything under root, deepest first.
func unmountAll(root string) {
	b, _ := os.ReadFile("/proc/self/mounts")
	var ms []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && (f[1] == root || strings.HasPrefix(f[1], root+"/")) {
			ms = append(ms, f[1])
		}
	}
	for i := len(ms) - 1; i >= 0; i-- {
		syscall.Unmount(ms[i], syscall.MNT_DETACH)
	}
}

// Share bind-mounts the host directory dir into the chroot at the same path.
func Share(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	target := Root() + dir
	if mounted(target) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("lab: share %s: %w", dir, err)
	}
	if err := syscall.Mount(dir, target, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("lab: bind %s into the chroot: %w", dir, err)
	}
	return nil
}

// Unshare undoes Share.
func Unshare(dir string) {
	dir, _ = filepath.Abs(dir)
	target := Root() + dir
	if mounted(target) {
		syscall.Unmount(target, syscall.MNT_DETACH)
	}
}

// Unmount removes every bind mount of shared directories (the chroot's /proc
// stays).
func Unmount() {
	root := Root()
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && strings.HasPrefix(f[1], root+"/") && f[1] != root+"/proc" && !strings.HasPrefix(f[1], root+"/proc/") {
			syscall.Unmount(f[1], syscall.MNT_DETACH)
		}
	}
}
