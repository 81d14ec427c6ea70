package engine

import (
	"fmt"
	"sync"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/scheduler"
)

// board is the lines' display state: what /v1/lines, the front panel and
// the event stream show. It has a lock of its own, so readers never wait
// for the engine; the engine tells it every change (it decides, the board
// only shows), and every change is published as a LineChanged event.
type board struct {
	bus   *events.Bus
	mu    sync.Mutex
	order []job.LineID
	lines map[job.LineID]*dialler.LineState
}

func newBoard(bus *events.Bus, lines []scheduler.LineInfo) *board {
	b := &board{bus: bus, lines: map[job.LineID]*dialler.LineState{}}
	for _, l := range lines {
		id := job.LineAt(l.Group, l.Index)
		b.order = append(b.order, id)
		b.lines[id] = &dialler.LineState{Group: l.Group, Index: id.N, State: dialler.LineIdle, Healthy: true}
	}
	return b
}

// call shows line id in a call of job j (state, page n of pages), or idle
// when j is nil.
func (b *board) call(id job.LineID, state dialler.LineStatus, j *job.Job, page, pages int) {
	b.change(id, func(ls *dialler.LineState) {
		ls.State = state
		ls.JobID, ls.To, ls.Page, ls.Pages = "", "", 0, 0
		if j != nil {
			ls.JobID, ls.To, ls.Page, ls.Pages = j.ID, j.To, page, pages
		}
	})
}

// service marks line id made busy (busy) and/or down (!healthy); nil keeps
// the current value.
func (b *board) service(id job.LineID, busy, healthy *bool) {
	b.change(id, func(ls *dialler.LineState) {
		if busy != nil {
			ls.Busy = *busy
		}
		if healthy != nil {
			ls.Healthy = *healthy
		}
	})
}

// change applies f to line id, works out what an idle line shows, and
// publishes the result when it differs from before.
func (b *board) change(id job.LineID, f func(*dialler.LineState)) {
	b.mu.Lock()
	ls := b.lines[id]
	if ls == nil {
		b.mu.Unlock()
		return
	}
	before := *ls
	f(ls)
	if ls.JobID == "" {
		ls.State = idleStatus(ls)
	}
	snap := *ls
	b.mu.Unlock()
	if snap != before {
		b.bus.Publish(events.LineChanged, snap)
	}
}

// check returns ErrNoLine for a line the box does not have.
func (b *board) check(id job.LineID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lines[id] == nil {
		return fmt.Errorf("%w: %s", ErrNoLine, id)
	}
	return nil
}

// list returns every line, in the scheduler's order.
func (b *board) list() []dialler.LineState {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]dialler.LineState, 0, len(b.order))
	for _, id := range b.order {
		out = append(out, *b.lines[id])
	}
	return out
}

// idleStatus is what a line without a call shows: made busy wins over down.
func idleStatus(ls *dialler.LineState) dialler.LineStatus {
	switch {
	case ls.Busy:
		return dialler.LineBusiedOut
	case !ls.Healthy:
		return dialler.LineDown
	}
	return dialler.LineIdle
}
