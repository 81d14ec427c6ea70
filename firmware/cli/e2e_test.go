package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
)

// The CLI end to end: the real faxbox binary serving on the test line
// (99990001 delivers, 99990002 is busy every time) and the same binary as
// the CLI, run as a subprocess the way a user runs it. It needs ghostscript
// (the box converts the PDF) and nothing else: no root, no Asterisk.

const e2eToken = "cli-e2e-token-1"

// e2eBox is a running `faxbox serve` and the binary to run the CLI with.
type e2eBox struct {
	bin, url, home string
	log            *bytes.Buffer
}

// startE2E builds faxbox, starts it on the test line with 200 ms pages and
// waits until it answers.
func startE2E(t *testing.T) *e2eBox {
	t.Helper()
	testkit.Require(t, "gs", "go")
	dir := t.TempDir()
	bin := filepath.Join(dir, "faxbox")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/faxbox/faxbox/cmd/faxbox").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := filepath.Join(dir, "faxbox.json")
	conf := `{"listen": "` + addr + `", "data_dir": "` + filepath.Join(dir, "data") + `", "tokens": ["` + e2eToken + `"],
	  "test_line": {"page_time": "200ms"}}`
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &e2eBox{bin: bin, url: "http://" + addr, home: t.TempDir(), log: new(bytes.Buffer)}
	cmd := exec.Command(bin, "serve", "-config", cfg)
	cmd.Stderr = b.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("faxbox serve's log:\n%s", b.log)
		}
	})
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if r, err := http.Get(b.url + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return b
			}
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("faxbox did not come up:\n%s", b.log)
		}
	}
}

// cmd returns the CLI command for args, with the box's URL and token in the
// environment and a HOME without a config file.
func (b *e2eBox) cmd(ctx context.Context, tok string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, b.bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FAXBOX_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			c.Env = append(c.Env, kv)
		}
	}
	c.Env = append(c.Env, "FAXBOX_URL="+b.url, "FAXBOX_TOKEN="+tok, "HOME="+b.home)
	return c
}

// run runs the CLI to its end and returns its exit status and output.
func (b *e2eBox) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return b.runTok(t, ctx, e2eToken, args...)
}

func (b *e2eBox) runTok(t *testing.T, ctx context.Context, tok string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	c := b.cmd(ctx, tok, args...)
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("faxbox %v: %v\n%s", args, err, errb.String())
	return 0, "", ""
}

// show reads a job with `faxbox show -json`.
func (b *e2eBox) show(t *testing.T, id string) *job.Job {
	t.Helper()
	code, out, errs := b.run(t, "show", "-json", id)
	var j job.Job
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil {
		t.Fatalf("show %s: exit %d\n%s%s", id, code, out, errs)
	}
	return &j
}

// TestE2ESendWait: send -wait to 99990001 shows page n/m and exits 0 once
// delivered; to 99990002 (busy) it exits ExitFailed and prints the cause;
// list, show and retry see the same jobs.
func TestE2ESendWait(t *testing.T) {
	b := startE2E(t)
	pdf := filepath.Join(t.TempDir(), "letter.pdf")
	if err := os.WriteFile(pdf, testkit.PDF(t, 2), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errs := b.run(t, "send", "-wait", "-to", "99990001", "-header", "CLI test %n/%N", pdf)
	ok := strings.TrimSpace(out)
	if code != ExitOK || !strings.HasPrefix(ok, job.IDPrefix(job.KindFax)) {
		t.Fatalf("send -wait to 99990001: exit %d, stdout %q\n%s", code, out, errs)
	}
	for _, w := range []string{"sending page 1/2 to 99990001 on line test/", "sending page 2/2", ok + ": delivered: 2 pages to 99990001 after 1 call"} {
		if !strings.Contains(errs, w) {
			t.Errorf("send -wait's progress lacks %q:\n%s", w, errs)
		}
	}
	if j := b.show(t, ok); j.Status != job.Delivered || j.PagesConfirmed != 2 || j.Options.Header != "CLI test %n/%N" {
		t.Errorf("the delivered job: %s, %d pages confirmed, header %q", j.Status, j.PagesConfirmed, j.Options.Header)
	}

	code, out, errs = b.run(t, "send", "-wait", "-to", "99990002", "-max-attempts", "1", pdf)
	busy := strings.TrimSpace(out)
	if code != ExitFailed || !strings.HasPrefix(busy, job.IDPrefix(job.KindFax)) || !strings.Contains(errs, busy+": failed after 1 call: line.busy: ") {
		t.Fatalf("send -wait to 99990002: exit %d (want %d), stdout %q\n%s", code, ExitFailed, out, errs)
	}

	code, out, errs = b.run(t, "list")
	if code != ExitOK || !strings.Contains(out, ok) || !strings.Contains(out, busy) || !strings.Contains(out, "line.busy") {
		t.Errorf("list: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = b.run(t, "list", "-done", "-json")
	var l listing
	if code != ExitOK || json.Unmarshal([]byte(out), &l) != nil || len(l.Items) != 2 || l.Items[0].ID != busy || l.Items[1].ID != ok {
		t.Errorf("list -done -json: exit %d\n%s", code, out)
	}
	if code, out, _ = b.run(t, "list", "-active"); code != ExitOK || strings.Contains(out, job.IDPrefix(job.KindFax)) {
		t.Errorf("list -active with nothing queued: exit %d\n%s", code, out)
	}
	code, out, errs = b.run(t, "show", busy)
	if code != ExitOK || !strings.Contains(out, "line.busy") || !strings.Contains(out, "letter.pdf (pdf") || !strings.Contains(out, "failed") {
		t.Errorf("show: exit %d\n%s%s", code, out, errs)
	}

	// retry: the busy job is queued again and fails again; a delivered one
	// is refused with the API's code.
	code, out, errs = b.run(t, "retry", busy)
	if code != ExitOK || !strings.Contains(out, busy+": retried, now ") || !strings.Contains(out, "(at most 1 more call)") {
		t.Fatalf("retry: exit %d\n%s%s", code, out, errs)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		j := b.show(t, busy)
		if j.Status == job.Failed && j.Dials == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retried job: %s after %d calls", j.Status, j.Dials)
		}
	}
	code, _, errs = b.run(t, "retry", ok)
	if code != ExitRefused || !strings.Contains(errs, "already_delivered") {
		t.Errorf("retry of a delivered fax: exit %d\n%s", code, errs)
	}
}

// TestE2ECancel: cancel ends a queued job; send -wait on a job cancelled
// meanwhile exits ExitCancelled; retry queues the cancelled job again; a
// wrong token, an unreachable box and the inbox are reported with their
// exit statuses.
func TestE2ECancel(t *testing.T) {
	b := startE2E(t)
	doc := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(doc, []byte("a note for the fax\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := b.run(t, "send", "-to", "99990001", "-send-at", "+1h", doc)
	later := strings.TrimSpace(out)
	if code != ExitOK || !strings.HasPrefix(later, job.IDPrefix(job.KindFax)) {
		t.Fatalf("send -send-at +1h: exit %d %q\n%s", code, out, errs)
	}
	if code, out, _ = b.run(t, "list", "-active"); code != ExitOK || !strings.Contains(out, later) || !strings.Contains(out, "to be sent at") {
		t.Errorf("list -active: exit %d\n%s", code, out)
	}
	if code, out, errs = b.run(t, "cancel", later); code != ExitOK || !strings.Contains(out, later+": cancelled") {
		t.Fatalf("cancel: exit %d\n%s%s", code, out, errs)
	}
	if j := b.show(t, later); j.Status != job.Cancelled || j.Dials != 0 {
		t.Errorf("the cancelled job: %s, %d calls", j.Status, j.Dials)
	}
	if code, out, errs = b.run(t, "retry", later); code != ExitOK || !strings.Contains(out, later+": retried, now ") {
		t.Errorf("retry of a cancelled job: exit %d\n%s%s", code, out, errs)
	}

	// send -wait, then cancel from another CLI while it waits.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := b.cmd(ctx, e2eToken, "send", "-wait", "-to", "99990001", "-send-at", "+1h", doc)
	var werr bytes.Buffer
	w.Stderr = &werr
	stdout, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	id, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("send -wait printed no id: %v\n%s", err, werr.String())
	}
	id = strings.TrimSpace(id)
	if code, out, errs = b.run(t, "cancel", id); code != ExitOK {
		t.Fatalf("cancel %s: exit %d\n%s%s", id, code, out, errs)
	}
	err = w.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitCancelled || !strings.Contains(werr.String(), id+": cancelled") {
		t.Errorf("send -wait on a job cancelled meanwhile: %v (want exit %d)\n%s", err, ExitCancelled, werr.String())
	}

	if code, _, errs = b.runTok(t, ctx, "not-the-token", "status"); code != ExitAuth || !strings.Contains(errs, "unauthorized") {
		t.Errorf("a wrong token: exit %d\n%s", code, errs)
	}
	if code, out, errs = b.run(t, "status"); code != ExitOK || !strings.Contains(out, "test/1") {
		t.Errorf("status: exit %d\n%s%s", code, out, errs)
	}
	b.checkInbox(t)
	code, _, errs = b.run(t, "status", "-url", "http://127.0.0.1:1")
	if code != ExitUnavailable || !strings.Contains(errs, "connection refused") {
		t.Errorf("an unreachable box: exit %d\n%s", code, errs)
	}
}

// checkInbox: `faxbox inbox` lists what GET /v1/inbox answers, or, on a box
// without it, says so from the box's 404 (exit ExitUnavailable).
func (b *e2eBox) checkInbox(t *testing.T) {
	t.Helper()
	req, _ := http.NewRequest("GET", b.url+"/v1/inbox", nil)
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	code, out, errs := b.run(t, "inbox")
	switch resp.StatusCode {
	case http.StatusNotFound:
		if code != ExitUnavailable || !strings.Contains(errs, "GET /v1/inbox answered not_found") || out != "" {
			t.Errorf("inbox on a box without one: exit %d, stdout %q\n%s", code, out, errs)
		}
	case http.StatusOK:
		if code != ExitOK || !strings.HasPrefix(out, "ID") {
			t.Errorf("inbox: exit %d\n%s%s", code, out, errs)
		}
	default:
		t.Errorf("GET /v1/inbox answered %d", resp.StatusCode)
	}
}
