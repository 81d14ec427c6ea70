package engine

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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

	// skipped counts changes the store refused (stale version, a status
	// change the lifecycle does not allow): each is a bug in the engine.
	skipped atomic.Int64

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

// run commits the queue in groups. A commit that fails (a full disk, an I/O
// error) is not dropped: its waiters are told at once (so nothing acts on a
// change that is not durable), and the same changes are committed again,
// ahead of everything queued later, until the store takes them. Without
// that, memory and disk would part: a job could end in memory while the
// store keeps it "dialing" for ever.
func (j *journal) run() {
	defer close(j.done)
	var held []pending // changes whose commit failed, oldest first
	backoff := retryMin
	for {
		j.mu.Lock()
		for len(j.queue) == 0 && len(held) == 0 && !j.closed {
			j.cond.Wait()
		}
		batch := append(held, j.queue...)
		j.queue = nil
		closed := j.closed
		j.mu.Unlock()
		held = nil
		if len(batch) > 0 {
			ws := make([]store.Write, len(batch))
			for i, p := range batch {
				ws[i] = p.w
			}
			skipped, err := j.st.PutMany(ws)
			for _, e := range skipped {
				j.log.Error("journal: change skipped", "err", e)
			}
			j.skipped.Add(int64(len(skipped)))
			for i := range batch {
				if batch[i].done != nil {
					batch[i].done <- err
					batch[i].done = nil
				}
			}
			if err != nil {
				if closed {
					j.log.Error("journal: commit failed at shutdown; the store keeps its last committed state", "changes", len(ws), "err", err)
					return
				}
				j.log.Error("journal: commit failed; retrying", "changes", len(ws), "err", err, "in", backoff)
				held = compact(batch)
				j.sleep(backoff)
				backoff = min(backoff*2, retryMax)
				continue
			}
			backoff = retryMin
			j.after(batch)
		}
		if closed {
			return
		}
	}
}

// Commit retry backoff.
const (
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
)

// sleep waits d, or less when the journal is closed meanwhile.
func (j *journal) sleep(d time.Duration) {
	t := time.AfterFunc(d, func() { j.cond.Broadcast() })
	defer t.Stop()
	deadline := time.Now().Add(d)
	j.mu.Lock()
	for !j.closed && time.Now().Before(deadline) {
		j.cond.Wait()
	}
	j.mu.Unlock()
}

// compact keeps the newest change of each job of a failed batch, carrying
// the older changes' deliveries along, so that a long outage holds one
// change per job and loses no notification.
func compact(batch []pending) []pending {
	last := map[string]int{}
	for i, p := range batch {
		if p.w.Record != nil {
			last[p.w.Record.Job.ID] = i
		}
	}
	var out []pending
	carry := map[string][]*store.Delivery{}
	for i, p := range batch {
		if p.w.Record == nil {
			out = append(out, p)
			continue
		}
		id := p.w.Record.Job.ID
		if last[id] != i {
			carry[id] = append(carry[id], p.w.Deliveries...)
			continue
		}
		if c := carry[id]; len(c) > 0 {
			p.w.Deliveries = append(c, p.w.Deliveries...)
		}
		out = append(out, p)
	}
	return out
}

// close commits what is queued and stops the writer.
func (j *journal) close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.cond.Signal()
	<-j.done
}
