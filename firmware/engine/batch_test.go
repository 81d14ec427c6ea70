package engine

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/destctl"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
)

// batchOf sends up to n jobs to num in one call, waiting up to 5 s for them.
func batchOf(num string, n int) func(*Config) {
	return withRules(destctl.Rule{Prefix: num, MaxBatch: n, BatchWait: job.Duration(5 * time.Second)})
}

func withRules(rules ...destctl.Rule) func(*Config) {
	return func(c *Config) {
		ctl, err := destctl.Compile(rules)
		if err != nil {
			panic(err)
		}
		c.Rules = ctl
	}
}

func TestBatchOneCall(t *testing.T) {
	h := startWith(t, t.TempDir(), 2, batchOf("99990001", 5))
	for i := range 5 {
		h.submit(t, fmt.Sprint("b", i), "99990001", 3, time.Second)
	}
	call := ""
	for i := range 5 {
		j := h.wait(t, fmt.Sprint("b", i), job.Delivered)
		a := j.Attempts[0]
		if len(j.Attempts) != 1 || a.PagesSent != 3 || j.PagesConfirmed != 3 || j.Dials != 1 || j.Tries != 1 {
			t.Fatalf("job %s: %d attempts, pages %d/%d, dials %d, tries %d", j.ID, len(j.Attempts), a.PagesSent, j.PagesConfirmed, j.Dials, j.Tries)
		}
		if call == "" {
			call = a.Call
		}
		if a.Call == "" || a.Call != call || a.CallOffset%3 != 0 || a.Result != job.AttemptDelivered {
			t.Fatalf("job %s attempt: call %q (first %q) offset %d result %s", j.ID, a.Call, call, a.CallOffset, a.Result)
		}
	}
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	if h.rec.calls != 1 {
		t.Fatalf("%d calls for 5 jobs with max_batch 5; want 1", h.rec.calls)
	}
	if got := fmt.Sprint(h.rec.evs["b3"]); got != "[fax.delivered]" {
		t.Fatalf("each job keeps its own events: b3 got %s", got)
	}
}

func TestBatchBreaksMidCall(t *testing.T) {
	// 99990005 breaks after the call's first page when it starts at page 1.
	h := startWith(t, t.TempDir(), 1, batchOf("99990005", 3))
	for _, id := range []string{"x", "y", "z"} {
		h.submit(t, id, "99990005", 3, 50*time.Millisecond)
	}
	x := h.wait(t, "x", job.Delivered)
	y := h.wait(t, "y", job.Delivered)
	z := h.wait(t, "z", job.Delivered)
	if len(x.Attempts) != 2 || x.Attempts[0].PagesSent != 1 || x.Attempts[1].FirstPage != 2 || x.Attempts[1].PagesSent != 2 {
		t.Fatalf("x (its page 1 confirmed before the break) must resume at page 2: %+v", x.Attempts)
	}
	for _, j := range []*job.Job{y, z} {
		if len(j.Attempts) != 2 || j.Attempts[0].PagesSent != 0 || j.Attempts[0].Error == nil ||
			j.Attempts[1].FirstPage != 1 || j.Attempts[1].PagesSent != 3 {
			t.Fatalf("%s (nothing confirmed in the broken call) must be sent whole again: %+v", j.ID, j.Attempts)
		}
	}
	if x.Attempts[1].Call == "" || x.Attempts[1].Call != y.Attempts[1].Call || y.Attempts[1].Call != z.Attempts[1].Call {
		t.Fatalf("the second call must carry all three again: %q %q %q", x.Attempts[1].Call, y.Attempts[1].Call, z.Attempts[1].Call)
	}
	if o := []int{x.Attempts[1].CallOffset, y.Attempts[1].CallOffset, z.Attempts[1].CallOffset}; fmt.Sprint(o) != "[0 2 5]" {
		t.Fatalf("page offsets in the second call = %v, want [0 2 5] (x sends 2 pages, y and z 3)", o)
	}
}

func TestShareOfBatchResult(t *testing.T) {
	broke := dialler.Result{AttemptID: "call", Code: failure.FaxRemoteHangup, Raw: "hung up", PagesSent: 5, ReachedFax: true}
	for _, c := range []struct {
		name          string
		r             dialler.Result
		offset, pages int
		wantCode      failure.Code
		wantPages     int
	}{
		{"all of its pages before the break", broke, 0, 3, "", 3},
		{"the break in its pages", broke, 3, 3, failure.FaxRemoteHangup, 2},
		{"after the break", broke, 6, 2, failure.FaxRemoteHangup, 0},
		{"ends exactly at the break", broke, 2, 3, "", 3},
		{"delivered call", dialler.Result{AttemptID: "call", PagesSent: 9}, 6, 3, "", 3},
		{"busy", dialler.Result{AttemptID: "call", Code: failure.LineBusy}, 0, 3, failure.LineBusy, 0},
	} {
		got := shareOf(c.r, "mine", c.offset, c.pages)
		if got.AttemptID != "mine" || got.Code != c.wantCode || got.PagesSent != c.wantPages {
			t.Errorf("%s: %s %q pages %d; want %q pages %d", c.name, got.AttemptID, got.Code, got.PagesSent, c.wantCode, c.wantPages)
		}
	}
}

func TestBatchCancelOneJob(t *testing.T) {
	h := startWith(t, t.TempDir(), 1, batchOf("99990001", 2))
	h.submit(t, "keep", "99990001", 1, time.Second)
	h.submit(t, "drop", "99990001", 1, time.Second)
	h.wait(t, "drop", job.Sending)
	if _, err := h.e.Cancel("drop"); err != nil {
		t.Fatal(err)
	}
	// The call is not hung up for the other job: both jobs' pages go, and the
	// cancelled job, delivered meanwhile, stays delivered (as for a call of
	// its own that completes while being cancelled).
	keep := h.wait(t, "keep", job.Delivered)
	drop := h.wait(t, "drop", job.Delivered)
	if keep.Attempts[0].Call == "" || keep.Attempts[0].Call != drop.Attempts[0].Call {
		t.Fatalf("not one call: %q %q", keep.Attempts[0].Call, drop.Attempts[0].Call)
	}

	// Every job of the call cancelled: the call is hung up.
	h.submit(t, "c1", "99990001", 1, time.Second)
	h.submit(t, "c2", "99990001", 1, time.Second)
	h.wait(t, "c2", job.Sending)
	h.e.Cancel("c1")
	h.e.Cancel("c2")
	for _, id := range []string{"c1", "c2"} {
		if j := h.wait(t, id, job.Cancelled); j.LastAttempt().Error.Code != failure.LineDropped {
			t.Fatalf("%s: attempt error %+v; want the hung-up call's", id, j.LastAttempt().Error)
		}
	}
}

func TestBatchRestart(t *testing.T) {
	dir := t.TempDir()
	h := startWith(t, dir, 1, batchOf("99990001", 2))
	h.submit(t, "p", "99990001", 3, 20*time.Millisecond)
	h.submit(t, "q", "99990001", 3, 20*time.Millisecond)
	h.wait(t, "q", job.Sending)
	h.e.Close() // the call is lost with the process
	h.st.Close()
	h2 := startWith(t, dir, 1, batchOf("99990001", 2))
	for _, id := range []string{"p", "q"} {
		j := h2.wait(t, id, job.Delivered)
		if len(j.Attempts) != 2 || j.Attempts[0].Error == nil || j.Attempts[0].Error.Code != failure.LineInterrupted {
			t.Fatalf("%s: attempts after restart: %+v", id, j.Attempts)
		}
	}
	h2.rec.mu.Lock()
	defer h2.rec.mu.Unlock()
	if h2.rec.calls != 1 {
		t.Fatalf("%d calls after the restart; want the two jobs in one call again", h2.rec.calls)
	}
}

// callMedia is a MediaReporter that, like the capture's tracker, knows
// calls by the id the dialler dialled (a batch call's id, not its jobs'
// attempt ids).
type callMedia struct{}

func (callMedia) Report(r dialler.Result) *job.MediaReport {
	return &job.MediaReport{Transport: "t38", Tie: "call " + r.AttemptID}
}

// observed counts what media health is told.
type observed struct {
	mu  sync.Mutex
	ats []job.Attempt
}

func (o *observed) AvoidT38(string, time.Time) (bool, string) { return false, "" }
func (o *observed) Observe(_ string, a *job.Attempt, _ bool, _ time.Time) {
	o.mu.Lock()
	o.ats = append(o.ats, *a)
	o.mu.Unlock()
}

// TestBatchMediaReport: every job of a batch call carries the call's media
// report, and media health learns from the call once — through the job
// the call broke in.
func TestBatchMediaReport(t *testing.T) {
	obs := &observed{}
	h := startWith(t, t.TempDir(), 1, func(c *Config) {
		batchOf("99990005", 3)(c)
		c.Media, c.Health = callMedia{}, obs
	})
	for _, id := range []string{"x", "y", "z"} {
		h.submit(t, id, "99990005", 3, 50*time.Millisecond)
	}
	var jobs []*job.Job
	for _, id := range []string{"x", "y", "z"} {
		jobs = append(jobs, h.wait(t, id, job.Delivered))
	}
	for _, j := range jobs {
		for _, a := range j.Attempts {
			if a.Call == "" || a.Media == nil || a.Media.Tie != "call "+a.Call {
				t.Fatalf("job %s attempt %s (call %s): media %+v, want the call's report", j.ID, a.ID, a.Call, a.Media)
			}
		}
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	// Two calls (the first broke after x's page 1): two observations.
	if len(obs.ats) != 2 {
		t.Fatalf("media health was told %d times for 2 calls", len(obs.ats))
	}
	if a := obs.ats[0]; a.ID != jobs[0].Attempts[0].ID || a.Error == nil {
		t.Fatalf("the broken call is learned through x's failed attempt, got %+v", a)
	}
}
