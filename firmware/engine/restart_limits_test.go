package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/capacity"
	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/destctl"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/testline"
)

// holdLine keeps every call up until the test ends it, and survives a
// restart of the engine (its calls are still up: Reconcile finds them).
type holdLine struct {
	mu    sync.Mutex
	dials []dialler.Request
	up    map[string]bool
}

func (d *holdLine) Dial(_ context.Context, r dialler.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials = append(d.dials, r)
	d.up[r.AttemptID] = true
	return nil
}
func (d *holdLine) Hangup(context.Context, string) error { return nil }
func (d *holdLine) Reconcile(_ context.Context, rs []dialler.Request) (map[string]bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	alive := map[string]bool{}
	for _, r := range rs {
		if d.up[r.AttemptID] {
			alive[r.AttemptID] = true
		}
	}
	return alive, nil
}

// dialsTo returns the jobs dialled to number, in order.
func (d *holdLine) dialsTo(number string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, r := range d.dials {
		if r.To == number {
			out = append(out, r.JobID)
		}
	}
	return out
}

// waitStored waits until the store holds job id in a call (its attempt is
// durable, so a restart finds it).
func waitStored(t *testing.T, st *store.DB, id string) *job.Job {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if r, _ := st.Get(id); r != nil && r.Job.Status == job.Dialing && len(r.Job.Attempts) == 1 {
			return r.Job
		}
	}
	t.Fatalf("job %s never stored in a call", id)
	return nil
}

// A number's limit holds across a restart with its calls still up: the
// calls recovered from the store count against max_concurrent, so no call
// beyond it is started until one of them ends.
func TestLimitHeldAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	rules := withRules(destctl.Rule{Prefix: "99990001", MaxConcurrent: 2})
	line := &holdLine{up: map[string]bool{}}
	on := func(c *Config) { rules(c); c.Diallers["test"] = line }
	h := startWith(t, dir, 4, on)
	h.submit(t, "up1", "99990001", 3, time.Second)
	h.submit(t, "up2", "99990001", 3, time.Second)
	waitStored(t, h.st, "up1")
	up2 := waitStored(t, h.st, "up2")
	h.e.Close()
	h.st.Close()

	h2 := startWith(t, dir, 4, on)
	if ds := h2.e.Destinations(); len(ds) != 1 || ds[0].InCalls != 2 || ds[0].Limit != 2 {
		t.Fatalf("destinations after the restart: %+v; want 99990001 with its 2 calls up, limit 2", ds)
	}
	h2.submit(t, "wait1", "99990001", 3, time.Second)
	h2.submit(t, "wait2", "99990001", 3, time.Second)
	h2.submit(t, "other", "99990004", 3, time.Second)
	h2.wait(t, "other", job.Dialing)
	h2.wait(t, "wait1", job.Ready)
	time.Sleep(100 * time.Millisecond) // the scheduler runs on every change; give it time to misbehave
	if got := line.dialsTo("99990001"); len(got) != 2 {
		t.Fatalf("calls to 99990001: %v; want only the 2 from before the restart (max_concurrent 2, both still up)", got)
	}
	// One recovered call ends: exactly one waiting job takes its place.
	h2.e.Result(dialler.Result{AttemptID: up2.Attempts[0].ID, PagesSent: 3, ReachedFax: true})
	h2.wait(t, "up2", job.Delivered)
	h2.wait(t, "wait1", job.Dialing)
	time.Sleep(100 * time.Millisecond)
	if got := line.dialsTo("99990001"); len(got) != 3 || got[2] != "wait1" {
		t.Fatalf("calls to 99990001 after one ended: %v; want wait1 as the third and no more", got)
	}
	if j, _ := h2.e.Get("wait2"); j.Status != job.Ready {
		t.Fatalf("wait2 is %s; want ready (99990001 has its 2 calls up)", j.Status)
	}
}

// A learned cap is applied after a restart, not only shown: a server that
// took 2 calls at once and answered a third busy gets no third call from the
// restarted box; and a cap learned under another configured limit is
// dropped when the configuration changes.
func TestLearnedCapAppliedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	rule := func(max int) func(*Config) {
		return withRules(destctl.Rule{Prefix: "99990001", MaxConcurrent: max})
	}
	run := func(max, jobs int, prefix string) (*harness, *smallServer) {
		srv := &smallServer{cap: 2, up: map[string]bool{}}
		h := startWith(t, dir, 4, func(c *Config) {
			rule(max)(c)
			srv.line = testline.New("9999000", 40*time.Millisecond, clock.Real{}, srv)
			c.Diallers["test"] = srv
			c.Learned = capacity.New(time.Hour)
		})
		srv.h = h
		for i := range jobs {
			h.submit(t, fmt.Sprint(prefix, i), "99990001", 10, 20*time.Millisecond)
		}
		for i := range jobs {
			h.wait(t, fmt.Sprint(prefix, i), job.Delivered)
		}
		return h, srv
	}
	h, srv := run(4, 8, "learn")
	srv.mu.Lock()
	learned := srv.busies
	srv.mu.Unlock()
	if learned == 0 {
		t.Fatal("the first run never met the server's limit: nothing was learned")
	}
	h.e.Close()
	h.st.Close()

	h2, srv2 := run(4, 8, "after")
	srv2.mu.Lock()
	busies, most := srv2.busies, srv2.most
	srv2.mu.Unlock()
	if busies != 0 || most != 2 {
		t.Fatalf("after the restart: %d busy answers, at most %d calls at once; want 0 and 2 (the learned cap)", busies, most)
	}
	h2.e.Close()
	h2.st.Close()

	srv3 := &smallServer{cap: 2, up: map[string]bool{}}
	h3 := startWith(t, dir, 4, func(c *Config) {
		rule(3)(c)
		srv3.line = testline.New("9999000", 40*time.Millisecond, clock.Real{}, srv3)
		c.Diallers["test"] = srv3
		c.Learned = capacity.New(time.Hour)
	})
	srv3.h = h3
	h3.submit(t, "probe", "99990001", 10, 20*time.Millisecond)
	h3.wait(t, "probe", job.Delivered)
	if ds := h3.e.Destinations(); len(ds) != 0 {
		t.Fatalf("destinations after max_concurrent changed from 4 to 3: %+v; want the old cap dropped", ds)
	}
}
