// Package scheduler decides which ready job goes out on which free line. It is
// a data structure without goroutines or I/O: the engine calls it under its
// lock whenever something changes (a job became ready, a line fell free, a
// line was made busy), so a job whose line is free is assigned at once, with
// no polling delay.
//
// Order within a line group: priority (9 first), then send_at, then arrival.
// Each number has limits (Destinations; by default one call at a time and
// one job per call): no call is started to a number that already has its
// limit of calls up, and the job that goes to a free line takes along up to
// its batch size of other ready jobs to the same number that may share a call
// (same batch key). A number held back by its limit never holds up the
// others: the line goes to the next job in order.
package scheduler

import (
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrNoLine is returned by Route when no group can dial a number.
var ErrNoLine = errors.New("scheduler: no line for number")

// Group is a set of channels that dial out the same way.
type Group struct {
	Name     string
	Channels int
	Prefixes []string // empty: any number
	// Test marks the simulated test line: it takes only numbers with its
	// prefix, and those numbers go nowhere else.
	Test bool
	// Windows: calls other than urgent ones (priority 9) start only inside
	// one of these daily windows; none means any time.
	Windows []Window

	lines []line
	ready queue
}

type line struct {
	busy  bool // made busy (out of service)
	down  bool // its channel cannot carry calls (a line card alarm)
	jobID string
	to    string
}

// Item is a job waiting for a line.
type Item struct {
	JobID    string
	To       string
	Group    string
	Priority int
	SendAt   time.Time
	Seq      uint64
	// BatchKey: jobs to one number with the same key may share a call
	// (their fax options agree); "" never shares.
	BatchKey string
	// Since is when the job became ready (batch_wait counts from it).
	Since time.Time
	index int
}

// Assignment is a call put on a line: Item goes first, Batch are the jobs
// to the same number that share its call, in queue order.
type Assignment struct {
	Item  *Item
	Batch []*Item
	Group string
	Line  int // 0-based channel index within the group
}

// Items returns every job of the call, the first one first.
func (a Assignment) Items() []*Item { return append([]*Item{a.Item}, a.Batch...) }

// Limits are what one number allows.
type Limits struct {
	Concurrent int           // calls up at once (at least 1)
	Batch      int           // jobs in one call (at least 1)
	BatchWait  time.Duration // how long a free line may wait for a fuller batch
}

// Destinations returns the limits of a number (digits, no leading +).
type Destinations func(num string) Limits

// OneAtATime is the default: one call per number, one job per call.
func OneAtATime(string) Limits { return Limits{Concurrent: 1, Batch: 1} }

// Scheduler holds the groups, the waiting items and the lines in use.
type Scheduler struct {
	groups  []*Group
	byName  map[string]*Group
	items   map[string]*Item
	numbers map[string]int // number → calls up
	limits  Destinations
}

// New returns a scheduler for groups (in routing order), with one call per
// number until SetDestinations says otherwise.
func New(groups []*Group) (*Scheduler, error) {
	s := &Scheduler{byName: map[string]*Group{}, items: map[string]*Item{}, numbers: map[string]int{}, limits: OneAtATime}
	for _, g := range groups {
		if g.Channels < 1 {
			return nil, fmt.Errorf("scheduler: group %s has no channels", g.Name)
		}
		if _, dup := s.byName[g.Name]; dup {
			return nil, fmt.Errorf("scheduler: group %s defined twice", g.Name)
		}
		g.lines = make([]line, g.Channels)
		s.groups = append(s.groups, g)
		s.byName[g.Name] = g
	}
	return s, nil
}

// Route returns the group that dials to. Numbers with a test group's prefix
// go to that group only, whatever was requested (they never dial). A
// requested group must exist and accept the number.
func (s *Scheduler) Route(to, requested string) (string, error) {
	num := strings.TrimPrefix(to, "+")
	for _, g := range s.groups {
		if g.Test && hasAnyPrefix(num, g.Prefixes) {
			return g.Name, nil
		}
	}
	if requested != "" {
		g, ok := s.byName[requested]
		if !ok || g.Test {
			return "", fmt.Errorf("%w: unknown line group %q", ErrNoLine, requested)
		}
		if !g.accepts(num) {
			return "", fmt.Errorf("%w: line group %s does not dial %s", ErrNoLine, requested, to)
		}
		return g.Name, nil
	}
	for _, g := range s.groups {
		if !g.Test && g.accepts(num) {
			return g.Name, nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrNoLine, to)
}

// Accepts reports whether the line group named group exists and dials to
// (the test line only its own numbers, and its numbers nowhere else).
func (s *Scheduler) Accepts(group, to string) bool {
	g, ok := s.byName[group]
	if !ok {
		return false
	}
	num := strings.TrimPrefix(to, "+")
	for _, t := range s.groups {
		if t.Test && hasAnyPrefix(num, t.Prefixes) {
			return t == g
		}
	}
	return !g.Test && g.accepts(num)
}

func (g *Group) accepts(num string) bool {
	return len(g.Prefixes) == 0 || hasAnyPrefix(num, g.Prefixes)
}

func hasAnyPrefix(num string, ps []string) bool {
	for _, p := range ps {
		if strings.HasPrefix(num, strings.TrimPrefix(p, "+")) {
			return true
		}
	}
	return false
}

// SetDestinations sets the per-number limits (nil: OneAtATime). The function
// is called under the caller's lock for every job considered.
func (s *Scheduler) SetDestinations(d Destinations) {
	if d == nil {
		d = OneAtATime
	}
	s.limits = d
}

// InCalls returns how many calls to num (digits, an optional + is ignored)
// are up.
func (s *Scheduler) InCalls(num string) int { return s.numbers[strings.TrimPrefix(num, "+")] }

// Numbers returns the numbers with calls up and how many each has.
func (s *Scheduler) Numbers() map[string]int {
	out := make(map[string]int, len(s.numbers))
	for n, c := range s.numbers {
		out[n] = c
	}
	return out
}

// Add queues it; it replaces a queued item with the same JobID.
func (s *Scheduler) Add(it *Item) error {
	g, ok := s.byName[it.Group]
	if !ok {
		return fmt.Errorf("scheduler: unknown group %q", it.Group)
	}
	s.Remove(it.JobID)
	s.items[it.JobID] = it
	heap.Push(&g.ready, it)
	return nil
}

// Remove drops job id from the queue, if it is there.
func (s *Scheduler) Remove(id string) bool {
	it, ok := s.items[id]
	if !ok {
		return false
	}
	delete(s.items, id)
	heap.Remove(&s.byName[it.Group].ready, it.index)
	return true
}

// Queued returns how many items wait for a line.
func (s *Scheduler) Queued() int { return len(s.items) }

// Next assigns as many waiting items to free lines as possible and returns
// the assignments; the caller must call Release for each when its call ends.
// A job held for a fuller batch (batch_wait) is not assigned before its
// wait is over: wake is the earliest moment Next should be called again for
// such a job (zero: none is held).
func (s *Scheduler) Next(now time.Time) (out []Assignment, wake time.Time) {
	for _, g := range s.groups {
		var skipped []*Item
		held := map[string]bool{}
		for g.ready.Len() > 0 {
			idx := g.free()
			if idx < 0 {
				break
			}
			it := heap.Pop(&g.ready).(*Item)
			num := strings.TrimPrefix(it.To, "+")
			lim := s.limitsOf(num)
			if held[num] || s.numbers[num] >= lim.Concurrent {
				skipped = append(skipped, it)
				continue
			}
			batch := s.takeBatch(g, it, num, lim.Batch-1)
			// A job that never shares a call (no batch key) waits for no one.
			if until := it.Since.Add(lim.BatchWait); it.BatchKey != "" && len(batch)+1 < lim.Batch && until.After(now) {
				held[num] = true
				skipped = append(append(skipped, it), batch...)
				if wake.IsZero() || until.Before(wake) {
					wake = until
				}
				continue
			}
			for _, b := range append(batch, it) {
				delete(s.items, b.JobID)
			}
			s.numbers[num]++
			g.lines[idx] = line{jobID: it.JobID, to: num}
			out = append(out, Assignment{Item: it, Batch: batch, Group: g.Name, Line: idx})
		}
		for _, it := range skipped {
			heap.Push(&g.ready, it)
		}
	}
	return out, wake
}

func (s *Scheduler) limitsOf(num string) Limits {
	l := s.limits(num)
	l.Concurrent = max(l.Concurrent, 1)
	l.Batch = max(l.Batch, 1)
	return l
}

// takeBatch removes from g's queue up to n other items to num with lead's
// batch key, in queue order, and returns them.
func (s *Scheduler) takeBatch(g *Group, lead *Item, num string, n int) []*Item {
	if n <= 0 || lead.BatchKey == "" {
		return nil
	}
	var same []*Item
	for _, it := range g.ready {
		if it.BatchKey == lead.BatchKey && strings.TrimPrefix(it.To, "+") == num {
			same = append(same, it)
		}
	}
	slices.SortFunc(same, func(a, b *Item) int {
		if g.ready.less(a, b) {
			return -1
		}
		return 1
	})
	if len(same) > n {
		same = same[:n]
	}
	for _, it := range same {
		heap.Remove(&g.ready, it.index)
	}
	return same
}

func (g *Group) free() int {
	for i, l := range g.lines {
		if !l.busy && !l.down && l.jobID == "" {
			return i
		}
	}
	return -1
}

// Release frees the line a finished call used.
func (s *Scheduler) Release(group string, idx int) {
	g, ok := s.byName[group]
	if !ok || idx < 0 || idx >= len(g.lines) {
		return
	}
	l := &g.lines[idx]
	if l.jobID == "" {
		return
	}
	if s.numbers[l.to]--; s.numbers[l.to] <= 0 {
		delete(s.numbers, l.to)
	}
	l.jobID, l.to = "", ""
}

// Occupy marks a line as in a call recovered after a restart.
func (s *Scheduler) Occupy(group string, idx int, jobID, to string) error {
	g, ok := s.byName[group]
	if !ok || idx < 0 || idx >= len(g.lines) {
		return fmt.Errorf("scheduler: no line %s/%d", group, idx+1)
	}
	if g.lines[idx].jobID != "" {
		return fmt.Errorf("scheduler: line %s/%d already in use", group, idx+1)
	}
	num := strings.TrimPrefix(to, "+")
	g.lines[idx].jobID, g.lines[idx].to = jobID, num
	s.numbers[num]++
	return nil
}

// SetBusy takes a line out of service (busy) or puts it back. A line in a
// call finishes its call first.
func (s *Scheduler) SetBusy(group string, idx int, busy bool) error {
	g, ok := s.byName[group]
	if !ok || idx < 0 || idx >= len(g.lines) {
		return fmt.Errorf("scheduler: no line %s/%d", group, idx+1)
	}
	g.lines[idx].busy = busy
	return nil
}

// SetDown marks the last n lines of group as down (their channels cannot
// carry calls: a line card or span alarm) and the others as up; it reports
// whether any line changed. A line in a call finishes its call first.
func (s *Scheduler) SetDown(group string, n int) (bool, error) {
	g, ok := s.byName[group]
	if !ok {
		return false, fmt.Errorf("scheduler: no line group %s", group)
	}
	changed := false
	for i := range g.lines {
		down := i >= len(g.lines)-n
		if g.lines[i].down != down {
			g.lines[i].down, changed = down, true
		}
	}
	return changed, nil
}

// LineInfo describes one line.
type LineInfo struct {
	Group string
	Index int
	Busy  bool
	Down  bool
	JobID string
	Test  bool
}

// Lines returns every line in routing order.
func (s *Scheduler) Lines() []LineInfo {
	var out []LineInfo
	for _, g := range s.groups {
		for i, l := range g.lines {
			out = append(out, LineInfo{Group: g.Name, Index: i, Busy: l.busy, Down: l.down, JobID: l.jobID, Test: g.Test})
		}
	}
	return out
}

// queue is a heap of items: higher priority first, then earlier send_at,
// then earlier arrival.
type queue []*Item

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q.less(q[i], q[j]) }

func (queue) less(a, b *Item) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if !a.SendAt.Equal(b.SendAt) {
		return a.SendAt.Before(b.SendAt)
	}
	return a.Seq < b.Seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i]; q[i].index = i; q[j].index = j }
func (q *queue) Push(x any) {
	it := x.(*Item)
	it.index = len(*q)
	*q = append(*q, it)
}
func (q *queue) Pop() any {
	old := *q
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	*q = old[:n-1]
	it.index = -1
	return it
}
