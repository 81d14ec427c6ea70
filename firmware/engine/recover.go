package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
)

// Start recovers the active jobs from the store, reconciles attempts that
// were in a call with their diallers, and starts the converter workers.
// Nothing is dialled before every recovered attempt is accounted for.
func (e *Engine) Start(ctx context.Context) error {
	recs, err := e.cfg.Store.Active()
	if err != nil {
		return fmt.Errorf("engine: recover: %w", err)
	}
	e.restoreCaps()
	fate, err := e.reconcile(ctx, recs)
	if err != nil {
		return err
	}
	e.mu.Lock()
	now := e.cfg.Clock.Now()
	var ended []dialler.Result
	for _, r := range recs {
		if res, ok := e.recoverLocked(r, fate, now); ok {
			ended = append(ended, res)
		}
	}
	e.started = true
	e.mu.Unlock()
	for _, r := range ended {
		e.Result(r)
	}
	for i := 0; i < e.cfg.Workers; i++ {
		e.wg.Add(1)
		go e.convertWorker()
	}
	e.mu.Lock()
	e.kickLocked()
	e.convC.Broadcast()
	e.mu.Unlock()
	return nil
}

// attemptFate is what the diallers know of the attempts that were in a call
// when faxbox stopped: still up, or ended with a result they kept.
type attemptFate struct {
	alive map[string]bool
	kept  map[string]dialler.Result
}

// reconcile asks each dialler about the attempts that were in a call on its
// lines, given as they were dialled.
func (e *Engine) reconcile(ctx context.Context, recs []*store.Record) (attemptFate, error) {
	f := attemptFate{alive: map[string]bool{}, kept: map[string]dialler.Result{}}
	byDialler := map[string][]dialler.Request{}
	seen := map[string]bool{}
	for _, r := range recs {
		a := r.Job.LastAttempt()
		if a == nil || !r.Job.Status.Active() || seen[a.Call] {
			continue
		}
		req := e.request(r.Job, a)
		if a.Call != "" {
			// One call for several jobs: the line knows it by the call's id.
			seen[a.Call] = true
			req.AttemptID, req.JobID = a.Call, a.Call
		}
		byDialler[a.Line.Group] = append(byDialler[a.Line.Group], req)
	}
	for g, reqs := range byDialler {
		d := e.cfg.Diallers[g]
		if d == nil {
			continue
		}
		got, err := d.Reconcile(ctx, reqs)
		if err != nil {
			return f, fmt.Errorf("engine: reconcile %d attempts on %s: %w", len(reqs), g, err)
		}
		for id := range got {
			f.alive[id] = true
		}
		k, ok := d.(dialler.Keeper)
		if !ok {
			continue
		}
		for _, req := range reqs {
			if !f.alive[req.AttemptID] {
				if r, ok := k.Kept(ctx, req); ok {
					f.kept[req.AttemptID] = r
				}
			}
		}
	}
	return f, nil
}

// recoverLocked takes one stored job back into the engine: to convert, to
// schedule, or (in a call) back on its line. For an attempt that ended while
// faxbox was down it returns the result to record.
func (e *Engine) recoverLocked(r *store.Record, fate attemptFate, now time.Time) (dialler.Result, bool) {
	if e.entries[r.Job.ID] != nil {
		return dialler.Result{}, false // submitted between New and Start: already queued
	}
	en := &entry{rec: r}
	e.entries[r.Job.ID] = en
	j := r.Job
	switch j.Status {
	case job.Queued, job.Converting:
		e.convQ = append(e.convQ, j.ID)
	case job.Ready, job.RetryWait:
		e.readyLocked(en, now)
	case job.Dialing, job.Sending:
		return e.recoverCallLocked(en, fate, now)
	}
	if !j.Status.Terminal() {
		e.armExpiry(en, now)
	}
	return dialler.Result{}, false
}

// recoverCallLocked puts a job that was in a call back on its line.
func (e *Engine) recoverCallLocked(en *entry, fate attemptFate, now time.Time) (dialler.Result, bool) {
	j := en.rec.Job
	a := j.LastAttempt()
	g, idx := a.Line.Group, a.Line.Index()
	en.inCall, en.attemptID, en.group, en.line = true, a.ID, g, idx
	e.calls[a.ID] = en
	callID := a.ID
	if a.Call != "" {
		callID = a.Call
		b := e.batchOfLocked(a, j)
		en.batch = b
		b.members = append(b.members, en)
		slices.SortFunc(b.members, func(x, y *entry) int {
			return x.rec.Job.LastAttempt().CallOffset - y.rec.Job.LastAttempt().CallOffset
		})
	} else if err := e.sched.Occupy(g, idx, j.ID, j.To); err != nil {
		e.log.Warn("engine: recover line", "job", j.ID, "err", err)
		en.group = ""
	} else {
		e.board.call(a.Line, dialler.LineStatus(j.Status), j, 0, j.Pages)
	}
	if fate.alive[callID] {
		en.dialIssued = true
		e.log.Info("engine: attempt still up after restart; waiting for its result", "job", j.ID, "attempt", a.ID, "call", callID)
		return dialler.Result{}, false
	}
	if r, ok := fate.kept[callID]; ok {
		en.dialIssued = true
		e.log.Info("engine: attempt ended while faxbox was down; its result was kept", "job", j.ID, "attempt", a.ID, "code", r.Code)
		if a.Call != "" {
			return shareOf(r, a.ID, a.CallOffset, callPages(en)), true
		}
		return r, true
	}
	// An attempt that got as far as an answer was dialled and counts; one
	// that shows no sign of a call may never have been dialled (the box, not
	// the line, failed) and does not.
	en.dialIssued = a.AnsweredAt != nil || a.Channel != "" || j.Status == job.Sending
	return dialler.Result{AttemptID: a.ID, Code: failure.LineInterrupted, Raw: "faxbox restarted during the attempt; the call was not found in Asterisk", EndedAt: now}, true
}
