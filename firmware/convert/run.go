package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// result is what a finished external process said.
type result struct {
	markers []string // lines of stdout that began with the marker, marker cut off
	out     *capture
	errs    *capture
}

// diag is a short excerpt of the process's messages for an error text.
func (r result) diag() string {
	s := strings.TrimSpace(r.errs.String() + " " + r.out.String())
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	if s == "" {
		return "no message"
	}
	return s
}

// capture keeps the first and last few KB of a stream (a hostile document
// can make ghostscript print without end) and collects the lines that
// start with marker.
type capture struct {
	marker  string
	head    []byte
	tail    []byte
	dropped int
	line    []byte
	markers []string
}

const captureKeep = 4 << 10

func (c *capture) Write(p []byte) (int, error) {
	n := len(p)
	if c.marker != "" {
		for _, b := range p {
			if b == '\n' {
				if l := string(c.line); strings.HasPrefix(l, c.marker+" ") {
					c.markers = append(c.markers, strings.TrimSpace(l[len(c.marker)+1:]))
				}
				c.line = c.line[:0]
			} else if len(c.line) < 256 {
				c.line = append(c.line, b)
			}
		}
	}
	if room := captureKeep - len(c.head); room > 0 {
		k := min(room, len(p))
		c.head = append(c.head, p[:k]...)
		p = p[k:]
	}
	c.tail = append(c.tail, p...)
	if len(c.tail) > 2*captureKeep {
		cut := len(c.tail) - captureKeep
		c.dropped += cut
		c.tail = append(c.tail[:0], c.tail[cut:]...)
	}
	return n, nil
}

// String returns the kept text; the start wins over the end when short of
// room, except for the last lines, which name the error.
func (c *capture) String() string {
	var b bytes.Buffer
	b.Write(c.head)
	if c.dropped > 0 {
		fmt.Fprintf(&b, " […%d bytes…] ", c.dropped)
	}
	b.Write(c.tail)
	return b.String()
}

// errMessages picks ghostscript's error lines, or the last line.
func errMessages(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "Error") || strings.Contains(l, "error") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) == 0 {
		return strings.TrimSpace(s)
	}
	return strings.Join(keep, "; ")
}

// exec runs name under the converter's address-space limit (prlimit --as)
// in a new process group; when ctx ends the whole group is killed. Lines of
// stdout beginning with marker are returned apart. A failure is
// ErrTooLarge when the process ran out of memory, ErrUnreadable otherwise
// (ctxErr turns it into ErrTimeout after the deadline).
func (c *Converter) exec(ctx context.Context, marker, name string, args ...string) (result, error) {
	limit := strconv.Itoa(c.cfg.MemoryMB << 20)
	cmd := exec.CommandContext(ctx, "prlimit", append([]string{"--as=" + limit, "--", name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	res := result{out: &capture{marker: marker}, errs: &capture{}}
	cmd.Stdout, cmd.Stderr = res.out, res.errs
	err := cmd.Run()
	res.markers = res.out.markers
	if err == nil {
		return res, nil
	}
	if errors.Is(err, exec.ErrNotFound) {
		return res, fmt.Errorf("convert: prlimit (util-linux) is required: %w", err)
	}
	msg := errMessages(res.errs.String() + "\n" + res.out.String())
	if len(msg) > 400 {
		msg = msg[:400] + "…"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		ws, _ := ee.Sys().(syscall.WaitStatus)
		all := res.errs.String() + res.out.String()
		oom := ws.Signaled() && (ws.Signal() == syscall.SIGSEGV || ws.Signal() == syscall.SIGABRT || ws.Signal() == syscall.SIGBUS) ||
			strings.Contains(all, "VMerror") || strings.Contains(all, "failed to map segment") ||
			strings.Contains(all, "Cannot allocate memory") || strings.Contains(all, "out of memory")
		if oom {
			return res, fmt.Errorf("%w: %s exceeded the memory limit of %d MB: %s", ErrTooLarge, name, c.cfg.MemoryMB, msg)
		}
		if ee.ExitCode() == 127 && strings.Contains(all, "failed to execute") {
			return res, fmt.Errorf("convert: %s is not installed: %s", name, msg)
		}
	}
	return res, fmt.Errorf("%w: %s: %v: %s", ErrUnreadable, name, err, msg)
}
