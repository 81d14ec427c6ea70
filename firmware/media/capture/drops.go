package capture

import "time"

// Drops counts the packets the capture did not look at.
type Drops struct {
	RateLimited uint64 `json:"rate_limited"` // over the monitor's rate limit
	Kernel      uint64 `json:"kernel"`       // dropped by the kernel (socket buffer full)
	Refused     uint64 `json:"refused"`      // of new flows while the flow table was full
}

// Total is every packet dropped.
func (d Drops) Total() uint64 { return d.RateLimited + d.Kernel + d.Refused }

func (d *Drops) plus(o Drops) {
	d.RateLimited += o.RateLimited
	d.Kernel += o.Kernel
	d.Refused += o.Refused
}

// dropLogSeconds bounds the drop log: the seconds with drops kept (about
// two hours of a flood that never stops, 2 × 3600 × 32 bytes), longer than
// a fax call lasts.
const dropLogSeconds = 7200

// dropSecond is the drops of one second (Unix time).
type dropSecond struct {
	sec int64
	Drops
}

// dropLog keeps the drops per second, for the seconds that had any, so a
// fax attempt's report can say whether the capture missed packets while
// its call was up. Memory is bounded by dropLogSeconds.
type dropLog struct{ secs []dropSecond }

// add counts d at at (at may be out of order by a little: an older second
// is added to the newest entry not after it, or the first).
func (l *dropLog) add(at time.Time, d Drops) {
	sec := at.Unix()
	if n := len(l.secs); n > 0 && l.secs[n-1].sec >= sec {
		i := n - 1
		for i > 0 && l.secs[i].sec > sec {
			i--
		}
		l.secs[i].plus(d)
		return
	}
	if len(l.secs) >= dropLogSeconds {
		l.secs = append(l.secs[:0], l.secs[len(l.secs)-dropLogSeconds/2:]...)
	}
	l.secs = append(l.secs, dropSecond{sec: sec, Drops: d})
}

// sum is the drops in the seconds from from to to (inclusive, whole
// seconds).
func (l *dropLog) sum(from, to time.Time) Drops {
	var d Drops
	f, t := from.Unix(), to.Unix()
	for i := len(l.secs) - 1; i >= 0 && l.secs[i].sec >= f; i-- {
		if l.secs[i].sec <= t {
			d.plus(l.secs[i].Drops)
		}
	}
	return d
}

// DroppedBetween returns the packets the capture dropped from from to to
// (whole seconds): over the rate limit, refused for a full flow table,
// and the kernel's drops noted with NoteKernelDrops.
func (m *Monitor) DroppedBetween(from, to time.Time) Drops {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.drops.sum(from, to)
}

// NoteKernelDrops records n packets the kernel dropped, noticed at at.
func (m *Monitor) NoteKernelDrops(n uint64, at time.Time) {
	if n == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drops.add(at, Drops{Kernel: n})
}
