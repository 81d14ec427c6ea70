// Package diallertest is the conformance suite every dialler.Dialler must
// pass. An implementation's tests fill in a Harness and call Run; each check
// is also a function returning what it found wrong (Checks), so a test can
// prove that a broken dialler fails it.
//
// Contract clause (package dialler) and the check that holds a dialler to it:
//
//   - Every Dial that returns nil is followed by exactly one Result for its
//     AttemptID: "deliver" (one Result, and none more within Grace),
//     "concurrent" (Concurrency goroutines dial at once; each attempt gets
//     exactly one Result carrying its own AttemptID, and no Result names an
//     attempt that was not dialled).
//   - A Dial that returns an error is followed by nothing: "refused" (a
//     request failing Request.Check, the Harness's Refused requests and a
//     second Dial of an AttemptID in progress get no Result, and no Progress
//     after Dial returned).
//   - Progress only before Result: every check (Sink records a Progress
//     after its attempt's Result as a violation).
//   - Hangup ends an attempt in progress and its Result still follows,
//     exactly once: "hangup".
//   - Hangup of an attempt the dialler does not have in progress (never
//     dialled, or already ended) is dialler.ErrUnknownAttempt: "hangup
//     unknown".
//   - Reconcile after a restart (a new instance over the same line) reports
//     only attempts still up — never one that ended, nor one never dialled —
//     and a Result follows on the new instance for each it reports; an
//     attempt it does not report is unknown to the new instance's Hangup:
//     "reconcile after restart". A line whose calls survive a restart
//     (Harness.KeepsCalls) must report the live attempt.
package diallertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/job"
)

// Open returns a new dialler instance over one line, reporting to sink.
// Opening again over the same line is a restart of faxbox: the instances
// opened before are never called again (their process is gone), the calls
// they placed go on wherever the line keeps them.
type Open func(sink dialler.Sink) dialler.Dialler

// Harness is what an implementation gives the suite.
type Harness struct {
	// Line starts a fresh line for one check (cleaned up through t) and
	// returns how to open dialler instances on it.
	Line func(t testing.TB) Open
	// Deliver returns a request with attempt id id that ends by itself,
	// well within Timeout.
	Deliver func(id string) dialler.Request
	// Long returns a request with attempt id id that stays up (answered,
	// ideally sending) long enough to be hung up and to outlive a restart.
	Long func(id string) dialler.Request
	// Refused are requests (each given its attempt id) that Dial must
	// refuse, beyond the ones every dialler refuses, which the suite builds.
	Refused []func(id string) dialler.Request
	// KeepsCalls: the line's calls outlive the dialler instance, so
	// Reconcile on a restarted dialler must report a live attempt.
	KeepsCalls bool
	// Timeout bounds the wait for one Result (default 30 s).
	Timeout time.Duration
	// Grace is how long the suite waits after a Result, or after a refused
	// Dial, for a report that must not come (default 300 ms).
	Grace time.Duration
	// Concurrency is the number of goroutines dialling at once in
	// "concurrent" (default 16).
	Concurrency int
}

func (h Harness) timeout() time.Duration {
	if h.Timeout <= 0 {
		return 30 * time.Second
	}
	return h.Timeout
}

func (h Harness) grace() { time.Sleep(h.graceD()) }

func (h Harness) graceD() time.Duration {
	if h.Grace <= 0 {
		return 300 * time.Millisecond
	}
	return h.Grace
}

func (h Harness) ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout())
	t.Cleanup(cancel)
	return ctx
}

// Check is one conformance check: Run returns what it found wrong (nil when
// the dialler conforms).
type Check struct {
	Name string
	Run  func(t testing.TB, h Harness) error
}

// Checks returns the suite's checks, in the order Run runs them.
func Checks() []Check {
	return []Check{
		{"deliver", checkDeliver},
		{"refused", checkRefused},
		{"hangup", checkHangup},
		{"hangup unknown", checkHangupUnknown},
		{"reconcile after restart", checkReconcile},
		{"concurrent", checkConcurrent},
	}
}

// Run runs every check as a subtest of t.
func Run(t *testing.T, h Harness) {
	for _, c := range Checks() {
		t.Run(c.Name, func(t *testing.T) {
			if err := c.Run(t, h); err != nil {
				t.Error(err)
			}
		})
	}
}

// once reports unless attempt id has exactly one Result, carrying its id.
func once(s *Sink, id string) error {
	rs := s.Results(id)
	if len(rs) != 1 {
		return fmt.Errorf("attempt %s: %d results, want exactly 1: %+v", id, len(rs), rs)
	}
	return nil
}

// only reports every attempt with a report in s that is not in ids.
func only(s *Sink, ids ...string) error {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var errs []error
	for id := range s.Attempts() {
		if !want[id] {
			errs = append(errs, fmt.Errorf("a report for attempt %q, which was not dialled here (results %+v)", id, s.Results(id)))
		}
	}
	return errors.Join(errs...)
}

// waitUp waits up to d for a Progress of attempt id past dialling.
func waitUp(s *Sink, id string, d time.Duration) {
	s.WaitFor(d, func(s *Sink) bool {
		for _, p := range s.Progresses(id) {
			if p.State != dialler.StateDialing {
				return true
			}
		}
		return false
	})
}

func checkDeliver(t testing.TB, h Harness) error {
	s := NewSink()
	d := h.Line(t)(s)
	r := h.Deliver("at_deliver")
	if err := d.Dial(h.ctx(t), r); err != nil {
		return fmt.Errorf("dial %s: %w", r.AttemptID, err)
	}
	if err := s.WaitResults(h.timeout(), r.AttemptID); err != nil {
		return err
	}
	h.grace()
	return errors.Join(once(s, r.AttemptID), only(s, r.AttemptID), s.Err())
}

// mustRefuse builds the requests every dialler refuses: a fax that is also
// a call, and neither.
func mustRefuse(h Harness) []dialler.Request {
	both := h.Deliver("at_refused_both")
	if both.Fax == nil {
		both.Fax = &dialler.FaxSpec{Pages: 1}
	}
	if both.Call == nil {
		both.Call = &dialler.CallSpec{Kind: job.CallMessage, Repeat: 1}
	}
	neither := h.Deliver("at_refused_neither")
	neither.Fax, neither.Call = nil, nil
	rs := []dialler.Request{both, neither}
	for i, f := range h.Refused {
		rs = append(rs, f(fmt.Sprintf("at_refused_%d", i)))
	}
	return rs
}

func checkRefused(t testing.TB, h Harness) error {
	s := NewSink()
	d := h.Line(t)(s)
	ctx := h.ctx(t)
	var errs []error
	progress := map[string]int{}
	for _, r := range mustRefuse(h) {
		if err := d.Dial(ctx, r); err == nil {
			errs = append(errs, fmt.Errorf("dial %s, a request to refuse (fax %v, call %v, to %q) returned nil", r.AttemptID, r.Fax != nil, r.Call != nil, r.To))
			continue
		}
		progress[r.AttemptID] = len(s.Progresses(r.AttemptID))
	}
	dup := h.Long("at_refused_dup")
	if err := d.Dial(ctx, dup); err != nil {
		return errors.Join(append(errs, fmt.Errorf("dial %s: %w", dup.AttemptID, err))...)
	}
	if err := d.Dial(ctx, dup); err == nil {
		errs = append(errs, fmt.Errorf("a second Dial of attempt %s while it is in progress returned nil", dup.AttemptID))
	}
	h.grace()
	for id, n := range progress {
		if rs := s.Results(id); len(rs) > 0 {
			errs = append(errs, fmt.Errorf("refused attempt %s: results %+v", id, rs))
		}
		if ps := s.Progresses(id); len(ps) > n {
			errs = append(errs, fmt.Errorf("refused attempt %s: progress after Dial returned its error: %+v", id, ps[n:]))
		}
	}
	if err := d.Hangup(ctx, dup.AttemptID); err != nil {
		errs = append(errs, fmt.Errorf("hangup %s: %w", dup.AttemptID, err))
	}
	if err := s.WaitResults(h.timeout(), dup.AttemptID); err != nil {
		return errors.Join(append(errs, err)...)
	}
	h.grace()
	return errors.Join(append(errs, once(s, dup.AttemptID), s.Err())...)
}

func checkHangup(t testing.TB, h Harness) error {
	s := NewSink()
	d := h.Line(t)(s)
	ctx := h.ctx(t)
	r := h.Long("at_hangup")
	if err := d.Dial(ctx, r); err != nil {
		return fmt.Errorf("dial %s: %w", r.AttemptID, err)
	}
	waitUp(s, r.AttemptID, 2*time.Second)
	if rs := s.Results(r.AttemptID); len(rs) > 0 {
		return fmt.Errorf("the long attempt %s ended before it was hung up: %+v", r.AttemptID, rs)
	}
	if err := d.Hangup(ctx, r.AttemptID); err != nil {
		return fmt.Errorf("hangup %s in progress: %w", r.AttemptID, err)
	}
	if err := s.WaitResults(h.timeout(), r.AttemptID); err != nil {
		return fmt.Errorf("after Hangup: %w", err)
	}
	h.grace()
	return errors.Join(once(s, r.AttemptID), only(s, r.AttemptID), s.Err())
}

func checkHangupUnknown(t testing.TB, h Harness) error {
	s := NewSink()
	d := h.Line(t)(s)
	ctx := h.ctx(t)
	var errs []error
	if err := d.Hangup(ctx, "at_never_dialled"); !errors.Is(err, dialler.ErrUnknownAttempt) {
		errs = append(errs, fmt.Errorf("hangup of an attempt never dialled: %v, want ErrUnknownAttempt", err))
	}
	r := h.Deliver("at_unknown_ended")
	if err := d.Dial(ctx, r); err != nil {
		return errors.Join(append(errs, fmt.Errorf("dial %s: %w", r.AttemptID, err))...)
	}
	if err := s.WaitResults(h.timeout(), r.AttemptID); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := d.Hangup(ctx, r.AttemptID); !errors.Is(err, dialler.ErrUnknownAttempt) {
		errs = append(errs, fmt.Errorf("hangup of an attempt that ended: %v, want ErrUnknownAttempt", err))
	}
	h.grace()
	return errors.Join(append(errs, once(s, r.AttemptID), only(s, r.AttemptID), s.Err())...)
}

// asRebuilt is r as the engine rebuilds it from the job record for
// Reconcile: without the TIFF.
func asRebuilt(r dialler.Request) dialler.Request {
	if r.Fax != nil {
		f := *r.Fax
		f.TIFF = ""
		r.Fax = &f
	}
	return r
}

func checkReconcile(t testing.TB, h Harness) error {
	open := h.Line(t)
	s1 := NewSink()
	d1 := open(s1)
	ctx := h.ctx(t)
	ended, live := h.Deliver("at_rc_ended"), h.Long("at_rc_live")
	for _, r := range []dialler.Request{ended, live} {
		if err := d1.Dial(ctx, r); err != nil {
			return fmt.Errorf("dial %s: %w", r.AttemptID, err)
		}
	}
	if err := s1.WaitResults(h.timeout(), ended.AttemptID); err != nil {
		return err
	}
	waitUp(s1, live.AttemptID, 2*time.Second)
	if rs := s1.Results(live.AttemptID); len(rs) > 0 {
		return fmt.Errorf("the long attempt %s ended before the restart: %+v", live.AttemptID, rs)
	}
	s2 := NewSink()
	d2 := open(s2)
	never := h.Deliver("at_rc_never")
	alive, err := d2.Reconcile(ctx, []dialler.Request{asRebuilt(ended), asRebuilt(live), asRebuilt(never)})
	if err != nil {
		return fmt.Errorf("reconcile after a restart: %w", err)
	}
	errs := []error{s1.Err()}
	var adopted []string
	for id, up := range alive {
		switch {
		case !up:
		case id != live.AttemptID:
			errs = append(errs, fmt.Errorf("reconcile reports %s up; only %s is", id, live.AttemptID))
		default:
			adopted = append(adopted, id)
		}
	}
	if h.KeepsCalls && !alive[live.AttemptID] {
		errs = append(errs, fmt.Errorf("reconcile does not report %s, which is still up (alive %v)", live.AttemptID, alive))
	}
	errs = append(errs, endAdopted(ctx, h, d2, s2, live.AttemptID, adopted))
	return errors.Join(errs...)
}

// endAdopted hangs up on the restarted dialler d2 the live attempt: when it
// was adopted its Result must follow on s2 exactly once, otherwise d2 must
// not know it.
func endAdopted(ctx context.Context, h Harness, d2 dialler.Dialler, s2 *Sink, live string, adopted []string) error {
	err := d2.Hangup(ctx, live)
	if len(adopted) == 0 {
		h.grace()
		if !errors.Is(err, dialler.ErrUnknownAttempt) {
			return errors.Join(fmt.Errorf("hangup %s, an attempt the restarted dialler did not adopt: %v, want ErrUnknownAttempt", live, err), only(s2), s2.Err())
		}
		return errors.Join(only(s2), s2.Err())
	}
	if err != nil {
		return fmt.Errorf("hangup %s, an adopted attempt: %w", live, err)
	}
	if err := s2.WaitResults(h.timeout(), adopted...); err != nil {
		return fmt.Errorf("adopted after the restart: %w", err)
	}
	h.grace()
	return errors.Join(once(s2, live), only(s2, adopted...), s2.Err())
}

func checkConcurrent(t testing.TB, h Harness) error {
	n := h.Concurrency
	if n <= 0 {
		n = 16
	}
	s := NewSink()
	d := h.Line(t)(s)
	ctx := h.ctx(t)
	ids := make([]string, n)
	dialErrs := make([]error, n)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = fmt.Sprintf("at_cc_%02d", i)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := d.Dial(ctx, h.Deliver(ids[i])); err != nil {
				dialErrs[i] = fmt.Errorf("dial %s: %w", ids[i], err)
			}
		}(i)
	}
	wg.Wait()
	if err := errors.Join(dialErrs...); err != nil {
		return err
	}
	errs := []error{s.WaitResults(h.timeout(), ids...)}
	h.grace()
	for _, id := range ids {
		errs = append(errs, once(s, id))
	}
	return errors.Join(append(errs, only(s, ids...), s.Err())...)
}
