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
//
// One file per concern:
//
//	engine.go    the Engine, its entries and saving (the journal's queue)
//	journal.go   the single ordered writer: group commits, retried until
//	             the store takes them
//	recover.go   Start: active jobs back from the store, attempts
//	             reconciled with their diallers before anything is dialled
//	convert.go   the conversion pool (Submit, workers)
//	attempt.go   readiness, timers, the scheduler's assignments, dialling,
//	             and the dialler's Progress and Result (the Sink)
//	commands.go  what users ask: Get, Cancel, Retry, lines made busy or down
//	lines.go     the lines' display state (its own lock)
//
// Where what comes next plugs in: per-destination limits and batching live
// in the scheduler (its Next decides which ready jobs go on which free
// line; a batch is one Assignment carrying several jobs, dialled by
// startAttemptLocked as one Request). A queue shared by several boxes
// replaces the store behind Submit/recover and the journal, with the same
// contract: a change is durable before it is acted on.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/capacity"
	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/destctl"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/lifecycle"
	"github.com/faxbox/faxbox/firmware/scheduler"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/tiff"
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

// Input is one of a job's documents as the converter gets it: its absolute
// path, and its type as decided once, when the document was accepted (the
// job's File.Type; "" for a recording).
type Input struct {
	Path string
	Type string
}

// Documents converts and checks fax pages. Implemented over firmware/convert
// and firmware/tiff; a test may fake it.
type Documents interface {
	// Convert renders the job's inputs (absolute paths, in order) into one
	// TIFF-F at out and returns its page count, or a failure code.
	Convert(ctx context.Context, j *job.Job, inputs []Input, out string) (pages int, code failure.Code, err error)
	// Validate checks every page of a TIFF-F and returns the page count.
	Validate(path string) (int, error)
	// Extract writes pages from..N (1-based) of src to dst.
	Extract(src, dst string, from int) (int, error)
	// Join writes the parts' pages, in order, to dst as one TIFF-F (the
	// pages of a call carrying several jobs).
	Join(dst string, parts ...tiff.Part) (int, error)
}

// Outbox turns a job change into webhook deliveries (none when the job has no
// callback).
type Outbox func(j *job.Job, events []job.Event) []*store.Delivery

// Config wires an Engine.
type Config struct {
	Store    *store.DB
	Clock    clock.Clock
	Bus      *events.Bus
	Docs     Documents
	Groups   []*scheduler.Group
	Diallers map[string]dialler.Dialler // by group name
	// Rules are the destination controls (nil: one call per number, one
	// job per call, nothing else).
	Rules *destctl.Controls
	// Learned keeps what the box learned of numbers' capacity (nil: a
	// learner with the default step). Its caps are stored in Store and
	// restored by Start.
	Learned *capacity.Learner
	Policy  lifecycle.Policy
	Workers int
	Outbox  Outbox
	// Deliver is told of deliveries once they are durable.
	Deliver func([]*store.Delivery)
	Log     *slog.Logger
	// StationID is the default local station id.
	StationID string
	// Media, when set, makes each finished attempt's media report (nil
	// for attempts it has none for); it is called with the engine's lock
	// held and must not block.
	Media MediaReporter
	// Health, when set, is what the box learned of destinations' fax
	// paths: told of every finished fax attempt, asked before each one
	// whether to avoid T.38 (a destination rule that sets t38 wins).
	Health T38Advisor
}

// T38Advisor learns from fax attempts which destinations fail T.38.
type T38Advisor interface {
	// AvoidT38 reports whether the next attempt to number should go
	// G.711 first, and why (shown on the attempt).
	AvoidT38(number string, now time.Time) (avoid bool, decision string)
	// Observe is told of each finished fax attempt a to number; t38Only:
	// it asked for T.38 without G.711 fallback.
	Observe(number string, a *job.Attempt, t38Only bool, now time.Time)
}

// PathAdvisor is a T38Advisor that also learned which paths are lossy;
// the engine asks it when Health implements it.
type PathAdvisor interface {
	// AdvisePath returns the next fax attempt's settings to number: ecm
	// (turn ECM on), maxRate (at most, 0: no limit) and why (shown on the
	// attempt; empty: nothing learned). fixedECM, fixedRate: the
	// destination's rule sets them, and they win.
	AdvisePath(number string, now time.Time, fixedECM, fixedRate bool) (ecm bool, maxRate int, decision string)
}

// MediaReporter makes the media report of a finished attempt.
type MediaReporter interface {
	Report(r dialler.Result) *job.MediaReport
}

// Engine owns the active jobs.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	sched *scheduler.Scheduler
	jr    *journal

	mu      sync.Mutex
	entries map[string]*entry
	calls   map[string]*entry     // attempt id → entry in a call
	batches map[string]*batchCall // call id → a call carrying several jobs
	convQ   []string
	convC   *sync.Cond
	closed  bool
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	board   *board
	started bool
	// capsSeq numbers the learned-caps snapshots; capsSaved is the newest
	// stored (under capsMu).
	capsSeq   uint64
	capsMu    sync.Mutex
	capsSaved uint64
	// batchWake runs kickLocked when a job held for a fuller batch may go.
	batchWake   clock.Timer
	batchWakeAt time.Time
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
	batch      *batchCall // the call it shares with other jobs, if any
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
		cfg.Outbox = func(*job.Job, []job.Event) []*store.Delivery { return nil }
	}
	if cfg.Deliver == nil {
		cfg.Deliver = func([]*store.Delivery) {}
	}
	if cfg.Learned == nil {
		cfg.Learned = capacity.New(0)
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
	e := &Engine{cfg: cfg, log: cfg.Log, sched: sched, entries: map[string]*entry{}, calls: map[string]*entry{}, batches: map[string]*batchCall{}, board: newBoard(cfg.Bus, sched.Lines())}
	sched.SetDestinations(e.limits)
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

// Close stops the workers and timers and flushes the journal. Calls in
// progress are left to the dialler (they are reconciled on the next Start).
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	stopTimer(&e.batchWake)
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
func (e *Engine) saveLocked(en *entry, evs ...job.Event) <-chan error {
	en.rec.Version++
	j := en.rec.Job.Clone()
	rec := &store.Record{Job: j, Version: en.rec.Version, Hash: en.rec.Hash, Paths: en.rec.Paths}
	var ds []*store.Delivery
	if len(evs) > 0 {
		ds = e.cfg.Outbox(j, evs)
	}
	return e.jr.add(store.Write{Record: rec, Deliveries: ds})
}
