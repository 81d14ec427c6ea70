package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
)

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if run([]string{"version"}, &out, &errb) != 0 || !strings.HasPrefix(out.String(), "faxbox ") {
		t.Fatalf("version: %q", out.String())
	}
	if run([]string{"bogus"}, &out, &errb) != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("unknown command: %q", errb.String())
	}
	errb.Reset()
	if run([]string{"serve", "-data", t.TempDir(), "-listen", "127.0.0.1:0"}, &out, &errb) != 1 || !strings.Contains(errb.String(), "no API token") {
		t.Fatalf("serve without a token: %q", errb.String())
	}
}

// buildFaxbox compiles the real binary.
func buildFaxbox(t testing.TB) string {
	dir, err := os.MkdirTemp("", "faxbox-bin-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "faxbox")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddrB(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startProcB(t testing.TB, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func waitHealthyB(t testing.TB, base string) time.Duration {
	start := time.Now()
	for time.Since(start) < 20*time.Second {
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 50*time.Millisecond); err == nil {
			c.Close()
			if r := (&testkit.Client{Base: base}).Do(t, "GET", "/healthz", nil, "", nil); r.StatusCode == 200 {
				return time.Since(start)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("faxbox did not come up")
	return 0
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), log: new(bytes.Buffer)}
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	return p
}

func waitHealthy(t *testing.T, base string, p *proc) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 20*time.Second {
		c := testkit.Client{Base: base}
		req, _ := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 100*time.Millisecond)
		if req != nil {
			req.Close()
			if r := c.Do(t, "GET", "/healthz", nil, "", nil); r.StatusCode == 200 {
				return time.Since(start)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("faxbox did not come up:\n%s", p.log)
	return 0
}

// TestKill9MidQueue kills faxbox with SIGKILL twice while jobs are converting,
// dialling and sending, restarts it on the same data directory each time, and
// checks that every job ends delivered exactly once with its webhook
// delivered (receivers de-duplicate by X-Faxbox-Delivery).
func TestKill9MidQueue(t *testing.T) {
	t.Parallel() // its own faxbox process; the longest test here
	testkit.Require(t, "gs")
	bin := buildFaxbox(t)
	data := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	cfgPath := filepath.Join(t.TempDir(), "faxbox.json")
	os.WriteFile(cfgPath, []byte(`{
  "tokens": ["kill-test-token"],
  "test_line": {"prefix": "9999000", "page_time": "150ms", "channels": 3},
  "webhook": {"first_retry": "200ms", "max_backoff": "1s", "allow_loopback": true}
}`), 0o600)
	args := []string{"serve", "-config", cfgPath, "-data", data, "-listen", addr}
	rcv := testkit.NewReceiver(t)
	p := startProc(t, bin, args...)
	waitHealthy(t, base, p)
	c := &testkit.Client{Base: base, Token: "kill-test-token"}

	const n = 24
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		to := "99990001"
		if i%4 == 3 {
			to = "99990005"
		}
		var j job.Job
		r := c.Submit(t, "/v1/faxes", &j, testkit.File("file", "d.txt", []byte(fmt.Sprintf("page one of job %d\f page two\f page three", i))),
			// Each kill may cut one answered attempt of a job, and an
			// answered attempt counts: 99990005's designed break after
			// page 1 plus two cut attempts must leave room for the one
			// that delivers.
			testkit.Field("to", to), testkit.Field("callback_url", rcv.URL), testkit.Field("retry_interval", "1s"), testkit.Field("max_attempts", "5"),
			testkit.Field("client_ref", fmt.Sprintf("k-%d", i)))
		if r.StatusCode != 202 {
			t.Fatalf("submit %d: %d", i, r.StatusCode)
		}
		ids = append(ids, j.ID)
	}
	for kill := 0; kill < 2; kill++ {
		time.Sleep(time.Duration(700+kill*900) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.cmd.Wait()
		p = startProc(t, bin, args...)
		waitHealthy(t, base, p)
	}
	hs := rcv.Wait(t, 3*time.Minute, "a final webhook for every job", func(hs []testkit.Hook) bool {
		done := map[string]bool{}
		for _, e := range testkit.Events(hs, "") {
			if e.Event == "fax.delivered" || e.Event == "fax.failed" {
				done[e.Job.ID] = true
			}
		}
		return len(done) == n
	})
	deliveries := map[string]map[string]bool{} // job → delivery ids of fax.delivered
	for _, h := range hs {
		var e testkit.Event
		if json.Unmarshal(h.Body, &e) != nil {
			continue
		}
		json.Unmarshal(e.Data, &e.Job)
		if e.Event == "fax.delivered" {
			if deliveries[e.Job.ID] == nil {
				deliveries[e.Job.ID] = map[string]bool{}
			}
			deliveries[e.Job.ID][h.Header.Get("X-Faxbox-Delivery")] = true
		}
	}
	for _, id := range ids {
		var j job.Job
		c.Do(t, "GET", "/v1/faxes/"+id, nil, "", &j)
		if j.Status != job.Delivered {
			b, _ := json.MarshalIndent(j.Attempts, "", " ")
			t.Errorf("job %s (%s): %s, error %+v, attempts %s", id, j.To, j.Status, j.Error, b)
		}
		delivered := 0
		for _, a := range j.Attempts {
			if a.Result == "delivered" {
				delivered++
			}
		}
		if delivered != 1 {
			t.Errorf("job %s has %d delivered attempts; a fax is sent once", id, delivered)
		}
		if len(deliveries[id]) != 1 {
			t.Errorf("job %s: %d distinct fax.delivered deliveries, want 1", id, len(deliveries[id]))
		}
	}
	if t.Failed() {
		t.Logf("last faxbox log:\n%s", p.log)
	}
}

// TestRenderConfigDAHDI: on a pc-x86 board (one 4-port FXO card) render-config
// writes chan_dahdi.conf beside the Asterisk files and system.conf into
// -dahdi-out; without line cards, -dahdi-out writes nothing.
func TestRenderConfigDAHDI(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "faxbox.json")
	os.WriteFile(cfg, []byte(`{"panel":{"board":"pc-x86"},"asterisk":{"ami_secret":"s3cretpass"}}`), 0o600)
	var out, errb bytes.Buffer
	if rc := run([]string{"render-config", "-config", cfg, "-out", filepath.Join(dir, "ast"), "-dahdi-out", filepath.Join(dir, "dahdi")}, &out, &errb); rc != 0 {
		t.Fatalf("render-config: %d %s", rc, errb.String())
	}
	sys, err := os.ReadFile(filepath.Join(dir, "dahdi", "system.conf"))
	if err != nil || !strings.Contains(string(sys), "fxsks = 1-4") {
		t.Fatalf("system.conf: %v\n%s", err, sys)
	}
	if ch, err := os.ReadFile(filepath.Join(dir, "ast", "chan_dahdi.conf")); err != nil || !strings.Contains(string(ch), "channel => 1-4") {
		t.Fatalf("chan_dahdi.conf: %v\n%s", err, ch)
	}
	if !strings.Contains(out.String(), filepath.Join(dir, "dahdi", "system.conf")) {
		t.Errorf("written files not listed: %s", out.String())
	}
	os.WriteFile(cfg, []byte(`{"asterisk":{"ami_secret":"s3cretpass"}}`), 0o600)
	out.Reset()
	if rc := run([]string{"render-config", "-config", cfg, "-dahdi-out", filepath.Join(dir, "none")}, &out, &errb); rc != 0 || out.Len() != 0 {
		t.Fatalf("no line cards: %d %q", rc, out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); !os.IsNotExist(err) {
		t.Fatalf("a DAHDI directory was made for a box without line cards: %v", err)
	}
	if rc := run([]string{"render-config", "-config", cfg}, &out, &errb); rc != 2 {
		t.Fatalf("no output directory: %d", rc)
	}
}
