// Package events is the box's one in-process event stream: every job change,
// line change and alarm is published here once, and the SSE endpoint, the
// front panel and the metrics each subscribe. Publishers never block: a
// subscriber that falls behind its buffer is closed and told so (Dropped).
package events

import (
	"encoding/json"
	"sync"
	"time"
)

// Event types.
const (
	JobChanged  = "job"
	LineChanged = "line"
	Alarm       = "alarm"
	Status      = "status"
)

// Event is one published change.
type Event struct {
	Seq  uint64          `json:"seq"`
	Type string          `json:"type"`
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"data"`
	// Value is the Go value Data was made from, for in-process subscribers.
	Value any `json:"-"`
}

// Bus fans events out to subscribers.
type Bus struct {
	mu   sync.Mutex
	seq  uint64
	subs map[*Sub]struct{}
	now  func() time.Time
}

// Sub is one subscription.
type Sub struct {
	C       <-chan Event
	c       chan Event
	b       *Bus
	dropped bool
	closed  bool
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{subs: map[*Sub]struct{}{}, now: time.Now} }

// Subscribe returns a subscription with a buffer of n events.
func (b *Bus) Subscribe(n int) *Sub {
	if n <= 0 {
		n = 256
	}
	c := make(chan Event, n)
	s := &Sub{C: c, c: c, b: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Subscribers returns the number of open subscriptions.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Close ends the subscription; C is closed.
func (s *Sub) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.closeLocked()
}

func (s *Sub) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	delete(s.b.subs, s)
	close(s.c)
}

// Dropped reports whether the subscription was closed because it fell behind.
func (s *Sub) Dropped() bool {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.dropped
}

// Publish sends v as an event of type typ to every subscriber.
func (b *Bus) Publish(typ string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`null`)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e := Event{Seq: b.seq, Type: typ, At: b.now(), Data: data, Value: v}
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.dropped = true
			s.closeLocked()
		}
	}
}
