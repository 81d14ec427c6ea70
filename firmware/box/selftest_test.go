package box

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/selftest"
	"github.com/faxbox/faxbox/firmware/tiff"
	"github.com/faxbox/faxbox/internal/testkit"
)

// fakeLine stands in for an Asterisk line: the self-test's loop (it
// "receives" the sent TIFF into the receive directory, all its pages or,
// with drop, from page 2 on) or the trunk (delivered, or busy).
type fakeLine struct {
	mu    sync.Mutex
	box   *Box
	rxDir string
	drop  bool
	busy  bool
	dials []dialler.Request
}

func (f *fakeLine) Dial(_ context.Context, r dialler.Request) error {
	f.mu.Lock()
	f.dials = append(f.dials, r)
	rxDir, drop, busy := f.rxDir, f.drop, f.busy
	f.mu.Unlock()
	go func() {
		b := f.owner()
		now := time.Now()
		res := dialler.Result{AttemptID: r.AttemptID, Answered: true, ReachedFax: true, PagesSent: r.Fax.Pages, Transport: "t38", AnsweredAt: now, EndedAt: now}
		if busy {
			res = dialler.Result{AttemptID: r.AttemptID, Code: failure.LineBusy, Raw: "BUSY", EndedAt: now}
		}
		if rxDir != "" {
			from := 1
			if drop {
				from = 2
			}
			if _, err := tiff.Extract(r.Fax.TIFF, filepath.Join(rxDir, selftest.ReceivedFile(r.JobID)), from); err != nil {
				res = dialler.Result{AttemptID: r.AttemptID, Code: failure.FaxEngine, Raw: err.Error(), EndedAt: now}
			}
		}
		b.Engine.Result(res)
	}()
	return nil
}

// owner waits for the box the line reports to (a boot self-test may dial
// before startLoopBox has set it).
func (f *fakeLine) owner() *Box {
	for {
		f.mu.Lock()
		b := f.box
		f.mu.Unlock()
		if b != nil {
			return b
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fakeLine) Hangup(context.Context, string) error { return nil }
func (f *fakeLine) Reconcile(context.Context, []dialler.Request) (map[string]bool, error) {
	return map[string]bool{}, nil
}

// startLoopBox runs a box with an asterisk section and a SIP trunk whose
// lines (the trunk's and the self-test's) are fakes.
func startLoopBox(t *testing.T, loop, trunk *fakeLine, mod func(*config.Config)) (*Box, *testkit.Client, config.Config) {
	t.Helper()
	testkit.Require(t, "gs")
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Tokens = []string{token}
	rx := t.TempDir()
	cfg.Asterisk = &config.Asterisk{AMIAddr: "127.0.0.1:1", AMISecret: "loop-secret-1", ReceiveDir: rx,
		Trunk: &config.Trunk{Name: "trunk", Host: "192.0.2.1:5060", T38: true, Channels: 2}}
	cfg.LineGroups = []config.LineGroup{{Name: "trunk", Channels: 2, Dial: "PJSIP/%s@trunk"}}
	if mod != nil {
		mod(&cfg)
	}
	loop.rxDir = rx
	b, err := Open(context.Background(), cfg, Options{Version: "test", Diallers: map[string]dialler.Dialler{"trunk": trunk, selftest.Group: loop}})
	if err != nil {
		t.Fatal(err)
	}
	loop.mu.Lock()
	loop.box = b
	loop.mu.Unlock()
	trunk.mu.Lock()
	trunk.box = b
	trunk.mu.Unlock()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; b.Close() })
	return b, &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}, cfg
}

func waitRun(t *testing.T, c *testkit.Client, path string) selftest.Run {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for {
		var run selftest.Run
		c.Do(t, http.MethodGet, path, nil, "", &run)
		if run.Status != selftest.Running {
			return run
		}
		if time.Now().After(end) {
			t.Fatalf("%s still running: %+v", path, run)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The self-test goes on its own line to the loop number, passes when the
// loop received every page, fails (selftest.pages_mismatch) when a page
// is missing, is refused while one runs, and its job is nobody's: not
// listed, no line of the trunk's used. The latest run survives a restart.
func TestSelfTestLoop(t *testing.T) {
	loop, trunk := &fakeLine{}, &fakeLine{}
	b, c, cfg := startLoopBox(t, loop, trunk, nil)
	if resp := c.Do(t, http.MethodGet, "/v1/selftest", nil, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET before any run: %d", resp.StatusCode)
	}
	var started selftest.Run
	resp := c.Do(t, http.MethodPost, "/v1/selftest", nil, "", &started)
	if resp.StatusCode != http.StatusAccepted || started.Status != selftest.Running || started.Path != "loopback" {
		t.Fatalf("POST: %d %+v", resp.StatusCode, started)
	}
	run := waitRun(t, c, "/v1/selftest")
	if run.Status != selftest.Passed || run.PagesSent != 2 || run.PagesReceived == nil || *run.PagesReceived != 2 || run.Attempt == nil || run.EndedAt == nil {
		t.Fatalf("run: %+v", run)
	}
	loop.mu.Lock()
	d := loop.dials
	loop.mu.Unlock()
	if len(d) != 1 || d[0].To != selftest.Number(cfg.Asterisk.AMISecret) || d[0].Line.Group != selftest.Group || len(trunk.dials) != 0 {
		t.Fatalf("dials: loop %+v, trunk %+v", d, trunk.dials)
	}
	if m, _ := filepath.Glob(filepath.Join(cfg.Asterisk.ReceiveDir, "*")); len(m) != 0 {
		t.Fatalf("received file left: %v", m)
	}
	var list struct{ Items []job.Job }
	c.Do(t, http.MethodGet, "/v1/faxes", nil, "", &list)
	if len(list.Items) != 0 {
		t.Fatalf("listed: %+v", list.Items)
	}
	if s := b.selfTestSummary(); s != "passed" {
		t.Fatalf("LCD summary %q", s)
	}

	loop.mu.Lock()
	loop.drop = true
	loop.mu.Unlock()
	c.Do(t, http.MethodPost, "/v1/selftest", nil, "", nil)
	if resp := c.Do(t, http.MethodPost, "/v1/selftest", nil, "", nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("second POST while running: %d", resp.StatusCode)
	}
	run = waitRun(t, c, "/v1/selftest")
	if run.Status != selftest.Failed || run.Error == nil || run.Error.Code != selftest.CodePagesMismatch || *run.PagesReceived != 1 {
		t.Fatalf("a lost page: %+v %+v", run, run.Error)
	}
	if s := b.selfTestSummary(); s != "failed selftest.pages_mismatch" {
		t.Fatalf("LCD summary %q", s)
	}
	b.selftests.close()
	b.selftests.stop = make(chan struct{})
	b.selftests.runs = map[string]*selftest.Run{}
	b.selftests.load()
	if r := b.SelfTest(); r == nil || r.JobID != run.JobID || r.Status != selftest.Failed {
		t.Fatalf("after load: %+v", r)
	}
}

// Qualification sends to the configured (or asked) number through the
// trunk's line and scores it; a busy number fails with score 0; unknown
// trunks, missing and bad numbers are refused.
func TestQualify(t *testing.T) {
	loop, trunk := &fakeLine{}, &fakeLine{}
	_, c, _ := startLoopBox(t, loop, trunk, func(c *config.Config) { c.Qualify.Number = "0301234567" })
	for _, tc := range []struct {
		path, body string
		status     int
		code       string
	}{
		{"/v1/trunks/other/qualify", "", 404, "not_found"},
		{"/v1/trunks/trunk/qualify", `{"number": "12x"}`, 400, "invalid_number"},
		{"/v1/trunks/trunk/qualify", `{"nummer": "123"}`, 400, "invalid_body"},
	} {
		var e struct{ Error struct{ Code string } }
		resp := c.Do(t, http.MethodPost, tc.path, strings.NewReader(tc.body), "application/json", &e)
		if resp.StatusCode != tc.status || e.Error.Code != tc.code {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, resp.StatusCode, e.Error.Code)
		}
	}
	var started selftest.Run
	if resp := c.Do(t, http.MethodPost, "/v1/trunks/trunk/qualify", nil, "", &started); resp.StatusCode != http.StatusAccepted || started.To != "0301234567" {
		t.Fatalf("POST: %d %+v", resp.StatusCode, started)
	}
	run := waitRun(t, c, "/v1/trunks/trunk/qualify")
	if run.Status != selftest.Passed || run.Qualification == nil || run.Qualification.Grade != selftest.GradeUnmeasured {
		t.Fatalf("qualification: %+v", run)
	}
	trunk.mu.Lock()
	trunk.busy = true
	trunk.mu.Unlock()
	c.Do(t, http.MethodPost, "/v1/trunks/trunk/qualify", bytes.NewReader([]byte(`{"number": "+4930555"}`)), "application/json", nil)
	run = waitRun(t, c, "/v1/trunks/trunk/qualify")
	if run.Status != selftest.Failed || run.To != "+4930555" || run.Error == nil || run.Error.Code != failure.LineBusy || run.Qualification.Score != 0 {
		t.Fatalf("busy: %+v", run)
	}
	trunk.mu.Lock()
	n := len(trunk.dials)
	trunk.mu.Unlock()
	if n != 2 {
		t.Fatalf("trunk dials %d", n)
	}
}

// Without a number configured or asked, qualification is refused.
func TestQualifyNeedsNumber(t *testing.T) {
	_, c, _ := startLoopBox(t, &fakeLine{}, &fakeLine{}, nil)
	var e struct{ Error struct{ Code, Field string } }
	resp := c.Do(t, http.MethodPost, "/v1/trunks/trunk/qualify", nil, "", &e)
	if resp.StatusCode != http.StatusUnprocessableEntity || e.Error.Code != "missing_field" || e.Error.Field != "number" {
		t.Fatalf("%d %+v", resp.StatusCode, e)
	}
}

// With selftest.on_boot the box runs the self-test once by itself after
// the start.
func TestSelfTestOnBoot(t *testing.T) {
	loop := &fakeLine{}
	_, c, _ := startLoopBox(t, loop, &fakeLine{}, func(c *config.Config) { c.SelfTest.OnBoot = true })
	end := time.Now().Add(30 * time.Second)
	for {
		var run selftest.Run
		resp := c.Do(t, http.MethodGet, "/v1/selftest", nil, "", &run)
		if resp.StatusCode == http.StatusOK && run.Status == selftest.Passed && run.Path == "loopback" {
			break
		}
		if run.Status == selftest.Failed || time.Now().After(end) {
			t.Fatalf("no boot self-test passed: %d %+v", resp.StatusCode, run)
		}
		time.Sleep(20 * time.Millisecond)
	}
	loop.mu.Lock()
	defer loop.mu.Unlock()
	if len(loop.dials) != 1 {
		t.Fatalf("boot self-test dialled %d times", len(loop.dials))
	}
}
