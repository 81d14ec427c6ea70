package engine

import (
	"errors"
	"time"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/lifecycle"
	"github.com/faxbox/faxbox/firmware/store"
)

// Get returns the freshest view of a job: the engine's for active jobs, the
// store's otherwise.
func (e *Engine) Get(id string) (*job.Job, error) {
	e.mu.Lock()
	if en := e.entries[id]; en != nil {
		j := en.rec.Job.Clone()
		e.mu.Unlock()
		return j, nil
	}
	e.mu.Unlock()
	r, err := e.cfg.Store.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return r.Job, nil
}

// Cancel cancels a job. A job in a call is hung up; its result then ends it
// (a fax that completed in the meantime stays delivered). It returns the job
// as it stands after the request.
func (e *Engine) Cancel(id string) (*job.Job, error) {
	e.mu.Lock()
	en := e.entries[id]
	if en == nil {
		e.mu.Unlock()
		j, err := e.Get(id)
		if err != nil {
			return nil, err
		}
		return j, ErrFinished
	}
	if en.inCall {
		en.cancel = true
		d := e.cfg.Diallers[en.group]
		attempt, issued := en.attemptID, en.dialIssued
		if b := en.batch; b != nil {
			// One job of several in a call: its pages still go (the call
			// is hung up only when every job in it was cancelled).
			attempt, issued = b.id, issued && allCancelled(b)
		}
		j := en.rec.Job.Clone()
		e.mu.Unlock()
		if issued && d != nil {
			e.hangup(d, attempt)
		}
		return j, nil
	}
	if en.cancelConv != nil {
		en.cancelConv()
	}
	e.sched.Remove(id)
	evs := lifecycle.Cancel(en.rec.Job, e.cfg.Clock.Now())
	done := e.endLocked(en, evs...)
	j := en.rec.Job.Clone()
	e.mu.Unlock()
	return j, <-done
}

// Retry puts a failed or cancelled job back in the queue with a fresh budget
// of attempts, or makes a job waiting to retry go now.
func (e *Engine) Retry(id string) (*job.Job, error) {
	e.mu.Lock()
	if en := e.entries[id]; en != nil {
		defer e.mu.Unlock()
		j := en.rec.Job
		if j.Status != job.RetryWait {
			return j.Clone(), ErrNotFailed
		}
		j.NextAttemptAt = nil
		stopTimer(&en.wake)
		e.readyLocked(en, e.cfg.Clock.Now())
		e.kickLocked()
		return j.Clone(), nil
	}
	defer e.mu.Unlock()
	if e.closed {
		return nil, errClosed
	}
	// Reopened in the store first, in one transaction with its checks, so
	// that a retention purge cannot delete the documents under it.
	now := e.cfg.Clock.Now()
	var was *job.Job
	r, err := e.cfg.Store.Reopen(id, func(j *job.Job) error {
		was = j.Clone()
		switch {
		case j.Status == job.Delivered:
			return ErrDelivered
		case j.Status != job.Failed && j.Status != job.Cancelled:
			return ErrNotFailed
		}
		j.RetryBase = j.Dials
		j.Error, j.CompletedAt, j.NextAttemptAt = nil, nil, nil
		j.UpdatedAt = now
		if j.ExpireAt.Before(now.Add(time.Hour)) {
			j.ExpireAt = now.Add(j.ExpireAt.Sub(j.CreatedAt))
		}
		j.Status = job.Queued
		if j.Pages > 0 {
			j.Status = job.Ready
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNotFound
	case errors.Is(err, store.ErrPurged):
		return was, ErrNoDocs
	case errors.Is(err, ErrDelivered), errors.Is(err, ErrNotFailed):
		return was, err
	case err != nil:
		return nil, err
	}
	j := r.Job
	en := &entry{rec: r}
	e.entries[id] = en
	e.armExpiry(en, now)
	e.cfg.Bus.Publish(events.JobChanged, j.Clone())
	if j.Status == job.Ready {
		e.readyLocked(en, now)
		e.kickLocked()
	} else {
		e.convQ = append(e.convQ, id)
		e.convC.Signal()
	}
	return j.Clone(), nil
}

// Lines returns the state of every line. It does not wait for the engine.
func (e *Engine) Lines() []dialler.LineState { return e.board.list() }

// SetLineBusy takes a line out of service or puts it back. A line the box
// does not have is ErrNoLine, and changes nothing.
func (e *Engine) SetLineBusy(id job.LineID, busy bool) error {
	if err := e.board.check(id); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.sched.SetBusy(id.Group, id.Index(), busy); err != nil {
		return err
	}
	e.board.service(id, &busy, nil)
	if !busy {
		e.kickLocked()
	}
	return nil
}

// SetGroupDown says how many of group's channels cannot carry calls now (a
// line card or span alarm, from dahdi.State.Down): that many of its lines,
// counted from the last, show "down" and take no new call (a call in
// progress finishes); the others are back in service.
func (e *Engine) SetGroupDown(group string, n int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	changed, err := e.sched.SetDown(group, n)
	if err != nil || !changed {
		return err
	}
	up := false
	for _, l := range e.sched.Lines() {
		if l.Group != group {
			continue
		}
		healthy := !l.Down
		up = up || healthy
		e.board.service(job.LineAt(l.Group, l.Index), nil, &healthy)
	}
	if up {
		e.kickLocked()
	}
	return nil
}

// Stats is the queue's shape for /v1/status and metrics.
type Stats struct {
	Active     int `json:"active"`
	Waiting    int `json:"waiting_for_line"`
	Converting int `json:"converting"`
	InCall     int `json:"in_call"`
	RetryWait  int `json:"retry_wait"`
	// SkippedWrites counts job changes the store refused (a stale version
	// or a status change the lifecycle does not allow); always 0 unless
	// the engine has a bug.
	SkippedWrites int64 `json:"skipped_writes"`
}

// Stats counts the active jobs.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Active: len(e.entries), Waiting: e.sched.Queued(), SkippedWrites: e.jr.skipped.Load()}
	for _, en := range e.entries {
		switch {
		case en.inCall:
			s.InCall++
		case en.rec.Job.Status == job.RetryWait:
			s.RetryWait++
		case en.rec.Job.Status == job.Queued || en.rec.Job.Status == job.Converting:
			s.Converting++
		}
	}
	return s
}
