// Package calendar turns calendar events into calls. The box subscribes
// to the CalDAV calendars and plain iCalendar (.ics) URLs of its config's
// calendars key, polls each at its interval (reading only what changed:
// the file's ETag, a collection's ctag or sync token, each object's ETag)
// and plans a message call for every occurrence of an event that names a
// number — LOCATION:tel:<number> or an X-FAXBOX-CALL:<number> property —
// at the event's earliest VALARM trigger (its start when it has none),
// speaking its SUMMARY.
//
// Recurring events (RRULE, RDATE, EXDATE, overrides by RECURRENCE-ID,
// cancelled occurrences) are expanded in the event's zone, or the box's
// for floating times and dates. A poll replaces a calendar's plan, so an
// event moved or deleted moves or drops its pending call. Each call is
// placed once: the key (UID, recurrence id, call time) of every call
// placed is stored in the box's state, and the job's client_ref is derived
// from it, so a restart never calls an event twice. A call due while the
// box was off, or before a poll saw its event, is placed late by at most
// the poll interval plus Late; older ones are skipped and counted as
// missed. Calls before a calendar's first sync are never placed.
//
// Everything an event says is checked as POST /v1/calls checks it (the
// box's Submit): numbers of 3 to 20 digits not on calls.deny_prefixes, the
// SUMMARY cleaned of control characters and cut to 500 characters.
package calendar

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
)

// Late is how much later than its time, beyond the poll interval, a call
// is still placed.
const Late = 15 * time.Minute

// DefaultHorizon is how far ahead a calendar's calls are planned.
const DefaultHorizon = 48 * time.Hour

// StateName is the name of the service's state in the box's store.
const StateName = "calendar"

// retryWait is the wait before a submission that failed is tried again.
const retryWait = time.Minute

// Request is a message call the calendar asks the box to place.
type Request struct {
	To, Say string
	// ClientRef is the call's Ref: the box stores it with the job and
	// refuses a second job with it.
	ClientRef string
}

// SubmitFunc places a call through the box's submission path; dup reports
// that a job with the request's client_ref exists already (nothing new
// was placed). A refused request is an error.
type SubmitFunc func(Request) (jobID string, dup bool, err error)

// State keeps the service's state across restarts (store.DB's).
type State interface {
	PutState(name string, v any) error
	GetState(name string, v any) (bool, error)
}

// Config is what the service needs.
type Config struct {
	Calendars []config.Calendar
	// Loc is the box's time zone (nil: time.Local).
	Loc *time.Location
	// Deny are calls.deny_prefixes.
	Deny   []string
	Clock  clock.Clock
	State  State
	Submit SubmitFunc
	// Transport is the calendars' HTTP transport (nil: the default).
	Transport http.RoundTripper
	Log       *slog.Logger
	// Horizon is how far ahead calls are planned (0: DefaultHorizon).
	Horizon time.Duration
	// Timeout bounds one poll of one calendar (0: a minute).
	Timeout time.Duration
}

// Status is one calendar's state, as /v1/status shows it.
type Status struct {
	URL         string     `json:"url"`
	Kind        Kind       `json:"kind"`
	LastSync    *time.Time `json:"last_sync"`
	LastAttempt *time.Time `json:"last_attempt"`
	Error       string     `json:"error,omitempty"`
	Events      int        `json:"events"`
	Pending     int        `json:"pending_calls"`
	NextCall    *time.Time `json:"next_call,omitempty"`
	Placed      int        `json:"calls_placed"`
	Missed      int        `json:"calls_missed"`
	// Refused are events that name a number but cannot be called (at most
	// 20).
	Refused []Problem `json:"refused,omitempty"`
}

// stateDoc is what is stored under StateName.
type stateDoc struct {
	// Since is each calendar's first sync (by URL): no call before it.
	Since map[string]time.Time `json:"since"`
	// Done are the calls placed or missed, by key, until they are older
	// than any calendar's late window.
	Done map[string]done `json:"done"`
}

type done struct {
	At     time.Time `json:"at"`
	Job    string    `json:"job,omitempty"`
	Missed bool      `json:"missed,omitempty"`
}

// sub is one subscribed calendar.
type sub struct {
	cfg    config.Calendar
	src    *source
	calls  []Call
	status Status
	timer  clock.Timer
}

// late is how long after its time a call of s is still placed.
func (s *sub) late() time.Duration { return s.cfg.Every() + Late }

// Service polls the calendars and places their calls.
type Service struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	polls  sync.WaitGroup

	mu     sync.Mutex
	subs   []*sub
	st     stateDoc
	fire   clock.Timer
	closed bool
}

// New builds the service; Start starts it.
func New(cfg Config) *Service {
	if cfg.Loc == nil {
		cfg.Loc = time.Local
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = DefaultHorizon
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	cfg.Log = cfg.Log.With("component", "calendar")
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, ctx: ctx, cancel: cancel, st: stateDoc{Since: map[string]time.Time{}, Done: map[string]done{}}}
	for _, c := range cfg.Calendars {
		s.subs = append(s.subs, &sub{cfg: c, src: newSource(c, cfg.Transport), status: Status{URL: redact(c.URL)}})
	}
	return s
}

// Start reads the stored state and polls every calendar at once, then at
// its interval. A state that cannot be read stops the start: calling
// events again is worse than not starting the calendars.
func (s *Service) Start() error {
	var st stateDoc
	ok, err := s.cfg.State.GetState(StateName, &st)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		if st.Since != nil {
			s.st.Since = st.Since
		}
		if st.Done != nil {
			s.st.Done = st.Done
		}
	}
	for _, sb := range s.subs {
		s.schedulePoll(sb, 0)
	}
	return nil
}

// Close stops polling and calling and waits for a poll under way.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	for _, sb := range s.subs {
		if sb.timer != nil && sb.timer.Stop() {
			s.polls.Done() // a poll that never runs
		}
	}
	if s.fire != nil {
		s.fire.Stop()
	}
	s.mu.Unlock()
	s.cancel()
	s.polls.Wait()
}

// Statuses reports every calendar's state.
func (s *Service) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now()
	out := make([]Status, 0, len(s.subs))
	for _, sb := range s.subs {
		st := sb.status
		st.Pending, st.NextCall = 0, nil
		for _, c := range sb.calls {
			if _, ok := s.st.Done[c.Key]; ok || c.At.Before(now.Add(-sb.late())) || c.At.Before(s.st.Since[sb.cfg.URL]) {
				continue
			}
			st.Pending++
			if st.NextCall == nil {
				at := c.At
				st.NextCall = &at
			}
		}
		out = append(out, st)
	}
	return out
}

// schedulePoll polls sb after d; s.mu is held.
func (s *Service) schedulePoll(sb *sub, d time.Duration) {
	if s.closed {
		return
	}
	s.polls.Add(1)
	sb.timer = s.cfg.Clock.AfterFunc(d, func() {
		defer s.polls.Done()
		s.poll(sb)
	})
}

// poll syncs one calendar and replaces its plan; on any error the last
// good plan stays.
func (s *Service) poll(sb *sub) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	cals, _, err := sb.src.sync(ctx)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	defer s.schedulePoll(sb, sb.cfg.Every())
	now := s.cfg.Clock.Now()
	sb.status.LastAttempt = &now
	sb.status.Kind = sb.src.kind
	if err == nil {
		x := Expander{Loc: s.cfg.Loc, Deny: s.cfg.Deny, From: now.Add(-sb.late()), To: now.Add(s.cfg.Horizon)}
		var plan Plan
		plan, err = x.Expand(cals)
		if err == nil {
			s.replan(sb, plan, now)
		}
	}
	if err != nil {
		sb.status.Error = clean(err.Error(), 500)
		s.cfg.Log.Warn("calendar: poll failed; the last good copy stays in use", "calendar", sb.status.URL, "err", sb.status.Error)
		return
	}
	sb.status.Error = ""
	s.armFire(now, false)
}

// replan takes a successful poll's plan; s.mu is held.
func (s *Service) replan(sb *sub, plan Plan, now time.Time) {
	sb.calls = plan.Calls
	sb.status.LastSync = &now
	sb.status.Events = plan.Events
	refused := append(sb.src.problems(), plan.Problems...)
	if len(refused) > 20 {
		refused = refused[:20]
	}
	seen := map[Problem]bool{}
	for _, p := range sb.status.Refused {
		seen[p] = true
	}
	for _, p := range plan.Problems {
		if !seen[p] { // each refusal is logged once, not at every poll
			s.cfg.Log.Info("calendar: event refused", "calendar", sb.status.URL, "uid", p.UID, "reason", p.Reason)
		}
	}
	sb.status.Refused = refused
	if _, ok := s.st.Since[sb.cfg.URL]; !ok {
		s.st.Since[sb.cfg.URL] = now
		s.save()
	}
}

// armFire sets the timer for the next call due: at once for a call
// overdue, unless retry (its submission failed just now: then in
// retryWait). s.mu is held.
func (s *Service) armFire(now time.Time, retry bool) {
	if s.closed {
		return
	}
	var next time.Time
	if retry {
		next = now.Add(retryWait)
	}
	for _, sb := range s.subs {
		for _, c := range sb.calls {
			if _, ok := s.st.Done[c.Key]; ok || c.At.Before(s.st.Since[sb.cfg.URL]) || (retry && !c.At.After(now)) {
				continue
			}
			if next.IsZero() || c.At.Before(next) {
				next = c.At
			}
			break // calls are sorted by At
		}
	}
	if s.fire != nil {
		s.fire.Stop()
		s.fire = nil
	}
	if !next.IsZero() {
		s.fire = s.cfg.Clock.AfterFunc(max(next.Sub(now), 0), s.placeDue)
	}
}

// placeDue places every call that is due and not placed yet, in time
// order, and arms the timer for the next one.
func (s *Service) placeDue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := s.cfg.Clock.Now()
	retry := false
	for _, sb := range s.subs {
		for _, c := range sb.calls {
			if c.At.After(now) {
				break
			}
			retry = s.place(sb, c, now) || retry
		}
	}
	s.prune(now)
	s.save()
	s.armFire(now, retry)
}

// place places call c of sb unless it was placed, lies before the
// calendar's first sync or is too late; it reports a failure worth
// trying again. s.mu is held.
func (s *Service) place(sb *sub, c Call, now time.Time) (retry bool) {
	if _, ok := s.st.Done[c.Key]; ok || c.At.Before(s.st.Since[sb.cfg.URL]) {
		return false
	}
	log := s.cfg.Log.With("calendar", sb.status.URL, "uid", c.UID, "at", c.At, "to", c.To)
	if c.At.Before(now.Add(-sb.late())) {
		s.st.Done[c.Key] = done{At: c.At, Missed: true}
		sb.status.Missed++
		log.Warn("calendar: call missed: its time passed while the box was off or before a poll saw it")
		return false
	}
	id, dup, err := s.cfg.Submit(Request{To: c.To, Say: c.Say, ClientRef: c.Ref()})
	if err != nil {
		sb.status.Error = clean("placing a call to "+c.To+": "+err.Error(), 500)
		log.Warn("calendar: call not placed", "err", err)
		return true
	}
	s.st.Done[c.Key] = done{At: c.At, Job: id}
	if !dup {
		sb.status.Placed++
		log.Info("calendar: call placed", "job", id)
	}
	return false
}

// prune forgets calls older than every calendar's late window; s.mu is
// held.
func (s *Service) prune(now time.Time) {
	keep := Late
	for _, sb := range s.subs {
		keep = max(keep, sb.late())
	}
	for k, d := range s.st.Done {
		if d.At.Before(now.Add(-keep - time.Hour)) {
			delete(s.st.Done, k)
		}
	}
}

// save stores the state; s.mu is held. A failure is logged and shown:
// the jobs' client_ref still keeps a call from being placed twice.
func (s *Service) save() {
	if err := s.cfg.State.PutState(StateName, s.st); err != nil {
		s.cfg.Log.Error("calendar: state not saved", "err", err)
		for _, sb := range s.subs {
			sb.status.Error = clean(err.Error(), 500)
		}
	}
}
