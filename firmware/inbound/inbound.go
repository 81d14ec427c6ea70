// Package inbound is the inbound callback service: a caller rings the
// callback number, the box rejects the call and, if the caller id is on the
// allow list and under its hourly rate limit, calls back (a call job of
// kind "callback", recorded and reported like every job). The PIN and the
// destination the caller then keys in are checked by the Asterisk dialler,
// with AllowDest deciding which destinations may be connected.
//
// Why AMI and not FastAGI: faxbox already holds one least-privilege AMI
// connection with ordered writes and reconnects; the callback's dialplan only
// Reads digits and publishes them (FILTERed) in UserEvents, and faxbox moves
// the channel on with Redirect/Setvar. No second listening port, no AGI
// process that could be reached by a crafted dialplan, and the decision (PIN,
// destination patterns, deny list) stays in Go where it is tested.
package inbound

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/rules"
)

// Window is the span the rate limit counts callbacks over
// (config.Callback.PerHour per caller).
const Window = time.Hour

// Submit stores a new job durably and hands it to the engine; an error
// means the job was not stored.
type Submit func(j *job.Job) error

// Config wires a Service.
type Config struct {
	// Callback is the service's configuration: allow list, delay, rate
	// limit, the callback URL of the jobs it creates.
	Callback config.Callback
	// Clock times the callbacks and the rate limit (clock.Real when nil).
	Clock clock.Clock
	// Submit queues the callback jobs.
	Submit Submit
	// Log receives one line per call to the callback number (slog.Default
	// when nil).
	Log *slog.Logger
	// Allowed, when set, allows callers besides Callback.AllowCallers (the
	// directory's callback group, package directory).
	Allowed func(caller string) bool
}

// Service decides, for every call to the callback number, whether to call
// back, and queues the callback. It is safe for concurrent use.
type Service struct {
	cfg Config
	log *slog.Logger

	mu  sync.Mutex
	hit map[string][]time.Time // allowed caller → callbacks in the last Window
}

// New returns the service for c.
func New(c Config) *Service {
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return &Service{cfg: c, log: c.Log.With("component", "inbound"), hit: map[string][]time.Time{}}
}

// Handle is told of one call to the callback number (asterisk.Config's
// OnInbound) and submits the callback job, due after the configured delay.
// It calls nobody back (and logs why) without a caller id, for a caller not
// on the allow list, or for a caller who reached the limit of callbacks in
// the last Window (refused calls do not count; a job that could not be
// stored does).
func (s *Service) Handle(caller string) {
	log := s.log.With("caller", caller)
	if caller == "" || !s.allowed(caller) {
		log.Warn("callback: caller id not on the allow list; not calling back")
		return
	}
	now := s.cfg.Clock.Now()
	if !s.take(caller, now) {
		log.Warn("callback: rate limit reached", "per_hour", s.cfg.Callback.PerHour)
		return
	}
	at := now.Add(s.cfg.Callback.Delay.D())
	j := &job.Job{ID: job.NewCallID(), Kind: job.KindCall, To: caller, Status: job.Queued, CreatedAt: now, UpdatedAt: now,
		MaxAttempts: 1, RetryInterval: job.Duration(time.Minute), ExpireAt: at.Add(time.Hour), SendAt: &at, Priority: 9,
		CallbackURL: s.cfg.Callback.CallbackURL, Call: &job.CallSpec{Kind: job.CallCallback}}
	if err := s.cfg.Submit(j); err != nil {
		log.Error("callback: could not store the job", "err", err)
		return
	}
	log.Info("callback: calling back", "job", j.ID, "at", at)
}

func (s *Service) allowed(caller string) bool {
	for _, a := range s.cfg.Callback.AllowCallers {
		if a == caller {
			return true
		}
	}
	return s.cfg.Allowed != nil && s.cfg.Allowed(caller)
}

// take counts a callback to caller at now unless PerHour (> 0) callbacks
// happened in the Window before now.
func (s *Service) take(caller string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recent []time.Time
	for _, t := range s.hit[caller] {
		if now.Sub(t) < Window {
			recent = append(recent, t)
		}
	}
	if limit := s.cfg.Callback.PerHour; limit > 0 && len(recent) >= limit {
		s.hit[caller] = recent
		return false
	}
	s.hit[caller] = append(recent, now)
	return true
}

// AllowDest returns the check of a destination a caller keyed in
// (asterisk.Config's AllowDest): a dialable number, on no deny prefix of
// c.DenyPrefixes, starting with one of c.Callback.AllowPrefixes (none: no
// destination is allowed).
func AllowDest(c config.Calls) func(digits string) bool {
	return func(d string) bool {
		if rules.Dialable(d, c.DenyPrefixes) != nil {
			return false
		}
		for _, p := range c.Callback.AllowPrefixes {
			if strings.HasPrefix(d, p) {
				return true
			}
		}
		return false
	}
}
