// Package engine runs the fax lifecycle: it takes stored jobs through
// conversion, the scheduler and a dialler to their end, and records every
// step durably before acting on it.
//
// Data flow: api → store (Create) → Submit → converter pool → scheduler →
// dialler → Sink (Progress/Result) → lifecycle → journal (store + outbox in
// one commit) → events bus and webhook sender.
//
// Guarantees:
//   - An attempt is durable (status dialing, attempt record) before its dial
//     command is issued; after a restart, Start asks each dialler which
//     attempts are still up (Reconcile) before dialling anything.
//   - A job is never on two lines at once, and a number never in two calls.
//   - A delivered job is final: nothing dials it again.
//   - Everything is event driven: a job that becomes ready while a line is
//     free is handed to the dialler at once.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/lifecycle"
	"github.com/faxbox/faxbox/firmware/scheduler"
	"github.com/faxbox/faxbox/firmware/store"
)

// Sentinel errors of the engine's API.
var (
	ErrNotFound  = errors.New("engine: no such job")
	ErrFinished  = errors.New("engine: job already finished")
	ErrDelivered = errors.New("engine: job was delivered; it is never sent twice")
	ErrNoDocs    = errors.New("engine: the job's documents were purged")
	ErrNotFailed = errors.New("engine: only failed, cancelled or waiting jobs can be retried")
	ErrNoLine    = errors.New("engine: no such line")
	errClosed    = errors.New("engine: shut down")
)

// FaxFile is the name of a job's converted document in its document directory.
const FaxFile = "fax.tif"

// Documents converts and checks fax pages. Implemented over firmware/convert
// and firmware/tiff; a test may fake it.
type Documents interface {
	// Convert renders the job's inputs (absolute paths, in order) into one
	// TIFF-F at out and returns its page count, or a failure code.
	Convert(ctx context.Context, j *job.Job, inputs []string, out string) (pages int, code failure.Code, err error)
	// Validate checks every page of a TIFF-F and returns the page count.
	Validate(path string) (int, error)
	// Extract writes pages from..N (1-based) of src to dst.
	Extract(src, dst string, from int) (int, error)
}

// Outbox turns a job change into webhook deliveries (none when the job has no
// callback).
type Outbox func(j *job.Job, events []string) []*store.Delivery

// Config wires an Engine.
type Config struct {
	Store    *store.DB
	Clock    clock.Clock
	Bus      *events.Bus
	Docs     Documents
	Groups   []*scheduler.Group
	Diallers map[string]dialler.Dialler // by group name
	Policy   lifecycle.Policy
	Workers  int
	Outbox   Outbox
	// Deliver is told of deliveries once they are durable.
	Deliver func([]*store.Delivery)
	Log     *slog.Logger
	// StationID is the default local station id.
	StationID string
}

// Engine owns the active jobs.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	sched *scheduler.Scheduler
	jr    *journal

	mu      sync.Mutex
	entries map[string]*entry
	calls   map[string]*entry // attempt id → entry in a call
	convQ   []string
	convC   *sync.Cond
	closed  bool
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	board   *board
	started bool
}

type entry struct {
	rec        *store.Record
	wake       clock.Timer
	expire     clock.Timer
	cancelConv context.CancelFunc
	// In a call:
	inCall     bool
	attemptID  string
	group      string
	line       int
	dialIssued bool
	cancel     bool // cancel requested while in a call
	attemptTIF string
}

// New builds an engine; Start brings it up.
func New(cfg Config) (*Engine, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Bus == nil {
		cfg.Bus = events.NewBus()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Outbox == nil {
		cfg.Outbox = func(*job.Job, []string) []*store.Delivery { return nil }
	}
	if cfg.Deliver == nil {
		cfg.Deliver = func([]*store.Delivery) {}
	}
	sched, err := scheduler.New(cfg.Groups)
	if err != nil {
		return nil, err
	}
	for _, g := range cfg.Groups {
		if cfg.Diallers[g.Name] == nil {
			return nil, fmt.Errorf("engine: line group %s has no dialler", g.Name)
		}
	}
	e := &Engine{cfg: cfg, log: cfg.Log, sched: sched, entries: map[string]*entry{}, calls: map[string]*entry{}, board: newBoard(cfg.Bus, sched.Lines())}
	e.convC = sync.NewCond(&e.mu)
	e.ctx, e.stop = context.WithCancel(context.Background())
	e.jr = newJournal(cfg.Store, cfg.Log, e.committed)
	return e, nil
}

// committed runs after each group commit, outside the engine lock.
func (e *Engine) committed(batch []pending) {
	var ds []*store.Delivery
	for _, p := range batch {
		if p.w.Record != nil {
			e.cfg.Bus.Publish(events.JobChanged, p.w.Record.Job)
		}
		ds = append(ds, p.w.Deliveries...)
	}
	if len(ds) > 0 {
		e.cfg.Deliver(ds)
	}
}

// Route returns the line group for a number (see scheduler.Route).
func (e *Engine) Route(to, group string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sched.Route(to, group)
}

// Start recovers the active jobs from the store, reconciles attempts that
// were in a call with their diallers, and starts the converter workers.
func (e *Engine) Start(ctx context.Context) error {
	recs, err := e.cfg.Store.Active()
	if err != nil {
		return fmt.Errorf("engine: recover: %w", err)
	}
	byDialler := map[string][]dialler.Request{}
	for _, r := range recs {
		if r.Job.Status.Active() {
			if a := r.Job.LastAttempt(); a != nil {
				byDialler[a.Line.Group] = append(byDialler[a.Line.Group], e.request(r.Job, a))
			}
		}
	}
	alive := map[string]bool{}
	kept := map[string]dialler.Result{}
	for g, reqs := range byDialler {
		d := e.cfg.Diallers[g]
		if d == nil {
			continue
		}
		got, err := d.Reconcile(ctx, reqs)
		if err != nil {
			return fmt.Errorf("engine: reconcile %d attempts on %s: %w", len(reqs), g, err)
		}
		for id := range got {
			alive[id] = true
		}
		if k, ok := d.(dialler.Keeper); ok {
			for _, req := range reqs {
				if !alive[req.AttemptID] {
					if r, ok := k.Kept(ctx, req); ok {
						kept[req.AttemptID] = r
					}
				}
			}
		}
	}
	var lost []dialler.Result
	e.mu.Lock()
	now := e.cfg.Clock.Now()
	for _, r := range recs {
		if e.entries[r.Job.ID] != nil {
			continue // submitted between New and Start: already queued
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
			a := j.LastAttempt()
			g, idx := a.Line.Group, a.Line.Index()
			en.inCall, en.attemptID, en.group, en.line = true, a.ID, g, idx
			e.calls[a.ID] = en
			if err := e.sched.Occupy(g, idx, j.ID, j.To); err != nil {
				e.log.Warn("engine: recover line", "job", j.ID, "err", err)
				en.group = ""
			} else {
				e.board.call(job.LineAt(g, idx), dialler.LineStatus(j.Status), j, 0, j.Pages)
			}
			if alive[a.ID] {
				en.dialIssued = true
				e.log.Info("engine: attempt still up after restart; waiting for its result", "job", j.ID, "attempt", a.ID)
			} else if r, ok := kept[a.ID]; ok {
				en.dialIssued = true
				e.log.Info("engine: attempt ended while faxbox was down; its result was kept", "job", j.ID, "attempt", a.ID, "code", r.Code)
				lost = append(lost, r)
			} else {
				// An attempt that got as far as an answer was dialled and
				// counts; one that shows no sign of a call may never have
				// been dialled (the box, not the line, failed) and does not.
				en.dialIssued = a.AnsweredAt != nil || a.Channel != "" || j.Status == job.Sending
				lost = append(lost, dialler.Result{AttemptID: a.ID, Code: failure.LineInterrupted, Raw: "faxbox restarted during the attempt; the call was not found in Asterisk", EndedAt: now})
			}
		}
		if !j.Status.Terminal() && !en.inCall {
			e.armExpiry(en, now)
		}
	}
	e.started = true
	e.mu.Unlock()
	for _, r := range lost {
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

// Close stops the workers and timers and flushes the journal. Calls in
// progress are left to the dialler (they are reconciled on the next Start).
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	for _, en := range e.entries {
		stopTimer(&en.wake)
		stopTimer(&en.expire)
	}
	e.convC.Broadcast()
	e.mu.Unlock()
	e.stop()
	e.wg.Wait()
	e.jr.close()
}

func stopTimer(t *clock.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}

// save queues the entry's job (with a new version) and deliveries for the
// events; it returns the commit's result channel.
func (e *Engine) saveLocked(en *entry, evs ...string) <-chan error {
	en.rec.Version++
	j := en.rec.Job.Clone()
	rec := &store.Record{Job: j, Version: en.rec.Version, Hash: en.rec.Hash, Paths: en.rec.Paths}
	var ds []*store.Delivery
	if len(evs) > 0 {
		ds = e.cfg.Outbox(j, evs)
	}
	return e.jr.add(store.Write{Record: rec, Deliveries: ds})
}

// Submit hands a newly stored job to the engine and returns a copy of it
// taken before any worker can change it. From this call on the engine owns
// r: the caller must not read or write r.Job again (use the copy).
func (e *Engine) Submit(r *store.Record) *job.Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	snap := r.Job.Clone()
	if e.closed {
		return snap
	}
	if _, ok := e.entries[r.Job.ID]; ok {
		return snap
	}
	en := &entry{rec: r}
	e.entries[r.Job.ID] = en
	e.armExpiry(en, e.cfg.Clock.Now())
	e.convQ = append(e.convQ, r.Job.ID)
	e.convC.Signal()
	return snap
}

func (e *Engine) convertWorker() {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		for len(e.convQ) == 0 && !e.closed {
			e.convC.Wait()
		}
		if e.closed {
			e.mu.Unlock()
			return
		}
		id := e.convQ[0]
		e.convQ = e.convQ[1:]
		en := e.entries[id]
		if en == nil || en.cancelConv != nil || en.inCall || (en.rec.Job.Status != job.Queued && en.rec.Job.Status != job.Converting) {
			e.mu.Unlock()
			continue // gone, ended, or queued twice: converted once
		}
		j := en.rec.Job
		j.Status = job.Converting
		j.UpdatedAt = e.cfg.Clock.Now()
		e.saveLocked(en)
		ctx, cancel := context.WithCancel(e.ctx)
		en.cancelConv = cancel
		jc := j.Clone()
		paths := make([]string, len(en.rec.Paths))
		dir := e.cfg.Store.DocDir(id)
		for i, p := range en.rec.Paths {
			paths[i] = filepath.Join(dir, p)
		}
		e.mu.Unlock()

		pages, code, err := e.cfg.Docs.Convert(ctx, jc, paths, filepath.Join(dir, FaxFile))
		cancel()

		e.mu.Lock()
		en.cancelConv = nil
		if e.entries[id] != en || en.rec.Job.Status.Terminal() || e.closed {
			e.mu.Unlock()
			continue
		}
		now := e.cfg.Clock.Now()
		if err != nil {
			if code == "" {
				code = failure.DocumentUnreadable
			}
			e.log.Info("engine: conversion failed", "job", id, "code", code, "err", err)
			evs := lifecycle.FailDocument(j, code, err.Error(), now)
			e.endLocked(en, evs...)
		} else {
			j.Pages = pages
			e.readyLocked(en, now)
			e.kickLocked()
		}
		e.mu.Unlock()
	}
}

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
	group, err := e.sched.Route(j.To, j.Options.LineGroup)
	if err != nil {
		evs := lifecycle.FailDocument(j, failure.NoLineForNumber, err.Error(), now)
		e.endLocked(en, evs...)
		return
	}
	if open, next := scheduler.Open(e.sched.Windows(group), now); !open && j.Priority < 9 {
		// Outside the line group's calling window: wait for it to open.
		stopTimer(&en.wake)
		id := j.ID
		en.wake = e.cfg.Clock.AfterFunc(next.Sub(now), func() { e.wakeUp(id) })
		return
	}
	sendAt := j.CreatedAt
	if j.SendAt != nil {
		sendAt = *j.SendAt
	}
	e.sched.Add(&scheduler.Item{JobID: j.ID, To: j.To, Group: group, Priority: j.Priority, SendAt: sendAt, Seq: j.Seq})
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
func (e *Engine) endLocked(en *entry, evs ...string) <-chan error {
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
	for _, as := range e.sched.Next() {
		en := e.entries[as.Item.JobID]
		if en == nil {
			e.sched.Release(as.Group, as.Line)
			continue
		}
		e.startAttemptLocked(en, as)
	}
}

func (e *Engine) startAttemptLocked(en *entry, as scheduler.Assignment) {
	j := en.rec.Job
	now := e.cfg.Clock.Now()
	id := job.NewAttemptID()
	t38 := j.Options.T38 != "off" && !j.Fallback.NoT38
	a := job.Attempt{
		ID:        id,
		N:         len(j.Attempts) + 1,
		Line:      job.LineAt(as.Group, as.Line),
		StartedAt: now,
		Result:    "in_progress",
		FirstPage: j.PagesConfirmed + 1,
		T38:       t38,
		MaxRate:   j.Fallback.MaxRate,
	}
	j.Attempts = append(j.Attempts, a)
	j.Status = job.Dialing
	j.UpdatedAt = now
	stopTimer(&en.wake)
	en.inCall, en.attemptID, en.group, en.line = true, id, as.Group, as.Line
	e.calls[id] = en
	en.dialIssued, en.cancel = false, false
	e.board.call(job.LineAt(as.Group, as.Line), dialler.LineDialing, j, 0, 0)
	req := e.request(j, j.LastAttempt())
	if j.Kind == job.KindCall {
		j.LastAttempt().Number = req.To
	}
	done := e.saveLocked(en)
	d := e.cfg.Diallers[as.Group]
	e.wg.Add(1)
	go e.dial(en, d, req, done)
}

// request is what the dialler is told of attempt a of job j: when it is
// dialled, and again when it is recovered after a restart (Reconcile, Kept).
// The TIFF is set by dial.
func (e *Engine) request(j *job.Job, a *job.Attempt) dialler.Request {
	req := dialler.Request{
		AttemptID:     a.ID,
		JobID:         j.ID,
		To:            j.To,
		Line:          a.Line.Group,
		FirstPage:     a.FirstPage,
		TotalPages:    j.Pages,
		StationID:     firstNonEmpty(j.Options.StationID, e.cfg.StationID),
		ECM:           j.Options.ECM != "off" && !j.Fallback.NoECM,
		T38:           a.T38,
		MaxRate:       a.MaxRate,
		AudioFallback: j.Options.T38 != "on",
	}
	if j.Kind == job.KindCall && j.Call != nil {
		req.Kind, req.CallKind = job.KindCall, j.Call.Kind
		req.To = j.CallNumber(a.N)
		req.Agent, req.Repeat, req.ConfirmDigit = j.Call.Agent, j.Call.Repeat, j.Call.ConfirmDigit
		if j.Call.Say != "" || j.Call.Play != "" {
			req.Sound = filepath.Join(e.cfg.Store.DocDir(j.ID), "message")
		}
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
	if req.Kind != job.KindCall {
		if !e.prepareTIFF(&req, src, src, dir, fail) {
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
	en.attemptTIF = req.TIFF
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
	if en.group != "" {
		e.sched.Release(en.group, en.line)
		e.board.call(job.LineAt(en.group, en.line), dialler.LineIdle, nil, 0, 0)
	}
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
	en := e.entryForAttemptLocked(p.AttemptID)
	if en == nil {
		return
	}
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
	page := 0
	if p.Page > 0 {
		page = a.FirstPage - 1 + p.Page
	}
	e.board.call(job.LineAt(en.group, en.line), dialler.LineStatus(p.State), j, page, j.Pages)
}

// Result implements dialler.Sink: the attempt ended.
func (e *Engine) Result(r dialler.Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.entryForAttemptLocked(r.AttemptID)
	if en == nil {
		e.log.Warn("engine: result for an unknown attempt", "attempt", r.AttemptID, "code", r.Code)
		return
	}
	now := e.cfg.Clock.Now()
	if en.group != "" {
		e.sched.Release(en.group, en.line)
		e.board.call(job.LineAt(en.group, en.line), dialler.LineIdle, nil, 0, 0)
	}
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
	evs := lifecycle.Finish(j, r, cancelled, e.cfg.Policy, now)
	if j.Status.Terminal() {
		e.endLocked(en, evs...)
	} else {
		e.saveLocked(en, evs...)
		e.readyLocked(en, now)
	}
	e.kickLocked()
}

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

// prepareTIFF cuts the pages an attempt still has to send and validates the
// file right before dialling; on failure it reports the attempt's result.
func (e *Engine) prepareTIFF(req *dialler.Request, src, path, dir string, fail func(failure.Code, string)) bool {
	if req.FirstPage > 1 {
		path = filepath.Join(dir, "attempt-"+req.AttemptID+".tif")
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
