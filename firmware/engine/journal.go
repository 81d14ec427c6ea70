package engine

import (
	"log/slog"
	"sync"

	"github.com/faxbox/faxbox/firmware/store"
)

// journal is the single ordered writer of job state. Changes are queued under
// the engine's lock (so their order is the order of the versions) and
// committed in groups by one goroutine; after each commit it publishes the
// changes and hands the new deliveries to the webhook sender.
type journal struct {
	st    *store.DB
	log   *slog.Logger
	after func([]pending)

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []pending
	closed bool
	done   chan struct{}
}

type pending struct {
	w    store.Write
	done chan error // buffered(1)
}

func newJournal(st *store.DB, log *slog.Logger, after func([]pending)) *journal {
	j := &journal{st: st, log: log, after: after, done: make(chan struct{})}
	j.cond = sync.NewCond(&j.mu)
	go j.run()
	return j
}

// add queues w and returns a channel that yields the commit's error.
func (j *journal) add(w store.Write) <-chan error {
	p := pending{w: w, done: make(chan error, 1)}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		p.done <- errClosed
		return p.done
	}
	j.queue = append(j.queue, p)
	j.mu.Unlock()
	j.cond.Signal()
	return p.done
}

func (j *journal) run() {
	defer close(j.done)
	for {
		j.mu.Lock()
		for len(j.queue) == 0 && !j.closed {
			j.cond.Wait()
		}
		batch := j.queue
		j.queue = nil
		closed := j.closed
		j.mu.Unlock()
		if len(batch) > 0 {
			ws := make([]store.Write, len(batch))
			for i, p := range batch {
				ws[i] = p.w
			}
			stale, err := j.st.PutMany(ws)
			if err != nil {
				j.log.Error("journal: commit failed", "changes", len(ws), "err", err)
			}
			for _, id := range stale {
				j.log.Warn("journal: stale job version skipped", "job", id)
			}
			for _, p := range batch {
				p.done <- err
			}
			if err == nil {
				j.after(batch)
			}
		}
		if closed {
			return
		}
	}
}

// close commits what is queued and stops the writer.
func (j *journal) close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.cond.Signal()
	<-j.done
}
