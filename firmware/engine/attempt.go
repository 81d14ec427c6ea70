package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/lifecycle"
	"github.com/faxbox/faxbox/firmware/scheduler"
	"github.com/faxbox/faxbox/firmware/speech"
)

// readyLocked puts a converted job in the scheduler, or arms a timer for its
// send_at or next attempt.
func (e *Engine) readyLocked(en *entry, now time.Time) {
	j := en.rec.Job
	at := time.Time{}
	if j.SendAt != nil {
		at = *j.SendAt
	}
	if j.NextAttemptAt != nil && j.NextAttemptAt.After(at) {
		at = *j.NextAttemptAt
	}
	if at.After(now) {
		if j.Status != job.RetryWait {
			j.Status = job.Ready
			j.UpdatedAt = now
			e.saveLocked(en)
		}
		stopTimer(&en.wake)
		id := j.ID
		en.wake = e.cfg.Clock.AfterFunc(at.Sub(now), func() { e.wakeUp(id) })
		return
	}
	if j.Status != job.Ready {
		j.Status = job.Ready
		j.NextAttemptAt = nil
		j.UpdatedAt = now
		e.saveLocked(en)
	}
	group, err := e.routeLocked(en, now)
	if err != nil {
		evs := lifecycle.FailDocument(j, failure.NoLineForNumber, err.Error(), now)
		e.endLocked(en, evs...)
		return
	}
	ctl := e.control(j.To)
	if ctl.Reject != "" {
		// The destination rules refuse the number (the configuration may
		// have changed since the job was accepted).
		e.endLocked(en, lifecycle.FailDocument(j, failure.LineRejectedDestination, ctl.Reject, now)...)
		return
	}
	if open, next := openWindows(now, e.sched.Windows(group), ctl.Windows); !open && j.Priority < 9 {
		// Outside the line group's or the destination's calling window:
		// wait for it to open.
		stopTimer(&en.wake)
		id := j.ID
		en.wake = e.cfg.Clock.AfterFunc(next.Sub(now), func() { e.wakeUp(id) })
		return
	}
	sendAt := j.CreatedAt
	if j.SendAt != nil {
		sendAt = *j.SendAt
	}
	e.sched.Add(&scheduler.Item{JobID: j.ID, To: j.To, Group: group, Priority: j.Priority, SendAt: sendAt, Seq: j.Seq,
		BatchKey: e.batchKey(j), Since: now})
}

// batchKey says which jobs may share a call: fax jobs whose pages and
// session settings agree (resolution, ECM, T.38, rate, station id). Calls
// never share.
func (e *Engine) batchKey(j *job.Job) string {
	if j.Kind != job.KindFax {
		return ""
	}
	o, set := j.Options, e.settings(j)
	return fmt.Sprintf("%s|%s|%t|%t|%t|%d|%s", o.Resolution, o.PageSize, set.ecm, set.t38, set.audioFallback, set.maxRate,
		firstNonEmpty(o.StationID, e.cfg.StationID))
}

// openWindows reports whether now is inside every set of windows (an empty
// set is always open), else when to look again.
func openWindows(now time.Time, sets ...[]scheduler.Window) (bool, time.Time) {
	for _, ws := range sets {
		if open, next := scheduler.Open(ws, now); !open {
			return false, next
		}
	}
	return true, time.Time{}
}

func (e *Engine) wakeUp(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.entries[id]
	if en == nil || e.closed || en.inCall || en.rec.Job.Status.Terminal() {
		return
	}
	en.wake = nil
	now := e.cfg.Clock.Now()
	j := en.rec.Job
	j.NextAttemptAt = nil
	if j.SendAt != nil && j.SendAt.After(now) {
		e.readyLocked(en, now)
		return
	}
	e.readyLocked(en, now)
	e.kickLocked()
}

func (e *Engine) armExpiry(en *entry, now time.Time) {
	stopTimer(&en.expire)
	id := en.rec.Job.ID
	en.expire = e.cfg.Clock.AfterFunc(max(en.rec.Job.ExpireAt.Sub(now), 0), func() { e.expireJob(id) })
}

func (e *Engine) expireJob(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.entries[id]
	if en == nil || e.closed {
		return
	}
	en.expire = nil
	if en.inCall || en.rec.Job.Status.Terminal() {
		return // the call's result decides
	}
	if en.cancelConv != nil {
		en.cancelConv()
	}
	e.sched.Remove(id)
	evs := lifecycle.Expire(en.rec.Job, e.cfg.Clock.Now())
	e.endLocked(en, evs...)
}

// endLocked saves a terminal job and forgets it.
func (e *Engine) endLocked(en *entry, evs ...job.Event) <-chan error {
	stopTimer(&en.wake)
	stopTimer(&en.expire)
	delete(e.entries, en.rec.Job.ID)
	return e.saveLocked(en, evs...)
}

// kickLocked assigns waiting jobs to free lines and starts their attempts.
func (e *Engine) kickLocked() {
	if e.closed || !e.started {
		return
	}
	now := e.cfg.Clock.Now()
	assigned, wake := e.sched.Next(now)
	e.armBatchWakeLocked(wake, now)
	for _, as := range assigned {
		var ens []*entry
		for _, it := range as.Items() {
			if en := e.entries[it.JobID]; en != nil {
				ens = append(ens, en)
			}
		}
		switch {
		case len(ens) == 0:
			e.sched.Release(as.Group, as.Line)
		case len(ens) == 1:
			e.startAttemptLocked(ens[0], as.Group, as.Line)
		default:
			e.startBatchLocked(ens, as.Group, as.Line)
		}
	}
}

// armBatchWakeLocked makes sure kickLocked runs again at wake, when a job
// held back for a fuller batch may go (zero: none is held).
func (e *Engine) armBatchWakeLocked(wake, now time.Time) {
	if wake.IsZero() || (e.batchWake != nil && !e.batchWakeAt.After(wake)) {
		return
	}
	stopTimer(&e.batchWake)
	e.batchWakeAt = wake
	e.batchWake = e.cfg.Clock.AfterFunc(wake.Sub(now), func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.batchWake = nil
		e.kickLocked()
	})
}

func (e *Engine) startAttemptLocked(en *entry, group string, line int) {
	done := e.beginAttemptLocked(en, group, line, true)
	req := e.request(en.rec.Job, en.rec.Job.LastAttempt())
	d := e.cfg.Diallers[group]
	e.wg.Add(1)
	go e.dial(en, d, req, done)
}

// beginAttemptLocked records a new attempt of en's job on line group/line
// and puts the entry in a call; show puts it on the line's display. It
// returns when the attempt is durable.
func (e *Engine) beginAttemptLocked(en *entry, group string, line int, show bool) <-chan error {
	j := en.rec.Job
	now := e.cfg.Clock.Now()
	id := job.NewAttemptID()
	set := e.settings(j)
	a := job.Attempt{
		ID:        id,
		N:         len(j.Attempts) + 1,
		Line:      job.LineAt(group, line),
		StartedAt: now,
		Result:    job.AttemptInProgress,
		FirstPage: j.PagesConfirmed + 1,
		T38:       set.t38,
		MaxRate:   set.maxRate,
		Decision:  set.decision,
	}
	j.Attempts = append(j.Attempts, a)
	j.Status = job.Dialing
	j.UpdatedAt = now
	stopTimer(&en.wake)
	en.inCall, en.attemptID, en.group, en.line = true, id, group, line
	e.calls[id] = en
	en.dialIssued, en.cancel = false, false
	if show {
		e.board.call(job.LineAt(group, line), dialler.LineDialing, j, 0, 0)
	}
	if j.Kind == job.KindCall {
		j.LastAttempt().Number = e.request(j, j.LastAttempt()).To
	}
	return e.saveLocked(en)
}

// request is what the dialler is told of attempt a of job j: when it is
// dialled, and again when it is recovered after a restart (Reconcile, Kept).
// The TIFF is set by dial.
func (e *Engine) request(j *job.Job, a *job.Attempt) dialler.Request {
	req := dialler.Request{AttemptID: a.ID, JobID: j.ID, To: j.To, Line: a.Line}
	if j.Kind == job.KindCall && j.Call != nil {
		req.To = j.CallNumber(a.N)
		req.Call = &dialler.CallSpec{Kind: j.Call.Kind, Agent: j.Call.Agent, Repeat: j.Call.Repeat, ConfirmDigit: j.Call.ConfirmDigit}
		if j.Call.Say != "" || j.Call.Play != "" {
			req.Call.Sound = speech.Sound(e.cfg.Store.DocDir(j.ID))
		}
		return req
	}
	set := e.settings(j)
	req.Fax = &dialler.FaxSpec{
		FirstPage:     a.FirstPage,
		TotalPages:    j.Pages,
		StationID:     firstNonEmpty(j.Options.StationID, e.cfg.StationID),
		ECM:           set.ecm,
		T38:           a.T38,
		MaxRate:       a.MaxRate,
		AudioFallback: set.audioFallback,
	}
	return req
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// dial prepares the attempt's TIFF, waits until the attempt is durable, and
// issues the dial command.
func (e *Engine) dial(en *entry, d dialler.Dialler, req dialler.Request, durable <-chan error) {
	defer e.wg.Done()
	fail := func(code failure.Code, raw string) {
		e.Result(dialler.Result{AttemptID: req.AttemptID, Code: code, Raw: raw, EndedAt: e.cfg.Clock.Now()})
	}
	if err := <-durable; err != nil {
		e.abandon(req.AttemptID, err)
		return
	}
	dir := e.cfg.Store.DocDir(req.JobID)
	src := filepath.Join(dir, FaxFile)
	if req.Fax != nil {
		if !e.prepareTIFF(req.Fax, req.AttemptID, src, dir, fail) {
			return
		}
	}
	e.mu.Lock()
	if en.cancel || e.closed {
		cancelled := en.cancel
		e.mu.Unlock()
		if cancelled {
			fail(failure.JobCancelled, "cancelled before dialling")
		}
		return
	}
	if req.Fax != nil {
		en.attemptTIF = req.Fax.TIFF
	}
	en.dialIssued = true
	e.mu.Unlock()

	if err := d.Dial(e.ctx, req); err != nil {
		e.log.Warn("engine: dial failed", "job", req.JobID, "attempt", req.AttemptID, "err", err)
		fail(failure.LineUnavailable, err.Error())
		return
	}
	e.mu.Lock()
	hang := en.cancel && en.attemptID == req.AttemptID && en.inCall
	e.mu.Unlock()
	if hang {
		e.hangup(d, req.AttemptID)
	}
}

// NotRecordedRetry is how long a job waits after its attempt could not be
// recorded (a full disk) before it is tried again.
const NotRecordedRetry = 5 * time.Second

// abandon takes back attempt id, which could not be recorded and so was
// never dialled: the line falls free, the attempt is dropped from the job
// (it costs none of the job's attempts) and the job waits NotRecordedRetry
// before it goes again. The journal keeps committing until the store takes
// the changes, so what is on disk catches up with this.
func (e *Engine) abandon(id string, cause error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.calls[id]
	if en == nil || e.closed {
		return
	}
	e.log.Error("engine: the attempt could not be recorded; not dialling", "job", en.rec.Job.ID, "attempt", id, "err", cause)
	delete(e.calls, id)
	e.freeLineLocked(en)
	cancelled := en.cancel
	en.inCall, en.attemptID, en.attemptTIF, en.dialIssued, en.cancel = false, "", "", false, false
	j := en.rec.Job
	now := e.cfg.Clock.Now()
	j.Attempts = j.Attempts[:len(j.Attempts)-1]
	j.UpdatedAt = now
	if cancelled {
		e.endLocked(en, lifecycle.Cancel(j, now)...)
		e.kickLocked()
		return
	}
	j.Status = job.RetryWait
	next := now.Add(NotRecordedRetry)
	j.NextAttemptAt = &next
	e.saveLocked(en)
	e.readyLocked(en, now)
	e.kickLocked()
}

func (e *Engine) hangup(d dialler.Dialler, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Hangup(ctx, id); err != nil && !errors.Is(err, dialler.ErrUnknownAttempt) {
		e.log.Warn("engine: hangup", "attempt", id, "err", err)
	}
}

// entryForAttempt finds the entry whose call is attempt id.
func (e *Engine) entryForAttemptLocked(id string) *entry {
	return e.calls[id]
}

// Progress implements dialler.Sink.
func (e *Engine) Progress(p dialler.Progress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b := e.batches[p.AttemptID]; b != nil {
		e.batchProgressLocked(b, p)
		return
	}
	en := e.entryForAttemptLocked(p.AttemptID)
	if en == nil {
		return
	}
	e.progressLocked(en, p)
	j := en.rec.Job
	page := 0
	if p.Page > 0 {
		page = j.LastAttempt().FirstPage - 1 + p.Page
	}
	e.board.call(job.LineAt(en.group, en.line), dialler.LineStatus(p.State), j, page, j.Pages)
}

// progressLocked records a report on en's attempt: transport, channel,
// answer time, and the job sending once the fax session is up.
func (e *Engine) progressLocked(en *entry, p dialler.Progress) {
	j := en.rec.Job
	a := j.LastAttempt()
	if p.Transport != "" {
		a.Transport = p.Transport
	}
	if p.Channel != "" {
		a.Channel = p.Channel
	}
	switch p.State {
	case dialler.StateAnswered, dialler.StateSending:
		if a.AnsweredAt == nil {
			t := p.At
			if t.IsZero() {
				t = e.cfg.Clock.Now()
			}
			a.AnsweredAt = &t
		}
	}
	if p.State == dialler.StateSending && j.Status != job.Sending {
		j.Status = job.Sending
		j.UpdatedAt = e.cfg.Clock.Now()
		e.saveLocked(en)
	}
}

// Result implements dialler.Sink: the attempt (or the batch call) ended.
func (e *Engine) Result(r dialler.Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.observeBusyLocked(r)
	if b := e.batches[r.AttemptID]; b != nil {
		e.batchResultLocked(b, r)
		e.kickLocked()
		return
	}
	en := e.entryForAttemptLocked(r.AttemptID)
	if en == nil {
		e.log.Warn("engine: result for an unknown attempt", "attempt", r.AttemptID, "code", r.Code)
		return
	}
	e.finishLocked(en, r, e.mediaLocked(r), true)
	e.kickLocked()
}

// mediaLocked is the media report of the call whose result r is (nil
// without a media reporter).
func (e *Engine) mediaLocked(r dialler.Result) *job.MediaReport {
	if e.cfg.Media == nil {
		return nil
	}
	return e.cfg.Media.Report(r)
}

// finishLocked records how en's attempt ended and moves its job on. media
// is the attempt's call's media report; observe says whether media health
// learns from this attempt (once per call: a batch call's jobs share it).
func (e *Engine) finishLocked(en *entry, r dialler.Result, media *job.MediaReport, observe bool) {
	now := e.cfg.Clock.Now()
	e.freeLineLocked(en)
	if en.attemptTIF != "" && en.attemptTIF != filepath.Join(e.cfg.Store.DocDir(en.rec.Job.ID), FaxFile) {
		os.Remove(en.attemptTIF)
	}
	cancelled := en.cancel || r.Code == failure.JobCancelled
	delete(e.calls, r.AttemptID)
	if en.dialIssued && r.Code != failure.LineUnavailable {
		// A dial counts once its command was issued; an attempt lost to a
		// restart of faxbox (not the line's doing) does not.
		en.rec.Job.Dials++
	}
	en.inCall, en.attemptID, en.attemptTIF, en.dialIssued, en.cancel = false, "", "", false, false
	j := en.rec.Job
	evs := lifecycle.Finish(j, r, cancelled, e.policyFor(j), now)
	if a := j.LastAttempt(); a != nil && a.ID == r.AttemptID {
		a.Media = media
		if observe && e.cfg.Health != nil && j.Kind != job.KindCall {
			e.cfg.Health.Observe(j.To, a, !e.settings(j).audioFallback, now)
		}
	}
	if j.Status.Terminal() {
		e.endLocked(en, evs...)
	} else {
		e.saveLocked(en, evs...)
		e.readyLocked(en, now)
	}
}

// freeLineLocked frees the line en's call used: at once for a call of its
// own, when its last job leaves for a batch.
func (e *Engine) freeLineLocked(en *entry) {
	if en.batch != nil {
		e.leaveBatchLocked(en)
		return
	}
	if en.group != "" {
		e.sched.Release(en.group, en.line)
		e.board.call(job.LineAt(en.group, en.line), dialler.LineIdle, nil, 0, 0)
	}
}

// prepareTIFF cuts the pages an attempt still has to send and validates the
// file right before dialling; on failure it reports the attempt's result.
func (e *Engine) prepareTIFF(req *dialler.FaxSpec, attemptID, src, dir string, fail func(failure.Code, string)) bool {
	path := src
	if req.FirstPage > 1 {
		path = filepath.Join(dir, "attempt-"+attemptID+".tif")
		if _, err := e.cfg.Docs.Extract(src, path, req.FirstPage); err != nil {
			fail(failure.DocumentUnreadable, "extract pages: "+err.Error())
			return false
		}
	}
	pages, err := e.cfg.Docs.Validate(path)
	if err != nil || pages != req.TotalPages-req.FirstPage+1 {
		if err == nil {
			err = fmt.Errorf("TIFF has %d pages, want %d", pages, req.TotalPages-req.FirstPage+1)
		}
		code := failure.DocumentUnreadable
		if errors.Is(err, os.ErrNotExist) {
			code = failure.DocumentMissing
		}
		fail(code, "check before dialling: "+err.Error())
		return false
	}
	req.TIFF, req.Pages = path, pages
	return true
}

// routeLocked returns the job's line group: the one chosen when it was
// accepted while the configuration still has it and it still dials the
// number; otherwise the job is routed again, and the change is recorded on
// the job (Rerouted) and logged.
func (e *Engine) routeLocked(en *entry, now time.Time) (string, error) {
	j := en.rec.Job
	if j.Group != "" && e.sched.Accepts(j.Group, j.To) {
		return j.Group, nil
	}
	group, err := e.sched.Route(j.To, j.Options.LineGroup)
	if err != nil {
		return "", err
	}
	if j.Group != group {
		if j.Group != "" {
			e.log.Info("engine: the job's line group is gone or no longer dials its number; routed again",
				"job", j.ID, "from", j.Group, "to", group)
			j.Rerouted = j.Group
		}
		j.Group = group
		j.UpdatedAt = now
		e.saveLocked(en)
	}
	return group, nil
}
