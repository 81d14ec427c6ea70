package diallertest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/dialler"
)

// Sink is a recording dialler.Sink. It counts Results per attempt and keeps
// every violation of the contract it can see by itself: a second Result for
// an attempt, a Progress after an attempt's Result, a report without an
// attempt id. Err returns them. It is safe for concurrent use.
type Sink struct {
	mu       sync.Mutex
	results  map[string][]dialler.Result
	progress map[string][]dialler.Progress
	bad      []error
	changed  chan struct{} // closed and replaced on every report
}

// NewSink returns an empty recording sink.
func NewSink() *Sink {
	return &Sink{results: map[string][]dialler.Result{}, progress: map[string][]dialler.Progress{}, changed: make(chan struct{})}
}

// Progress records p; a Progress after its attempt's Result is a violation.
func (s *Sink) Progress(p dialler.Progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case p.AttemptID == "":
		s.bad = append(s.bad, fmt.Errorf("progress without an attempt id: %+v", p))
	case len(s.results[p.AttemptID]) > 0:
		s.bad = append(s.bad, fmt.Errorf("attempt %s: progress %q after its result", p.AttemptID, p.State))
	}
	s.progress[p.AttemptID] = append(s.progress[p.AttemptID], p)
	s.notify()
}

// Result records r; a second Result for an attempt is a violation.
func (s *Sink) Result(r dialler.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch n := len(s.results[r.AttemptID]); {
	case r.AttemptID == "":
		s.bad = append(s.bad, fmt.Errorf("result without an attempt id: %+v", r))
	case n > 0:
		s.bad = append(s.bad, fmt.Errorf("attempt %s: result %d (code %q) after %+v", r.AttemptID, n+1, r.Code, s.results[r.AttemptID][0]))
	}
	s.results[r.AttemptID] = append(s.results[r.AttemptID], r)
	s.notify()
}

// notify wakes the waiters; s.mu is held.
func (s *Sink) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Results returns the Results recorded for attempt id.
func (s *Sink) Results(id string) []dialler.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]dialler.Result(nil), s.results[id]...)
}

// Progresses returns the Progress reports recorded for attempt id.
func (s *Sink) Progresses(id string) []dialler.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]dialler.Progress(nil), s.progress[id]...)
}

// Attempts returns the ids of every attempt with a Result or a Progress.
func (s *Sink) Attempts() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := map[string]bool{}
	for id := range s.results {
		ids[id] = true
	}
	for id := range s.progress {
		ids[id] = true
	}
	return ids
}

// Err returns the violations seen so far (nil when none).
func (s *Sink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.bad...)
}

// WaitFor waits until cond, evaluated under the sink's lock after every
// report, holds, or d has passed; it reports whether cond held.
func (s *Sink) WaitFor(d time.Duration, cond func(*Sink) bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s) {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return cond(s)
		}
	}
}

// WaitResults waits up to d until every attempt in ids has a Result; the
// error names the ones without.
func (s *Sink) WaitResults(d time.Duration, ids ...string) error {
	s.WaitFor(d, func(s *Sink) bool {
		for _, id := range ids {
			if len(s.Results(id)) == 0 {
				return false
			}
		}
		return true
	})
	var missing []string
	for _, id := range ids {
		if len(s.Results(id)) == 0 {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no result within %s for %v", d, missing)
	}
	return nil
}
