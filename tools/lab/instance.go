package lab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Instance is one Asterisk started from the chroot with its own directories
// and ports.
type Instance struct {
	Name       string
	Dir        string // host path, shared into the chroot at the same path
	SIPPort    int
	AMIPort    int
	RTPStart   int
	UDPTLStart int
	AMIUser    string
	AMISecret  string

	cmd *exec.Cmd
}

// Conf is the instance's asterisk.conf path (same inside and outside).
func (i *Instance) Conf() string { return filepath.Join(i.Dir, "etc", "asterisk.conf") }

// AMIAddr is where the instance's manager interface listens.
func (i *Instance) AMIAddr() string { return "127.0.0.1:" + strconv.Itoa(i.AMIPort) }

func (i *Instance) pidFile() string { return filepath.Join(i.Dir, "lab.pid") }

// Start runs Asterisk in the foreground under the lab process and waits
// until its manager interface answers.
func (i *Instance) Start(ctx context.Context) error {
	i.kill() // a stale one from a killed run
	for _, d := range []string{"run", "log", "db", "spool/outgoing", "spool/tmp", "spool/outgoing_done", "rx"} {
		if err := os.MkdirAll(filepath.Join(i.Dir, d), 0o777); err != nil {
			return err
		}
	}
	logf, err := os.Create(filepath.Join(i.Dir, "log", "console.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command("chroot", Root(), "/usr/sbin/asterisk", "-f", "-n", "-C", i.Conf())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("lab: start %s: %w", i.Name, err)
	}
	i.cmd = cmd
	os.WriteFile(i.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", i.AMIAddr(), 200*time.Millisecond); err == nil {
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "Asterisk Call Manager") {
				go func() { <-exited }()
				return nil
			}
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(filepath.Join(i.Dir, "log", "console.log"))
			return fmt.Errorf("lab: asterisk %s exited during start: %v\n%s", i.Name, err, tail(string(b), 2000))
		case <-ctx.Done():
			i.Stop()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			i.Stop()
			return fmt.Errorf("lab: asterisk %s: no manager interface on %s after 20 s", i.Name, i.AMIAddr())
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Stop ends the instance (SIGTERM, then SIGKILL after 5 s).
func (i *Instance) Stop() {
	if i.cmd == nil || i.cmd.Process == nil {
		i.kill()
		return
	}
	pid := i.cmd.Process.Pid
	syscall.Kill(-pid, syscall.SIGTERM)
	for t := 0; t < 50 && alive(pid); t++ {
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	os.Remove(i.pidFile())
	i.cmd = nil
}

// kill ends an instance left by an earlier run, found by its pid file.
func (i *Instance) kill() {
	b, err := os.ReadFile(i.pidFile())
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid > 1 && alive(pid) {
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmd), "asterisk") {
			syscall.Kill(-pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
			time.Sleep(200 * time.Millisecond)
		}
	}
	os.Remove(i.pidFile())
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// CLI runs an Asterisk CLI command on the instance (asterisk -rx).
func (i *Instance) CLI(command string) (string, error) {
	out, err := exec.Command("chroot", Root(), "/usr/sbin/asterisk", "-C", i.Conf(), "-rx", command).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s: asterisk -rx %q: %w: %s", i.Name, command, err, out)
	}
	return string(out), nil
}

// Running reports whether the instance's process is alive.
func (i *Instance) Running() bool {
	return i.cmd != nil && i.cmd.Process != nil && alive(i.cmd.Process.Pid)
}
