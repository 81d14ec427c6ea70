package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestInvariantsRandomized drives the scheduler as the engine does — Next
// after every change: jobs arriving, calls ending, busy and no-answer
// retries coming back after their wait, lines taken out of service and put
// back, batch waits running out — over many generated job sets, and checks
// after every Next, against a model of its own:
//   - no call is started to a number that has its limit of calls up, no
//     call carries more than the number's batch size, a batch is jobs to
//     one number with one batch key, and only queued jobs go, on free lines;
//   - no line is left free while a job that may be dialled waits (one whose
//     number is under its limit and not held for a fuller batch), also
//     while other jobs wait out busy or no-answer retries;
//   - priority order: no job that may be dialled is left waiting behind a
//     lower-ranked job that got a line in the same round (rank: priority,
//     then send_at, then arrival), and a batch takes the best-ranked jobs
//     that may share its call;
//   - every job ends (nothing is starved), and the scheduler's own count of
//     calls per number agrees with the model's.
func TestInvariantsRandomized(t *testing.T) {
	rounds := 400
	if testing.Short() {
		rounds = 50
	}
	for seed := range uint64(rounds) {
		sim := newSim(t, seed)
		if err := sim.run(); err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, sim.describe())
		}
	}
}

// simJob is a job of the simulation.
type simJob struct {
	item     Item
	attempts int
	done     bool
}

// simCall is a call in progress on a line.
type simCall struct {
	group string
	line  int
	num   string
	jobs  []*simJob
	ends  time.Time
}

// sim is the model the scheduler is checked against.
type sim struct {
	t    *testing.T
	r    *rand.Rand
	s    *Scheduler
	seed uint64

	groups  map[string]int // channels per group
	limits  map[string]Limits
	jobs    []*simJob
	queued  map[string]*simJob // by job id
	calls   []*simCall
	outOfSv map[string]bool // "group/line" taken out of service
	inCall  map[string]bool // "group/line" in a call
	upTo    map[string]int  // calls up per number
	pending []simEvent      // arrivals and retries, by time
	now     time.Time
	wake    time.Time
	maxAtt  int
	log     []string
}

// simEvent is a job becoming ready at a time (arrival or end of a retry wait).
type simEvent struct {
	at  time.Time
	job *simJob
}

func newSim(t *testing.T, seed uint64) *sim {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	m := &sim{t: t, r: r, seed: seed, groups: map[string]int{}, limits: map[string]Limits{}, queued: map[string]*simJob{},
		outOfSv: map[string]bool{}, inCall: map[string]bool{}, upTo: map[string]int{}, now: time.Unix(1_000_000, 0), maxAtt: 1 + r.IntN(4)}
	var gs []*Group
	for i := range 1 + r.IntN(2) {
		name := fmt.Sprint("g", i)
		m.groups[name] = 1 + r.IntN(8)
		gs = append(gs, &Group{Name: name, Channels: m.groups[name]})
	}
	s, err := New(gs)
	if err != nil {
		t.Fatal(err)
	}
	m.s = s
	numbers := 1 + r.IntN(6)
	for i := range numbers {
		num := fmt.Sprint("10", i)
		l := Limits{Concurrent: 1 + r.IntN(4), Batch: 1 + r.IntN(4)}
		if r.IntN(3) == 0 {
			l.BatchWait = time.Duration(1+r.IntN(20)) * time.Second
		}
		m.limits[num] = l
	}
	s.SetDestinations(func(num string) Limits { return m.limits[num] })
	keys := []string{"fine", "fine", "standard", ""}
	sendAts := []time.Time{m.now, m.now.Add(-time.Minute), m.now.Add(-time.Hour)}
	for i := range 5 + r.IntN(40) {
		j := &simJob{item: Item{
			JobID:    fmt.Sprint("j", i),
			To:       fmt.Sprint("10", r.IntN(numbers)),
			Group:    fmt.Sprint("g", r.IntN(len(gs))),
			Priority: []int{0, 0, 0, 5, 9}[r.IntN(5)],
			SendAt:   sendAts[r.IntN(len(sendAts))],
			Seq:      uint64(i),
			BatchKey: keys[r.IntN(len(keys))],
		}}
		if r.IntN(4) == 0 {
			j.item.To = "+" + j.item.To // the scheduler counts +101 as 101
		}
		m.jobs = append(m.jobs, j)
		// Jobs come in bursts, several at a time.
		m.pending = append(m.pending, simEvent{at: m.now.Add(time.Duration(r.IntN(4)*15) * time.Second), job: j})
	}
	return m
}

func (m *sim) logf(format string, args ...any) {
	m.log = append(m.log, m.now.Format("15:04:05")+" "+fmt.Sprintf(format, args...))
}

func (m *sim) describe() string {
	out := fmt.Sprintf("groups %v, limits %v\n", m.groups, m.limits)
	if len(m.log) > 60 {
		out += "…\n"
		m.log = m.log[len(m.log)-60:]
	}
	return out + strings.Join(m.log, "\n")
}

func num(to string) string { return strings.TrimPrefix(to, "+") }

func lineKey(g string, i int) string { return fmt.Sprint(g, "/", i) }

// run plays events until every job has ended.
func (m *sim) run() error {
	for step := 0; ; step++ {
		if step > 100000 {
			return fmt.Errorf("no end after %d steps", step)
		}
		if err := m.next(); err != nil {
			return err
		}
		at, ok := m.nextEventTime()
		if !ok && len(m.queued) > 0 && len(m.outOfSv) > 0 {
			// Nothing else will happen: put the lines back in service.
			for k := range m.outOfSv {
				g, i := splitLine(k)
				m.s.SetBusy(g, i, false)
				delete(m.outOfSv, k)
			}
			m.logf("every line back in service")
			continue
		}
		if !ok {
			break
		}
		m.now = at
		m.apply()
	}
	for _, j := range m.jobs {
		if !j.done {
			return fmt.Errorf("job %s never ended (%d attempts; queued %v)", j.item.JobID, j.attempts, m.queued[j.item.JobID] != nil)
		}
	}
	if m.s.Queued() != 0 || len(m.s.Numbers()) != 0 {
		return fmt.Errorf("after the last call: %d queued, calls up %v", m.s.Queued(), m.s.Numbers())
	}
	return nil
}

// nextEventTime is the earliest of a call's end, a job becoming ready, a
// batch wait running out and (sometimes) a line changing service.
func (m *sim) nextEventTime() (time.Time, bool) {
	var at time.Time
	take := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	for _, c := range m.calls {
		take(c.ends)
	}
	for _, e := range m.pending {
		take(e.at)
	}
	if !m.wake.IsZero() {
		take(m.wake)
	}
	return at, !at.IsZero()
}

// apply ends the calls due now (each job delivered, or busy/no answer and
// back after a retry wait, or failed after its attempts), makes due jobs
// ready, and now and then takes a line out of service or puts it back.
func (m *sim) apply() {
	var still []*simCall
	for _, c := range m.calls {
		if c.ends.After(m.now) {
			still = append(still, c)
			continue
		}
		m.s.Release(c.group, c.line)
		delete(m.inCall, lineKey(c.group, c.line))
		m.upTo[c.num]--
		outcome := []string{"delivered", "busy", "no answer"}[m.r.IntN(3)]
		for _, j := range c.jobs {
			if outcome == "delivered" || j.attempts >= m.maxAtt {
				j.done = true
				continue
			}
			wait := time.Duration(1+m.r.IntN(90)) * time.Second
			m.pending = append(m.pending, simEvent{at: m.now.Add(wait), job: j})
		}
		m.logf("call on %s/%d to %s ends: %s", c.group, c.line, c.num, outcome)
	}
	m.calls = still
	var later []simEvent
	for _, e := range m.pending {
		if e.at.After(m.now) {
			later = append(later, e)
			continue
		}
		e.job.item.Since = m.now
		it := e.job.item // the engine hands a fresh item each time
		if err := m.s.Add(&it); err != nil {
			m.t.Fatal(err)
		}
		m.queued[it.JobID] = e.job
		m.logf("ready %s to %s (prio %d, key %q)", it.JobID, it.To, it.Priority, it.BatchKey)
	}
	m.pending = later
	if m.r.IntN(5) == 0 {
		g := fmt.Sprint("g", m.r.IntN(len(m.groups)))
		i := m.r.IntN(m.groups[g])
		k := lineKey(g, i)
		out := !m.outOfSv[k]
		if !out || m.r.IntN(3) == 0 { // mostly in service
			m.outOfSv[k] = out
			if err := m.s.SetBusy(g, i, out); err != nil {
				m.t.Fatal(err)
			}
			m.logf("line %s out of service: %v", k, out)
		}
	}
	if !m.wake.IsZero() && !m.wake.After(m.now) {
		m.wake = time.Time{}
	}
}

func splitLine(k string) (string, int) {
	g, idx, _ := strings.Cut(k, "/")
	var i int
	fmt.Sscan(idx, &i)
	return g, i
}

// next runs the scheduler and checks what it did.
func (m *sim) next() error {
	as, wake := m.s.Next(m.now)
	if !wake.IsZero() {
		if !wake.After(m.now) {
			return fmt.Errorf("wake %v is not after now %v", wake, m.now)
		}
		if m.wake.IsZero() || wake.Before(m.wake) {
			m.wake = wake
		}
	}
	for _, a := range as {
		if err := m.checkAssignment(a); err != nil {
			return err
		}
	}
	if err := m.checkNoIdleLine(); err != nil {
		return err
	}
	if err := m.checkOrder(as); err != nil {
		return err
	}
	for n, c := range m.upTo {
		if got := m.s.InCalls(n); got != c {
			return fmt.Errorf("scheduler counts %d calls to %s, model %d", got, n, c)
		}
	}
	return nil
}

// checkAssignment checks one call the scheduler started and records it.
func (m *sim) checkAssignment(a Assignment) error {
	k := lineKey(a.Group, a.Line)
	if m.inCall[k] || m.outOfSv[k] {
		return fmt.Errorf("call put on line %s that is not free (in call %v, out of service %v)", k, m.inCall[k], m.outOfSv[k])
	}
	n := num(a.Item.To)
	lim := m.limits[n]
	if m.upTo[n] >= lim.Concurrent {
		return fmt.Errorf("a call to %s with %d of %d calls up", n, m.upTo[n], lim.Concurrent)
	}
	items := a.Items()
	if len(items) > lim.Batch {
		return fmt.Errorf("a call to %s carries %d jobs, batch size %d", n, len(items), lim.Batch)
	}
	c := &simCall{group: a.Group, line: a.Line, num: n, ends: m.now.Add(time.Duration(5+m.r.IntN(60)) * time.Second)}
	var names []string
	for _, it := range items {
		j := m.queued[it.JobID]
		if j == nil {
			return fmt.Errorf("job %s assigned but not queued", it.JobID)
		}
		if num(it.To) != n || it.Group != a.Group {
			return fmt.Errorf("job %s to %s in %s shares a call to %s on %s", it.JobID, it.To, it.Group, n, a.Group)
		}
		if len(items) > 1 && (it.BatchKey == "" || it.BatchKey != a.Item.BatchKey) {
			return fmt.Errorf("job %s (key %q) shares a call led by key %q", it.JobID, it.BatchKey, a.Item.BatchKey)
		}
		delete(m.queued, it.JobID)
		j.attempts++
		c.jobs = append(c.jobs, j)
		names = append(names, it.JobID)
	}
	if lim.BatchWait > 0 && a.Item.BatchKey != "" && len(items) < lim.Batch && a.Item.Since.Add(lim.BatchWait).After(m.now) {
		return fmt.Errorf("a call to %s with %d of %d jobs went before its batch wait was over", n, len(items), lim.Batch)
	}
	m.inCall[k] = true
	m.upTo[n]++
	m.calls = append(m.calls, c)
	m.logf("call on %s to %s: %v", k, n, names)
	return nil
}

// dialable reports whether a queued job may be dialled now: its number is
// under its limit and it is not held for a fuller batch. A number's best
// ranked job decides whether the number is held.
func (m *sim) dialable(j *simJob) bool {
	n := num(j.item.To)
	lim := m.limits[n]
	if m.upTo[n] >= lim.Concurrent {
		return false
	}
	lead := m.bestTo(j.item.Group, n)
	if lim.BatchWait <= 0 || lead.item.BatchKey == "" || lead.item.Since.Add(lim.BatchWait).Compare(m.now) <= 0 {
		return true
	}
	mates := 0
	for _, o := range m.queued {
		if o.item.Group == lead.item.Group && num(o.item.To) == n && o.item.BatchKey == lead.item.BatchKey {
			mates++
		}
	}
	return mates >= lim.Batch
}

// bestTo is the best-ranked queued job of group g to number n.
func (m *sim) bestTo(g, n string) *simJob {
	var best *simJob
	for _, o := range m.queued {
		if o.item.Group == g && num(o.item.To) == n && (best == nil || ranksBefore(&o.item, &best.item)) {
			best = o
		}
	}
	return best
}

// ranksBefore is the documented order: priority 9 first, then earlier
// send_at, then earlier arrival.
func ranksBefore(a, b *Item) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if !a.SendAt.Equal(b.SendAt) {
		return a.SendAt.Before(b.SendAt)
	}
	return a.Seq < b.Seq
}

// checkNoIdleLine: a group with a free line has no job that may be dialled.
func (m *sim) checkNoIdleLine() error {
	for g, n := range m.groups {
		free := -1
		for i := range n {
			if k := lineKey(g, i); !m.inCall[k] && !m.outOfSv[k] {
				free = i
				break
			}
		}
		if free < 0 {
			continue
		}
		for _, j := range m.queued {
			if j.item.Group == g && m.dialable(j) {
				return fmt.Errorf("line %s/%d left free while %s to %s may be dialled (%d of %d calls up)",
					g, free, j.item.JobID, j.item.To, m.upTo[num(j.item.To)], m.limits[num(j.item.To)].Concurrent)
			}
		}
	}
	return nil
}

// checkOrder: no job that may still be dialled ranks before a job that led
// a call in this round (in its group), and a batch took the best-ranked of
// the jobs that could share its call.
func (m *sim) checkOrder(as []Assignment) error {
	for _, a := range as {
		for _, j := range m.queued {
			if j.item.Group != a.Group {
				continue
			}
			if m.dialable(j) && ranksBefore(&j.item, a.Item) {
				return fmt.Errorf("%s (prio %d) still waits, may be dialled, and ranks before %s (prio %d), which got a line",
					j.item.JobID, j.item.Priority, a.Item.JobID, a.Item.Priority)
			}
			if len(a.Batch) == 0 || num(j.item.To) != num(a.Item.To) || j.item.BatchKey != a.Item.BatchKey {
				continue
			}
			if slices.ContainsFunc(a.Batch, func(b *Item) bool { return ranksBefore(&j.item, b) }) {
				return fmt.Errorf("%s was left out of the call to %s for a lower-ranked job", j.item.JobID, a.Item.To)
			}
		}
	}
	return nil
}

// A job that never shares a call (no batch key: a call job) goes at once to
// a number with a batch wait; there is no batch for it to wait for.
func TestNoBatchKeyNeverWaits(t *testing.T) {
	s := wide(t, 2)
	s.SetDestinations(limitsFor(map[string]Limits{"108": {Concurrent: 1, Batch: 5, BatchWait: time.Minute}}))
	t0 := time.Unix(5000, 0)
	addJob(t, s, "call", "108", 0, 1, "", t0)
	got, wake := s.Next(t0)
	if len(got) != 1 || got[0].Item.JobID != "call" || !wake.IsZero() {
		t.Fatalf("assigned %v, wake %v; want the call job at once", ids(got), wake)
	}
}
