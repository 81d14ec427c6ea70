// Package capacity learns how many calls at once a destination really takes.
// A number that answers busy while the box already has k calls up to it can
// take no more than k: it is capped at k, and the cap grows back by one call
// every Step until it reaches the configured limit again, so a fax server
// that was only busy for a while gets its full share back. The box stops
// wasting attempts on the busy tone instead of dialling into it again and
// again.
//
// A Learner is safe for concurrent use; time is passed in. Its caps are kept
// with the configured limit they were learned under: a cap learned under
// another limit (the configuration changed) is dropped when the learner is
// restored, so a new configuration starts from what it says.
package capacity

import (
	"slices"
	"sync"
	"time"
)

// DefaultStep is how long a learned cap stays before it grows by one call.
const DefaultStep = 10 * time.Minute

// Cap is what was learned about one number.
type Cap struct {
	Number string    `json:"number"`
	Calls  int       `json:"calls"` // the most calls at once it took, when learned
	Since  time.Time `json:"since"` // when it was learned (or last lowered)
	// Limit is the configured limit the cap was learned under.
	Limit int `json:"limit"`
}

// Learner keeps the learned caps.
type Learner struct {
	// Step is how long a cap stays before it grows by one call (DefaultStep
	// when zero).
	Step time.Duration

	mu   sync.Mutex
	caps map[string]Cap
}

// New returns a learner with no caps.
func New(step time.Duration) *Learner {
	if step <= 0 {
		step = DefaultStep
	}
	return &Learner{Step: step, caps: map[string]Cap{}}
}

// Busy records that num answered busy while others other calls to it were
// up, under the configured limit. It reports whether the cap changed (the
// caller persists the caps then). A busy with no other call up says nothing
// about capacity (the line may be busy with calls not from this box).
func (l *Learner) Busy(num string, others, limit int, now time.Time) bool {
	if others < 1 || others >= limit {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.caps[num]; ok && c.Limit == limit && l.effective(c, now) <= others {
		return false
	}
	l.caps[num] = Cap{Number: num, Calls: others, Since: now, Limit: limit}
	return true
}

// Limit returns how many calls at once num may have now: the configured
// limit, or less while a learned cap holds.
func (l *Learner) Limit(num string, limit int, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.caps[num]
	if !ok || c.Limit != limit {
		return limit
	}
	if e := l.effective(c, now); e < limit {
		return e
	}
	delete(l.caps, num) // grown back
	return limit
}

// effective is cap c grown by one call per Step since it was learned.
func (l *Learner) effective(c Cap, now time.Time) int {
	grown := 0
	if d := now.Sub(c.Since); d > 0 {
		grown = int(d / l.Step)
	}
	return c.Calls + grown
}

// Caps returns the caps that still hold, by number, with Calls as they
// stand at now.
func (l *Learner) Caps(now time.Time) []Cap {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Cap
	for _, c := range l.caps {
		if e := l.effective(c, now); e < c.Limit {
			c.Calls = e
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Cap) int {
		if a.Number < b.Number {
			return -1
		}
		return 1
	})
	return out
}

// Snapshot returns the caps as learned, for persisting.
func (l *Learner) Snapshot() []Cap {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Cap, 0, len(l.caps))
	for _, c := range l.caps {
		out = append(out, c)
	}
	return out
}

// Restore loads persisted caps; limit gives each number's configured limit
// now, and a cap learned under another limit is dropped.
func (l *Learner) Restore(caps []Cap, limit func(num string) int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range caps {
		if c.Number != "" && c.Calls >= 1 && c.Limit == limit(c.Number) {
			l.caps[c.Number] = c
		}
	}
}
