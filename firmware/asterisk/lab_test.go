//go:build lab

package asterisk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/asterisk"
	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/tiff"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

const token = "lab-test-token"

// env is a faxbox wired to the real Asterisk lab (box + remote instances).
type env struct {
	l   *lab.Lab
	box *box.Box
	c   *testkit.Client
}

func startEnv(t *testing.T, name string, base int) *env {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf", "debootstrap")
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tune := func(c *config.Config) {
		c.Calls.Callback = config.Callback{Number: "5000", AllowCallers: []string{"300", "301", "302"}, PIN: "1234",
			Delay: job.Duration(time.Second), PerHour: 3, AllowPrefixes: []string{"1", "2"}}
	}
	l, err := lab.Up(ctx, lab.Options{Name: name, BasePort: base, Share: []string{data}, Channels: 6, Log: testWriter{t}, Tune: tune})
	if err != nil {
		t.Fatalf("the Asterisk lab did not come up: %v", err)
	}
	t.Cleanup(l.Down)
	cfg := l.FaxboxConfig(config.Default())
	cfg.DataDir = data
	cfg.Tokens = []string{token}
	cfg.StationID = "FAXBOX LAB"
	cfg.LineGroups[0].RingTimeout = job.Duration(6 * time.Second)
	cf := cfg.LineGroups[0]
	cf.Name, cf.Transport, cf.Channels, cf.Prefixes = "callfile", "callfile", 2, []string{"100"}
	cfg.LineGroups = append(cfg.LineGroups, cf)
	b, err := box.Open(ctx, cfg, box.Options{Version: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(sctx, ln); close(done) }()
	t.Cleanup(func() { scancel(); <-done; b.Close() })
	return &env{l: l, box: b, c: &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *env) wait(t *testing.T, id string, want job.Status, d time.Duration) *job.Job {
	t.Helper()
	return e.c.WaitJob(t, "/v1/faxes/"+id, want, d, true)
}

func (e *env) submit(t *testing.T, pages int, fields ...testkit.Part) *job.Job {
	t.Helper()
	var j job.Job
	parts := append([]testkit.Part{testkit.File("file", "doc.pdf", testkit.PDF(t, pages)), testkit.Field("resolution", "standard")}, fields...)
	if r := e.c.Submit(t, "/v1/faxes", &j, parts...); r.StatusCode != 202 {
		t.Fatalf("submit: HTTP %d", r.StatusCode)
	}
	return &j
}

// TestRealAsterisk sends real faxes through the box's Asterisk to the remote
// over the lab's SIP trunk, in parallel (fax time is real time).
func TestRealAsterisk(t *testing.T) {
	e := startEnv(t, "astest", 25060)
	rcv := testkit.NewReceiver(t)

	t.Run("group", func(t *testing.T) {
		t.Run("t38 to 100", func(t *testing.T) {
			t.Parallel()
			j := e.submit(t, 2, testkit.Field("to", "100"), testkit.Field("callback_url", rcv.URL))
			got := e.wait(t, j.ID, job.Delivered, 3*time.Minute)
			a := got.LastAttempt()
			if got.Pages != 2 || a.PagesSent != 2 || a.Transport != "t38" || a.BitRate == 0 {
				t.Errorf("delivered: pages %d, attempt %+v", got.Pages, a)
			}
			// The remote's station id has a '-', which a FILTER() list
			// ending in '-' would drop.
			if a.RemoteStationID != "LAB-100 REMOTE" {
				t.Errorf("remote station id %q, want %q", a.RemoteStationID, "LAB-100 REMOTE")
			}
			files := e.l.ReceivedFiles("100")
			found := false
			for _, f := range files {
				b, _ := os.ReadFile(f)
				if pf, err := tiff.Parse(b); err == nil && len(pf.Pages) == 2 && pf.Pages[0].Width == 1728 && pf.Pages[1].Width == 1728 {
					found = true
				}
			}
			if !found {
				t.Errorf("the remote has no 2-page 1728-px TIFF: %v", files)
			}
			hs := rcv.Wait(t, 30*time.Second, "fax.delivered", func(hs []testkit.Hook) bool {
				for _, ev := range testkit.Events(hs, j.ID) {
					if ev.Event == "fax.delivered" {
						return true
					}
				}
				return false
			})
			_ = hs
		})
		t.Run("g711 to 101", func(t *testing.T) {
			t.Parallel()
			// A G.711-only machine never asks for T.38: the first call
			// goes on in G.711 audio and delivers.
			j := e.submit(t, 1, testkit.Field("to", "101"), testkit.Field("max_attempts", "1"))
			got := e.wait(t, j.ID, job.Delivered, 3*time.Minute)
			if a := got.LastAttempt(); len(got.Attempts) != 1 || a.Transport != "g711" || a.PagesSent != 1 {
				b, _ := json.Marshal(got.Attempts)
				t.Errorf("101 (one call, G.711): attempts %s", b)
			}
		})
		t.Run("slow 106", func(t *testing.T) {
			t.Parallel()
			j := e.submit(t, 1, testkit.Field("to", "106"), testkit.Field("max_attempts", "1"))
			got := e.wait(t, j.ID, job.Delivered, 3*time.Minute)
			// (Asterisk reports the negotiated rate, but not whether ECM
			// was in use: FAXOPT(ecm) stays what was asked for.)
			if a := got.LastAttempt(); a.Transport != "g711" || a.PagesSent != 1 || a.BitRate == 0 || a.BitRate > 9600 {
				b, _ := json.Marshal(got.Attempts)
				t.Errorf("106 (ECM off, at most 9600 bit/s): attempts %s", b)
			}
		})
		t.Run("busy 102", func(t *testing.T) {
			t.Parallel()
			j := e.submit(t, 1, testkit.Field("to", "102"), testkit.Field("max_attempts", "2"), testkit.Field("retry_interval", "2s"))
			got := e.wait(t, j.ID, job.Failed, 2*time.Minute)
			if got.Error.Code != "line.busy" || len(got.Attempts) != 2 || got.Tries != 0 {
				t.Fatalf("102: %+v, %d attempts, %d tries", got.Error, len(got.Attempts), got.Tries)
			}
			if gap := got.Attempts[1].StartedAt.Sub(*got.Attempts[0].EndedAt); gap < 2*time.Second-50*time.Millisecond {
				t.Errorf("retry after %s; interval is 2s", gap)
			}
		})
		t.Run("no answer 103", func(t *testing.T) {
			t.Parallel()
			j := e.submit(t, 1, testkit.Field("to", "103"), testkit.Field("max_attempts", "1"))
			got := e.wait(t, j.ID, job.Failed, 2*time.Minute)
			if got.Error.Code != "line.no_answer" {
				t.Fatalf("103: %+v", got.Error)
			}
		})
		t.Run("voice 104", func(t *testing.T) {
			t.Parallel()
			j := e.submit(t, 1, testkit.Field("to", "104"), testkit.Field("max_attempts", "1"))
			got := e.wait(t, j.ID, job.Failed, 3*time.Minute)
			if got.Error.Code != "fax.remote_not_fax" {
				t.Fatalf("104: %+v", got.Error)
			}
		})
		t.Run("resume 105", func(t *testing.T) {
			t.Parallel()
			j := e.submit(t, 3, testkit.Field("to", "105"), testkit.Field("retry_interval", "2s"))
			got := e.wait(t, j.ID, job.Delivered, 5*time.Minute)
			if len(got.Attempts) != 2 || got.Attempts[0].PagesSent < 1 || got.Attempts[1].FirstPage != got.Attempts[0].PagesSent+1 || got.PagesConfirmed != 3 {
				t.Fatalf("105 attempts: %+v", got.Attempts)
			}
			second := e.l.ReceivedFiles("105")
			if len(second) != 1 {
				t.Fatalf("105 received files: %v", second)
			}
			b, _ := os.ReadFile(second[0])
			if pf, err := tiff.Parse(b); err != nil || len(pf.Pages) != 3-got.Attempts[0].PagesSent {
				t.Errorf("the second call carried %v pages (%v), want %d", pf, err, 3-got.Attempts[0].PagesSent)
			}
		})
		t.Run("compat to 100", func(t *testing.T) {
			t.Parallel()
			r2 := testkit.NewReceiver(t)
			var out map[string]string
			(&testkit.Client{Base: e.c.Base}).Submit(t, "/faxservice/", &out, testkit.Field("fax", "100"), testkit.Field("faxId", "lab-compat-1"),
				testkit.Field("returnUrl", r2.URL+"/r"), testkit.File("file", "a.pdf", testkit.PDF(t, 1)))
			if out["status"] != "success" {
				t.Fatalf("faxservice: %v", out)
			}
			hs := r2.Wait(t, 3*time.Minute, "GET returnUrl", func(hs []testkit.Hook) bool { return len(hs) > 0 })
			u, _ := url.Parse(hs[0].URL)
			if u.Query().Get("status") != "SUCCESS" || u.Query().Get("faxId") != "lab-compat-1" {
				t.Fatalf("returnUrl: %s", hs[0].URL)
			}
		})
		t.Run("call file to 100", func(t *testing.T) {
			t.Parallel()
			j := e.submit(t, 1, testkit.Field("to", "100"), testkit.Field("line_group", "callfile"))
			got := e.wait(t, j.ID, job.Delivered, 3*time.Minute)
			if a := got.LastAttempt(); a.Line.Group != "callfile" || a.PagesSent != 1 || a.Transport != "t38" {
				t.Fatalf("call file attempt: %+v", a)
			}
			if st := asterisk.ArchivedStatus(filepath.Join(e.l.Box.Dir, "spool", "outgoing_done", got.LastAttempt().ID+".call")); st != "Completed" {
				t.Errorf("archived call file status %q, want Completed", st)
			}
		})
		t.Run("call file to 100 over G.711", func(t *testing.T) {
			t.Parallel()
			// The call-file transport reports the attempt's transport like
			// Originate does (t38 above; g711 has no progress event of its own).
			j := e.submit(t, 1, testkit.Field("to", "100"), testkit.Field("line_group", "callfile"), testkit.Field("t38", "off"))
			got := e.wait(t, j.ID, job.Delivered, 3*time.Minute)
			if a := got.LastAttempt(); a.Line.Group != "callfile" || a.PagesSent != 1 || a.Transport != "g711" {
				t.Fatalf("call file attempt over G.711: %+v", a)
			}
		})
		t.Run("truncated and corrupt TIFFs fail before dialling", func(t *testing.T) {
			t.Parallel()
			before, _ := e.l.Calls("109") // nobody calls 109 (the remote counts every 1XX call)
			tif := testkit.FaxTIFF(t, 2)
			f, _ := tiff.Parse(tif)
			corrupt := append([]byte(nil), tif...)
			off := f.Pages[1].StripOffsets[0] + f.Pages[1].StripCounts[0]/2
			for i := uint32(0); i < 30; i++ {
				corrupt[off+i] ^= 0xa5
			}
			for name, doc := range map[string][]byte{"truncated": tif[:len(tif)*3/4], "corrupt": corrupt} {
				var j job.Job
				e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", name+".tif", doc), testkit.Field("to", "109"), testkit.Field("header", ""), testkit.Field("resolution", "standard"))
				got := e.wait(t, j.ID, job.Failed, time.Minute)
				if got.Error.Class != "document" || len(got.Attempts) != 0 {
					t.Errorf("%s TIFF: %+v, %d attempts", name, got.Error, len(got.Attempts))
				}
			}
			if after, _ := e.l.Calls("109"); after != before {
				t.Errorf("calls to 109 went from %d to %d", before, after)
			}
		})
	})
	t.Run("kill -9 during a fax: reconciled, not dialled again", func(t *testing.T) { testKillDuringFax(t, e, false) })
	t.Run("kill -9 during a fax that ends before the restart: result kept, not dialled again", func(t *testing.T) { testKillDuringFax(t, e, true) })
	t.Run("ami against the box", func(t *testing.T) { testAMI(t, e) })
	if t.Failed() {
		b, _ := os.ReadFile(filepath.Join(e.l.Box.Dir, "log", "console.log"))
		t.Logf("box console (tail):\n%s", tail(string(b), 4000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// testKillDuringFax runs the real faxbox binary against the lab, kills it
// with SIGKILL while a fax is being sent, restarts it, and checks that the
// fax completes and is reported once, without a second call.
// With endFirst, faxbox stays down until the call has ended: the result
// event is lost, and the restarted faxbox reads the result the dialplan
// kept in AstDB (dialler.Keeper).
func testKillDuringFax(t *testing.T, e *env, endFirst bool) {
	bin := filepath.Join(t.TempDir(), "faxbox")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/faxbox").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data, err := os.MkdirTemp("", "faxbox-kill-") // a path Asterisk may be given
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(data)
	if err := lab.Share(data); err != nil {
		t.Fatal(err)
	}
	defer lab.Unshare(data)
	cfg := e.l.FaxboxConfig(config.Default())
	cfg.DataDir = data
	cfg.Tokens = []string{token}
	cfgPath := filepath.Join(t.TempDir(), "faxbox.json")
	b, _ := json.Marshal(cfg)
	os.WriteFile(cfgPath, b, 0o600)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "-config", cfgPath, "-listen", addr)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		return cmd
	}
	p := start()
	rcv := testkit.NewReceiver(t)
	c := &testkit.Client{Base: "http://" + addr, Token: token}
	before, _ := e.l.Calls("100")
	var j job.Job
	c.Submit(t, "/v1/faxes", &j, testkit.File("file", "a.pdf", testkit.PDF(t, 3)), testkit.Field("to", "100"),
		testkit.Field("resolution", "standard"), testkit.Field("callback_url", rcv.URL))
	for i := 0; ; i++ {
		c.Do(t, "GET", "/v1/faxes/"+j.ID, nil, "", &j)
		if j.Status == job.Sending {
			break
		}
		if i > 600 || j.Status == job.RetryWait || j.Status.Terminal() {
			b, _ := json.Marshal(j.Attempts)
			t.Fatalf("never sending: %s %s", j.Status, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var ended chan struct{}
	if endFirst {
		mon, err := ami.Dial(context.Background(), ami.Config{Addr: e.l.Box.AMIAddr(), Username: lab.BoxAMIUser, Secret: lab.BoxAMISecret})
		if err != nil {
			t.Fatal(err)
		}
		defer mon.Close()
		ended = make(chan struct{})
		go func() {
			for m := range mon.Events() {
				if m.Get("UserEvent") == "FaxboxResult" && m.Get("Job") == j.ID {
					close(ended)
					return
				}
			}
		}()
	}
	time.Sleep(3 * time.Second) // mid-fax
	p.Process.Signal(syscall.SIGKILL)
	p.Wait()
	if endFirst {
		select {
		case <-ended:
		case <-time.After(3 * time.Minute):
			t.Fatal("the call never ended")
		}
	}
	p = start()
	defer func() { p.Process.Kill(); p.Wait() }()
	deadline := time.Now().Add(3 * time.Minute)
	for j.Status != job.Delivered {
		if j.Status.Terminal() || time.Now().After(deadline) {
			b, _ := json.Marshal(j)
			t.Fatalf("after the restart: %s", b)
		}
		time.Sleep(500 * time.Millisecond)
		c.Do(t, "GET", "/v1/faxes/"+j.ID, nil, "", &j)
	}
	if after, _ := e.l.Calls("100"); after != before+1 {
		t.Errorf("the remote got %d calls for the job, want 1 (dialled again after the restart)", after-before)
	}
	if len(j.Attempts) != 1 || j.Attempts[0].PagesSent != 3 {
		b, _ := json.Marshal(j.Attempts)
		t.Fatalf("attempts: %s", b)
	}
	// The dialplan keeps the result under the attempt's line, not under the
	// job: AstDB holds one result per line, however many faxes were sent.
	a := j.Attempts[0]
	db, err := e.l.Box.CLI("database show faxbox-result")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("/faxbox-result/%s.%d", a.Line.Group, a.Line.N); !regexp.MustCompile(regexp.QuoteMeta(want) + `\s*: ` + a.ID + `\|`).MatchString(db) {
		t.Errorf("AstDB has no result for %s under %s:\n%s", a.ID, want, db)
	}
	if strings.Contains(db, j.ID) {
		t.Errorf("AstDB keeps a result under the job %s:\n%s", j.ID, db)
	}
	hs := rcv.Wait(t, 30*time.Second, "fax.delivered", func(hs []testkit.Hook) bool {
		for _, ev := range testkit.Events(hs, j.ID) {
			if ev.Event == "fax.delivered" {
				return true
			}
		}
		return false
	})
	n := 0
	for _, ev := range testkit.Events(hs, j.ID) {
		if ev.Event == "fax.delivered" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d fax.delivered webhooks", n)
	}
}

// testAMI exercises the AMI client against the box's real Asterisk with the
// rendered least-privilege user.
func testAMI(t *testing.T, e *env) {
	ctx := context.Background()
	resync := make(chan struct{}, 8)
	c, err := ami.Dial(ctx, ami.Config{Addr: e.l.Box.AMIAddr(), Username: lab.BoxAMIUser, Secret: lab.BoxAMISecret, Keepalive: time.Second,
		OnConnect: func(context.Context, *ami.Client) { resync <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		for range c.Events() {
		}
	}()
	if _, err := ami.Dial(ctx, ami.Config{Addr: e.l.Box.AMIAddr(), Username: lab.BoxAMIUser, Secret: "wrong-secret"}); !errors.Is(err, ami.ErrLogin) {
		t.Errorf("wrong secret: %v", err)
	}
	if _, _, err := c.List(ctx, "CoreShowChannels"); err != nil {
		t.Fatalf("CoreShowChannels: %v", err)
	}
	// The product's user has no command or system class.
	if r, err := c.Action(ctx, "Command", ami.Header{Key: "Command", Value: "core show version"}); err == nil {
		t.Errorf("Command allowed for the faxbox user: %v", r)
	}
	// 1,000 concurrent actions, each answered to its caller.
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := c.Action(ctx, "Ping")
			if err != nil || r.Get("Response") != "Success" || r.Get("Ping") != "Pong" {
				bad.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of 1000 concurrent pings failed", bad.Load())
	}
	<-resync
	// Restart Asterisk under the client: it reconnects and re-syncs.
	if _, err := e.l.Box.CLI("core restart now"); err != nil {
		t.Logf("core restart: %v", err)
	}
	select {
	case <-resync:
	case <-time.After(30 * time.Second):
		t.Fatal("no reconnect within 30 s after core restart now")
	}
	if _, err := c.Action(ctx, "Ping"); err != nil {
		t.Fatalf("ping after the restart: %v", err)
	}
	if c.Reconnects() < 1 {
		t.Fatalf("reconnects = %d", c.Reconnects())
	}
}
