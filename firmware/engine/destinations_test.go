package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/capacity"
	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/destctl"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/testline"
)

func TestDestinationRuleSettings(t *testing.T) {
	h := startWith(t, t.TempDir(), 1, withRules(destctl.Rule{Prefix: "99990001", T38: "off", ECM: "off", MaxRate: 9600}))
	h.submit(t, "slow", "99990001", 1, time.Second)
	h.wait(t, "slow", job.Delivered)
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	f := h.rec.last["slow"].Fax
	if f == nil || f.T38 || f.ECM || f.MaxRate != 9600 || !f.AudioFallback {
		t.Fatalf("request %+v; want the rule's G.711 only, ECM off, 9600", f)
	}
}

func TestDestinationRetryWaitsAndMaxAttempts(t *testing.T) {
	h := startWith(t, t.TempDir(), 1, withRules(destctl.Rule{Prefix: "99990002", MaxAttempts: 2,
		RetryWaits: map[failure.Code]job.Duration{failure.LineBusy: job.Duration(10 * time.Millisecond)}}))
	start := time.Now()
	h.submit(t, "busy", "99990002", 5, time.Hour) // the job's own: 5 attempts an hour apart
	j := h.wait(t, "busy", job.Failed)
	if len(j.Attempts) != 2 || j.Error.Code != failure.LineBusy {
		t.Fatalf("%d attempts, error %+v; want the rule's 2 attempts", len(j.Attempts), j.Error)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s: the rule's 10 ms busy wait was not used", d)
	}
}

func TestDestinationReject(t *testing.T) {
	h := startWith(t, t.TempDir(), 1, withRules(destctl.Rule{Prefix: "99990003", Reject: "premium-rate numbers are not faxed"}))
	h.submit(t, "no", "99990003", 3, time.Second)
	j := h.wait(t, "no", job.Failed)
	if j.Error.Code != failure.LineRejectedDestination || len(j.Attempts) != 0 {
		t.Fatalf("error %+v after %d attempts; want line.rejected_destination, never dialled", j.Error, len(j.Attempts))
	}
}

func TestDestinationWindows(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 2, 22, 0, 0, 0, time.Local))
	h := startWith(t, t.TempDir(), 1, func(c *Config) {
		withRules(destctl.Rule{Prefix: "99990001", Windows: []string{"08:00-18:00"}})(c)
		c.Clock = clk
	})
	h.submit(t, "night", "99990001", 1, time.Second)
	h.wait(t, "night", job.Ready)
	time.Sleep(50 * time.Millisecond)
	h.rec.mu.Lock()
	calls := h.rec.calls
	h.rec.mu.Unlock()
	if calls != 0 {
		t.Fatalf("dialled at 22:00 outside the destination's 08:00-18:00 window")
	}
}

// smallServer is a fax server behind one number that takes cap calls at
// once and answers busy beyond (lab number 107 on the test line).
type smallServer struct {
	h    *harness
	line *testline.Line
	cap  int

	mu     sync.Mutex
	up     map[string]bool // attempt ids in a call
	busies int
	most   int
}

func (s *smallServer) Dial(ctx context.Context, q dialler.Request) error {
	s.mu.Lock()
	if len(s.up) >= s.cap {
		s.busies++
		s.mu.Unlock()
		go s.h.e.Result(dialler.Result{AttemptID: q.AttemptID, Code: failure.LineBusy, Raw: "BUSY (small server)"})
		return nil
	}
	s.up[q.AttemptID] = true
	s.most = max(s.most, len(s.up))
	s.mu.Unlock()
	return s.line.Dial(ctx, q)
}
func (s *smallServer) Hangup(ctx context.Context, id string) error { return s.line.Hangup(ctx, id) }
func (s *smallServer) Reconcile(ctx context.Context, as []dialler.Request) (map[string]bool, error) {
	return s.line.Reconcile(ctx, as)
}
func (s *smallServer) Progress(p dialler.Progress) { s.h.e.Progress(p) }
func (s *smallServer) Result(r dialler.Result) {
	s.mu.Lock()
	delete(s.up, r.AttemptID)
	s.mu.Unlock()
	s.h.e.Result(r)
}

func TestLearnedCapacity(t *testing.T) {
	dir := t.TempDir()
	rules := withRules(destctl.Rule{Prefix: "99990001", MaxConcurrent: 4})
	srv := &smallServer{cap: 2, up: map[string]bool{}}
	h := startWith(t, dir, 4, func(c *Config) {
		rules(c)
		srv.line = testline.New("9999000", 30*time.Millisecond, clock.Real{}, srv)
		c.Diallers["test"] = srv
		c.Learned = capacity.New(time.Hour)
	})
	srv.h = h
	for i := range 12 {
		h.submit(t, "j"+string(rune('a'+i)), "99990001", 10, 20*time.Millisecond)
	}
	for i := range 12 {
		h.wait(t, "j"+string(rune('a'+i)), job.Delivered)
	}
	srv.mu.Lock()
	busies, most := srv.busies, srv.most
	srv.mu.Unlock()
	if busies > 3 {
		t.Fatalf("%d busy answers for 12 jobs; once it answered busy with 2 calls up the box must stop at 2", busies)
	}
	if busies == 0 || most != 2 {
		t.Fatalf("busies %d, most calls at once %d: the test did not reach the server's limit", busies, most)
	}
	ds := h.e.Destinations()
	if len(ds) != 1 || ds[0].Number != "99990001" || ds[0].Limit != 2 || ds[0].MaxConcurrent != 4 || ds[0].CappedSince.IsZero() {
		t.Fatalf("destinations = %+v; want 99990001 capped at 2 of 4", ds)
	}
	// The cap survives a restart.
	h.e.Close()
	h.st.Close()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var caps []capacity.Cap
	ok, err := st.GetState(stateCaps, &caps)
	st.Close()
	if !ok || err != nil || len(caps) != 1 || caps[0].Calls != 2 {
		t.Fatalf("stored caps %+v (%v %v)", caps, ok, err)
	}
	h2 := startWith(t, dir, 4, func(c *Config) { rules(c); c.Learned = capacity.New(time.Hour) })
	if ds := h2.e.Destinations(); len(ds) != 1 || ds[0].Limit != 2 {
		t.Fatalf("after a restart: %+v; want the learned cap of 2", ds)
	}
}
