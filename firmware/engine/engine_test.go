package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/scheduler"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/testline"
	"github.com/faxbox/faxbox/firmware/tiff"
)

// fakeDocs "converts" to a file holding the page count.
type fakeDocs struct{ pages int }

func (f fakeDocs) Convert(_ context.Context, j *job.Job, in []Input, out string) (int, failure.Code, error) {
	if j.To == "99990009" {
		return 0, failure.DocumentUnreadable, fmt.Errorf("broken")
	}
	return f.pages, "", os.WriteFile(out, []byte(fmt.Sprint(f.pages)), 0o600)
}

func (f fakeDocs) Validate(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var n int
	_, err = fmt.Sscan(string(b), &n)
	return n, err
}

func (f fakeDocs) Extract(src, dst string, from int) (int, error) {
	n, err := f.Validate(src)
	if err != nil {
		return 0, err
	}
	return n - from + 1, os.WriteFile(dst, []byte(fmt.Sprint(n-from+1)), 0o600)
}

// Join "joins" by adding the parts' page counts.
func (f fakeDocs) Join(dst string, parts ...tiff.Part) (int, error) {
	total := 0
	for _, p := range parts {
		n, err := f.Validate(p.Path)
		if err != nil {
			return 0, err
		}
		total += n - p.From + 1
	}
	return total, os.WriteFile(dst, []byte(fmt.Sprint(total)), 0o600)
}

// recorder counts dials per job and collects deliveries.
type recorder struct {
	mu    sync.Mutex
	dials map[string]int
	evs   map[string][]job.Event
	inner dialler.Dialler
	max   map[string]int // concurrent calls per number
	cur   map[string]int
	calls int
	last  map[string]dialler.Request // the last request per job
}

func (r *recorder) Dial(ctx context.Context, q dialler.Request) error {
	r.mu.Lock()
	r.dials[q.JobID]++
	r.calls++
	if r.last == nil {
		r.last = map[string]dialler.Request{}
	}
	r.last[q.JobID] = q
	r.cur[q.To]++
	if r.cur[q.To] > r.max[q.To] {
		r.max[q.To] = r.cur[q.To]
	}
	r.mu.Unlock()
	return r.inner.Dial(ctx, q)
}
func (r *recorder) Hangup(ctx context.Context, id string) error { return r.inner.Hangup(ctx, id) }
func (r *recorder) Reconcile(ctx context.Context, attempts []dialler.Request) (map[string]bool, error) {
	return r.inner.Reconcile(ctx, attempts)
}

type sinkFn struct {
	e   **Engine
	rec *recorder
}

func (s *sinkFn) Progress(p dialler.Progress) { (*s.e).Progress(p) }
func (s *sinkFn) Result(r dialler.Result) {
	(*s.e).mu.Lock()
	if en := (*s.e).calls[r.AttemptID]; en != nil {
		s.rec.mu.Lock()
		s.rec.cur[en.rec.Job.To]--
		s.rec.mu.Unlock()
	} else if b := (*s.e).batches[r.AttemptID]; b != nil && len(b.members) > 0 {
		s.rec.mu.Lock()
		s.rec.cur[b.members[0].rec.Job.To]--
		s.rec.mu.Unlock()
	}
	(*s.e).mu.Unlock()
	(*s.e).Result(r)
}

type harness struct {
	e   *Engine
	st  *store.DB
	rec *recorder
}

func start(t *testing.T, dir string, channels int) *harness {
	t.Helper()
	return startWith(t, dir, channels, nil)
}

// startWith starts an engine on the test line; set changes its config.
func startWith(t *testing.T, dir string, channels int, set func(*Config)) *harness {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{st: st, rec: &recorder{dials: map[string]int{}, evs: map[string][]job.Event{}, max: map[string]int{}, cur: map[string]int{}}}
	sink := &sinkFn{e: &h.e, rec: h.rec}
	h.rec.inner = testline.New("9999000", 20*time.Millisecond, clock.Real{}, sink)
	cfg := Config{
		Store: st, Docs: fakeDocs{pages: 3}, Workers: 2,
		Groups:   []*scheduler.Group{{Name: "test", Channels: channels, Prefixes: []string{"9999000"}, Test: true}},
		Diallers: map[string]dialler.Dialler{"test": h.rec},
		Outbox: func(j *job.Job, evs []job.Event) []*store.Delivery {
			h.rec.mu.Lock()
			h.rec.evs[j.ID] = append(h.rec.evs[j.ID], evs...)
			h.rec.mu.Unlock()
			return nil
		},
	}
	if set != nil {
		set(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		if n := e.Stats().SkippedWrites; n != 0 {
			t.Errorf("the store refused %d of the engine's changes", n)
		}
		st.Close()
		if err := store.CheckDir(dir); err != nil {
			t.Errorf("after the test: %v", err)
		}
	})
	return h
}

func (h *harness) submit(t *testing.T, id, to string, maxAttempts int, interval time.Duration) {
	t.Helper()
	now := time.Now()
	j := &job.Job{ID: id, Kind: job.KindFax, To: to, Status: job.Queued, CreatedAt: now, UpdatedAt: now,
		MaxAttempts: maxAttempts, RetryInterval: job.Duration(interval), ExpireAt: now.Add(time.Hour)}
	os.MkdirAll(h.st.DocDir(id), 0o750)
	r, err := h.st.Create(&store.Record{Job: j, Paths: []string{"in-00.pdf"}})
	if err != nil {
		t.Fatal(err)
	}
	h.e.Submit(r)
}

func (h *harness) wait(t *testing.T, id string, want job.Status) *job.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		j, err := h.e.Get(id)
		if err == nil && j.Status == want {
			return j
		}
		time.Sleep(5 * time.Millisecond)
	}
	j, _ := h.e.Get(id)
	t.Fatalf("job %s: status %s, want %s", id, j.Status, want)
	return nil
}

func TestOutcomes(t *testing.T) {
	h := start(t, t.TempDir(), 4)
	h.submit(t, "ok", "99990001", 3, 50*time.Millisecond)
	h.submit(t, "busy", "99990002", 3, 50*time.Millisecond)
	h.submit(t, "resume", "99990005", 3, 50*time.Millisecond)
	h.submit(t, "invalid", "99990006", 3, 50*time.Millisecond)
	h.submit(t, "broken", "99990009", 3, 50*time.Millisecond)

	ok := h.wait(t, "ok", job.Delivered)
	if ok.PagesConfirmed != 3 || len(ok.Attempts) != 1 || ok.Dials != 1 || ok.Tries != 1 {
		t.Errorf("delivered job: pages %d attempts %d dials %d tries %d", ok.PagesConfirmed, len(ok.Attempts), ok.Dials, ok.Tries)
	}
	busy := h.wait(t, "busy", job.Failed)
	if busy.Error.Code != failure.LineBusy || len(busy.Attempts) != 3 || busy.Tries != 0 {
		t.Errorf("busy job: error %+v attempts %d tries %d", busy.Error, len(busy.Attempts), busy.Tries)
	}
	for i := 1; i < len(busy.Attempts); i++ {
		gap := busy.Attempts[i].StartedAt.Sub(*busy.Attempts[i-1].EndedAt)
		if gap < 50*time.Millisecond {
			t.Errorf("attempt %d started %s after the previous ended; interval is 50ms", i+1, gap)
		}
	}
	res := h.wait(t, "resume", job.Delivered)
	if len(res.Attempts) != 2 || res.Attempts[0].PagesSent != 1 || res.Attempts[1].FirstPage != 2 || res.Attempts[1].PagesSent != 2 {
		t.Errorf("resume: %+v", res.Attempts)
	}
	inv := h.wait(t, "invalid", job.Failed)
	if inv.Error.Code != failure.LineInvalidNumber || len(inv.Attempts) != 1 {
		t.Errorf("invalid: %+v, %d attempts", inv.Error, len(inv.Attempts))
	}
	br := h.wait(t, "broken", job.Failed)
	if br.Error.Code != failure.DocumentUnreadable || len(br.Attempts) != 0 {
		t.Errorf("broken: %+v", br.Error)
	}
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	if got := fmt.Sprint(h.rec.evs["busy"]); got != "[fax.attempt_failed fax.attempt_failed fax.attempt_failed fax.failed]" {
		t.Errorf("busy events: %s", got)
	}
	if got := fmt.Sprint(h.rec.evs["ok"]); got != "[fax.delivered]" {
		t.Errorf("ok events: %s", got)
	}
	// The store holds what the engine reports.
	r, _ := h.st.Get("resume")
	if r.Job.Status != job.Delivered || r.Job.PagesConfirmed != 3 {
		t.Errorf("stored: %s %d", r.Job.Status, r.Job.PagesConfirmed)
	}
}

func TestOneCallPerNumberAndCapacity(t *testing.T) {
	h := start(t, t.TempDir(), 3)
	for i := 0; i < 6; i++ {
		h.submit(t, fmt.Sprintf("j%d", i), "99990001", 1, time.Second)
	}
	for i := 0; i < 6; i++ {
		h.wait(t, fmt.Sprintf("j%d", i), job.Delivered)
	}
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	if h.rec.max["99990001"] != 1 {
		t.Fatalf("a number was in %d calls at once", h.rec.max["99990001"])
	}
}

func TestCancel(t *testing.T) {
	h := start(t, t.TempDir(), 1)
	h.submit(t, "long", "99990001", 1, time.Second)
	h.wait(t, "long", job.Sending)
	if _, err := h.e.Cancel("long"); err != nil {
		t.Fatal(err)
	}
	j := h.wait(t, "long", job.Cancelled)
	if j.LastAttempt().Error.Code != failure.LineDropped {
		t.Errorf("attempt error %+v", j.LastAttempt().Error)
	}
	h.submit(t, "wait", "99990002", 3, 30*time.Minute)
	h.wait(t, "wait", job.RetryWait)
	if _, err := h.e.Cancel("wait"); err != nil {
		t.Fatal(err)
	}
	h.wait(t, "wait", job.Cancelled)
	if _, err := h.e.Cancel("wait"); err != ErrFinished {
		t.Fatalf("cancel twice: %v", err)
	}
	// Retry brings it back with a fresh budget.
	if _, err := h.e.Retry("wait"); err != nil {
		t.Fatal(err)
	}
	h.wait(t, "wait", job.RetryWait)
}

func TestRestartRecoversInterruptedAttempt(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, 1)
	h.submit(t, "x", "99990001", 3, 20*time.Millisecond)
	h.wait(t, "x", job.Sending)
	h.e.Close() // the call is lost with the process
	h.st.Close()
	st, _ := store.Open(dir, store.Options{})
	r, _ := st.Get("x")
	st.Close()
	if !r.Job.Status.Active() {
		t.Fatalf("stored status %s; want an attempt in progress", r.Job.Status)
	}
	h2 := start(t, dir, 1)
	j := h2.wait(t, "x", job.Delivered)
	if len(j.Attempts) != 2 || j.Attempts[0].Error == nil || j.Attempts[0].Error.Code != failure.LineInterrupted {
		t.Fatalf("attempts after restart: %+v", j.Attempts)
	}
	if _, err := os.Stat(filepath.Join(dir, "faxbox.db")); err != nil {
		t.Fatal(err)
	}
}

// TestCallingWindow: with an injected clock, a job outside its line group's
// calling window waits and goes when the window opens; an urgent one
// (priority 9) goes at once.
func TestCallingWindow(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	loc := time.UTC
	clk := clock.NewFake(time.Date(2026, 11, 23, 7, 30, 0, 0, loc))
	w, _ := scheduler.ParseWindow("08:00-20:00")
	rec := &recorder{dials: map[string]int{}, evs: map[string][]job.Event{}, max: map[string]int{}, cur: map[string]int{}}
	var e *Engine
	sink := &sinkFn{e: &e, rec: rec}
	rec.inner = testline.New("9999000", time.Second, clk, sink)
	e, err = New(Config{Store: st, Docs: fakeDocs{pages: 1}, Clock: clk, Workers: 1,
		Groups:   []*scheduler.Group{{Name: "test", Channels: 2, Prefixes: []string{"9999000"}, Test: true, Windows: []scheduler.Window{w}}},
		Diallers: map[string]dialler.Dialler{"test": rec}})
	if err != nil {
		t.Fatal(err)
	}
	e.Start(context.Background())
	defer e.Close()
	submit := func(id string, prio int) {
		now := clk.Now()
		j := &job.Job{ID: id, Kind: job.KindFax, To: "9999000" + id[len(id)-1:], Status: job.Queued, CreatedAt: now, UpdatedAt: now,
			MaxAttempts: 1, RetryInterval: job.Duration(time.Minute), ExpireAt: now.Add(24 * time.Hour), Priority: prio}
		os.MkdirAll(st.DocDir(id), 0o750)
		r, _ := st.Create(&store.Record{Job: j})
		e.Submit(r)
	}
	status := func(id string) job.Status { j, _ := e.Get(id); return j.Status }
	waitFor := func(id string, want job.Status) {
		t.Helper()
		for i := 0; i < 500 && status(id) != want; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		if s := status(id); s != want {
			t.Fatalf("%s: %s, want %s", id, s, want)
		}
	}
	submit("normal1", 5)
	submit("urgent1", 9)
	waitFor("normal1", job.Ready)
	waitFor("urgent1", job.Dialing)
	time.Sleep(50 * time.Millisecond)
	if s := status("normal1"); s != job.Ready {
		t.Fatalf("dialled outside the window: %s", s)
	}
	clk.Advance(29 * time.Minute) // 07:59
	time.Sleep(50 * time.Millisecond)
	if s := status("normal1"); s != job.Ready {
		t.Fatalf("dialled at 07:59: %s", s)
	}
	clk.Advance(time.Minute) // 08:00: the window opens
	waitFor("normal1", job.Dialing)
	j, _ := e.Get("normal1")
	if got := j.Attempts[0].StartedAt; !got.Equal(time.Date(2026, 11, 23, 8, 0, 0, 0, loc)) {
		t.Fatalf("dialled at %s", got)
	}
}

// TestGroupDown: a line card alarm takes lines out of their group; a job
// waits while every line is down and goes out when one comes back.
func TestGroupDown(t *testing.T) {
	h := start(t, t.TempDir(), 3)
	if err := h.e.SetGroupDown("test", 3); err != nil {
		t.Fatal(err)
	}
	for _, l := range h.e.Lines() {
		if l.State != "down" || l.Healthy {
			t.Fatalf("line %s/%d: %s healthy=%v, want down", l.Group, l.Index, l.State, l.Healthy)
		}
	}
	h.submit(t, "j1", "99990001", 1, time.Second)
	time.Sleep(300 * time.Millisecond)
	if j, _ := h.e.Get("j1"); j.Status != job.Ready {
		t.Fatalf("with every line down the job is %s, want ready (waiting for a line)", j.Status)
	}
	h.rec.mu.Lock()
	dials := h.rec.dials["j1"]
	h.rec.mu.Unlock()
	if dials != 0 {
		t.Fatalf("dialled %d times on lines that are down", dials)
	}
	if err := h.e.SetGroupDown("test", 1); err != nil {
		t.Fatal(err)
	}
	h.wait(t, "j1", job.Delivered)
	var states []string
	for _, l := range h.e.Lines() {
		states = append(states, string(l.State))
	}
	if fmt.Sprint(states) != "[idle idle down]" {
		t.Fatalf("one line down: %v", states)
	}
	h.e.SetLineBusy(job.LineID{Group: "test", N: 3}, true)
	h.e.SetGroupDown("test", 0)
	states = states[:0]
	for _, l := range h.e.Lines() {
		states = append(states, string(l.State))
	}
	if fmt.Sprint(states) != "[idle idle busied_out]" {
		t.Fatalf("alarm cleared, line 3 made busy: %v", states)
	}
	if err := h.e.SetGroupDown("nosuch", 1); err == nil {
		t.Fatal("an unknown group was accepted")
	}
}
