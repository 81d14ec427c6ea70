package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
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
)

// A retention purge racing a retry by hand: either the purge wins (the retry
// is refused with ErrNoDocs) or the retry wins (the documents stay while the
// job is active). Never a job back in the queue without its documents.
func TestPurgeRacingRetry(t *testing.T) {
	h := start(t, t.TempDir(), 2)
	for i := 0; i < 40; i++ {
		id := fmt.Sprintf("fx_race%02d", i)
		h.submit(t, id, "99990006", 1, time.Second) // invalid number: fails at once
		h.wait(t, id, job.Failed)
		if err := h.st.SchedulePurge(id, time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var retryErr, purgeErr error
		wg.Add(2)
		go func() { defer wg.Done(); _, purgeErr = h.st.Purge(time.Now()) }()
		go func() { defer wg.Done(); _, retryErr = h.e.Retry(id) }()
		wg.Wait()
		if purgeErr != nil {
			t.Fatal(purgeErr)
		}
		switch {
		case retryErr == nil:
			j := h.wait(t, id, job.Failed) // the retry's dial fails again
			if j.Purged {
				t.Fatalf("%s: retried and purged", id)
			}
			if _, err := os.Stat(h.st.DocDir(id)); err != nil {
				t.Fatalf("%s: retried, but its documents were purged under it: %v", id, err)
			}
			if j.Error == nil || j.Error.Code != "line.invalid_number" {
				t.Fatalf("%s: retried job ended with %+v; want line.invalid_number", id, j.Error)
			}
		case errors.Is(retryErr, ErrNoDocs):
			r, _ := h.st.Get(id)
			if !r.Job.Purged || r.Job.Status != job.Failed {
				t.Fatalf("%s: retry refused but the job is %s purged=%v", id, r.Job.Status, r.Job.Purged)
			}
		default:
			t.Fatalf("%s: retry: %v", id, retryErr)
		}
	}
}

// countingDocs counts conversions per job.
type countingDocs struct {
	fakeDocs
	mu sync.Mutex
	n  map[string]int
}

func (c *countingDocs) Convert(ctx context.Context, j *job.Job, in []Input, out string) (int, failure.Code, error) {
	c.mu.Lock()
	c.n[j.ID]++
	c.mu.Unlock()
	time.Sleep(20 * time.Millisecond) // long enough for a second worker to pick a duplicate
	return c.fakeDocs.Convert(ctx, j, in, out)
}

// A job handed to the engine between New and Start (an inbound callback
// arriving while the box starts) is queued once: converted once, dialled
// once.
func TestSubmitBeforeStartQueuedOnce(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	docs := &countingDocs{fakeDocs: fakeDocs{pages: 1}, n: map[string]int{}}
	rec := &recorder{dials: map[string]int{}, evs: map[string][]job.Event{}, max: map[string]int{}, cur: map[string]int{}}
	var e *Engine
	rec.inner = testline.New("9999000", 20*time.Millisecond, clock.Real{}, &sinkFn{e: &e, rec: rec})
	e, err = New(Config{Store: st, Docs: docs, Workers: 4,
		Groups:   []*scheduler.Group{{Name: "test", Channels: 2, Prefixes: []string{"9999000"}, Test: true}},
		Diallers: map[string]dialler.Dialler{"test": rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		st.Close()
		if err := store.CheckDir(dir); err != nil {
			t.Errorf("after the test: %v", err)
		}
	})
	now := time.Now()
	j := &job.Job{ID: "fx_early", Kind: job.KindFax, To: "99990001", Status: job.Queued, CreatedAt: now, UpdatedAt: now,
		MaxAttempts: 1, RetryInterval: job.Duration(time.Second), ExpireAt: now.Add(time.Hour)}
	os.MkdirAll(st.DocDir(j.ID), 0o750)
	r, err := st.Create(&store.Record{Job: j, Paths: []string{"in-00.pdf"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Submit(r)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := &harness{e: e, st: st, rec: rec}
	got := h.wait(t, "fx_early", job.Delivered)
	time.Sleep(100 * time.Millisecond)
	docs.mu.Lock()
	n := docs.n["fx_early"]
	docs.mu.Unlock()
	if n != 1 || got.Dials != 1 || rec.dials["fx_early"] != 1 {
		t.Fatalf("converted %d times, %d dials recorded, %d dialled; want 1, 1, 1", n, got.Dials, rec.dials["fx_early"])
	}
}

// upDialler keeps every attempt up across a restart until released.
type upDialler struct {
	mu   sync.Mutex
	sink dialler.Sink
	up   map[string]bool
}

func (d *upDialler) Dial(_ context.Context, r dialler.Request) error {
	d.mu.Lock()
	d.up[r.AttemptID] = true
	d.mu.Unlock()
	return nil
}
func (d *upDialler) Hangup(context.Context, string) error { return nil }
func (d *upDialler) Reconcile(_ context.Context, rs []dialler.Request) (map[string]bool, error) {
	alive := map[string]bool{}
	for _, r := range rs {
		alive[r.AttemptID] = true
	}
	return alive, nil
}

// A call still up after a restart shows on its line at once, not "idle"
// until its next event.
func TestRecoveredCallShowsOnItsLine(t *testing.T) {
	dir := t.TempDir()
	open := func(d *upDialler) (*Engine, *store.DB) {
		st, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Config{Store: st, Docs: fakeDocs{pages: 2}, Workers: 1,
			Groups:   []*scheduler.Group{{Name: "test", Channels: 2, Prefixes: []string{"9999000"}, Test: true}},
			Diallers: map[string]dialler.Dialler{"test": d}})
		if err != nil {
			t.Fatal(err)
		}
		d.sink = e
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return e, st
	}
	e, st := open(&upDialler{up: map[string]bool{}})
	h := &harness{e: e, st: st}
	now := time.Now()
	j := &job.Job{ID: "fx_up", Kind: job.KindFax, To: "99990001", Status: job.Queued, CreatedAt: now, UpdatedAt: now,
		MaxAttempts: 1, RetryInterval: job.Duration(time.Second), ExpireAt: now.Add(time.Hour)}
	os.MkdirAll(st.DocDir(j.ID), 0o750)
	r, _ := st.Create(&store.Record{Job: j, Paths: []string{"in-00.pdf"}})
	e.Submit(r)
	h.wait(t, "fx_up", job.Dialing)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r, _ := e.Get("fx_up"); r != nil && len(r.Attempts) == 1 {
			if s, _ := st.Get("fx_up"); s != nil && s.Job.Status == job.Dialing {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the attempt was never stored")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.Close()
	st.Close()

	e2, st2 := open(&upDialler{up: map[string]bool{}})
	t.Cleanup(func() { e2.Close(); st2.Close() })
	lines := e2.Lines()
	if lines[0].State != "dialing" || lines[0].JobID != "fx_up" || lines[0].Pages != 2 {
		t.Fatalf("line 1 after the restart: %+v; want dialing fx_up (2 pages)", lines[0])
	}
}

// An attempt cut by a crash after it was answered was dialled: it counts in
// the job's dials.
func TestCrashCutAnsweredAttemptCounts(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, 1)
	h.submit(t, "fx_cut", "99990001", 3, 20*time.Millisecond)
	h.wait(t, "fx_cut", job.Sending)
	h.e.Close() // the call is lost with the process
	h.st.Close()
	h2 := start(t, dir, 1)
	j := h2.wait(t, "fx_cut", job.Delivered)
	if len(j.Attempts) != 2 || j.Attempts[0].AnsweredAt == nil || j.Dials != 2 {
		t.Fatalf("dials %d over %d attempts (first answered: %v); want 2", j.Dials, len(j.Attempts), j.Attempts[0].AnsweredAt != nil)
	}
}

// The line group chosen when a job was accepted is kept (not routed again);
// when a configuration change takes it away, the job is routed again and
// the change is recorded on the job.
func TestStoredGroupKeptOrRerouted(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := &upDialler{up: map[string]bool{}}
	e, err := New(Config{Store: st, Docs: fakeDocs{pages: 1}, Workers: 1,
		Groups:   []*scheduler.Group{{Name: "a", Channels: 1, Prefixes: []string{"555"}}, {Name: "b", Channels: 1, Prefixes: []string{"555"}}},
		Diallers: map[string]dialler.Dialler{"a": d, "b": d}})
	if err != nil {
		t.Fatal(err)
	}
	d.sink = e
	e.Start(context.Background())
	t.Cleanup(func() { e.Close(); st.Close() })
	now := time.Now()
	add := func(id, to, group string) {
		j := &job.Job{ID: id, Kind: job.KindFax, To: to, Group: group, Status: job.Queued, CreatedAt: now, UpdatedAt: now,
			MaxAttempts: 1, RetryInterval: job.Duration(time.Second), ExpireAt: now.Add(time.Hour)}
		os.MkdirAll(st.DocDir(id), 0o750)
		r, err := st.Create(&store.Record{Job: j, Paths: []string{"in-00.pdf"}})
		if err != nil {
			t.Fatal(err)
		}
		e.Submit(r)
	}
	add("fx_kept", "5551234", "b")     // b, although a comes first in the config
	add("fx_moved", "5559876", "gone") // its group is no longer configured
	h := &harness{e: e, st: st}
	kept := h.wait(t, "fx_kept", job.Dialing)
	moved := h.wait(t, "fx_moved", job.Dialing)
	if kept.Group != "b" || kept.LastAttempt().Line.Group != "b" || kept.Rerouted != "" {
		t.Fatalf("kept: group %s, line %s, rerouted from %q", kept.Group, kept.LastAttempt().Line, kept.Rerouted)
	}
	if moved.Group != "a" || moved.Rerouted != "gone" || moved.LastAttempt().Line.Group != "a" {
		t.Fatalf("moved: group %s, line %s, rerouted from %q", moved.Group, moved.LastAttempt().Line, moved.Rerouted)
	}
}
