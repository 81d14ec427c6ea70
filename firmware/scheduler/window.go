package scheduler

import (
	"fmt"
	"time"
)

// Window is a daily calling window in local time, [From, To). A window with
// To before From spans midnight.
type Window struct {
	From, To time.Duration // since midnight
}

// ParseWindow reads "08:00-20:00".
func ParseWindow(s string) (Window, error) {
	var h1, m1, h2, m2 int
	if n, err := fmt.Sscanf(s, "%d:%d-%d:%d", &h1, &m1, &h2, &m2); err != nil || n != 4 ||
		h1 < 0 || h1 > 24 || h2 < 0 || h2 > 24 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59 {
		return Window{}, fmt.Errorf("scheduler: window %q: want HH:MM-HH:MM", s)
	}
	w := Window{From: time.Duration(h1)*time.Hour + time.Duration(m1)*time.Minute, To: time.Duration(h2)*time.Hour + time.Duration(m2)*time.Minute}
	if w.From == w.To {
		return Window{}, fmt.Errorf("scheduler: window %q is empty", s)
	}
	return w, nil
}

func (w Window) contains(d time.Duration) bool {
	if w.From < w.To {
		return d >= w.From && d < w.To
	}
	return d >= w.From || d < w.To
}

// Open reports whether t falls in one of ws (no windows: always open) and,
// when it does not, when the next one opens.
func Open(ws []Window, t time.Time) (bool, time.Time) {
	if len(ws) == 0 {
		return true, t
	}
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	since := t.Sub(midnight)
	var next time.Time
	for _, w := range ws {
		if w.contains(since) {
			return true, t
		}
		start := midnight.Add(w.From)
		if !start.After(t) {
			start = start.AddDate(0, 0, 1)
		}
		if next.IsZero() || start.Before(next) {
			next = start
		}
	}
	return false, next
}

// Windows returns a group's calling windows.
func (s *Scheduler) Windows(group string) []Window {
	if g, ok := s.byName[group]; ok {
		return g.Windows
	}
	return nil
}
