// Package health keeps what the box learned of each destination's and
// each trunk's fax path and turns it into decisions for the next attempt
// and into alarms.
//
// Its rules:
//
//   - T.38 refused: a destination whose T.38 negotiation failed gets G.711
//     audio first on every later attempt (of any job), without an attempt
//     spent on T.38 again, until RetryT38After has passed; then T.38 is
//     tried again. A delivery over T.38 to the number clears the record.
//     T.38 negotiation failed means: the attempt's error is
//     fax.t38_negotiation, or the attempt asked for T.38 only (the job's
//     t38 "on": the box re-INVITEs to T.38 itself) and failed at the fax
//     level without the call ever switching to T.38 (a G.711-only machine
//     refusing the re-INVITE).
//   - Lossy path: an attempt whose media report shows a lossy path (see
//     Thresholds.lossy: unrecoverable UDPTL gaps, UDPTL loss beyond what
//     redundancy repairs, RTP loss or jitter too high for G.711 fax) makes
//     later attempts to the number go with ECM on and at most LossyMaxRate
//     bit/s, and each says why ("ECM on, 9600 because of 3% unrecoverable
//     loss to this number on …").
//   - A capture that missed packets: a media report marked
//     CaptureIncomplete (the capture dropped packets while the call was
//     up: a flood over its rate limit, the kernel's drops) would show loss
//     the path did not have; it counts for neither the lossy-path rules
//     nor the trunk's alarm (the T.38 rule, which needs no media, still
//     applies).
//   - Healthy again: HealthyAttempts attempts in a row whose media reports
//     are clean return the number to the defaults.
//   - The configuration wins: a destination rule that sets t38, ecm or
//     max_rate keeps it; the engine tells AdvisePath which it sets (and
//     does not ask AvoidT38 when the rule sets t38).
//   - Trunk alarm: per trunk (line group), the last TrunkWindow attempts
//     with a media report are pooled; when their UDPTL loss, unrecoverable
//     UDPTL gaps, RTP loss or mean RTP jitter passes its threshold, the
//     trunk is in alarm (Alarm: the panel's alarm LED, /v1/status) until
//     newer attempts bring the figures back under it. WriteMetrics shows
//     the figures in the Prometheus text format.
//
// The records survive restarts: they are kept in the store's state bucket
// (StateKey, TrunkStateKey), written when they change. Every rule takes
// the time from its caller, never from the wall clock.
package health

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
)

// StateKey is the store state the destinations' records are kept under;
// TrunkStateKey the trunks' windows.
const (
	StateKey      = "media_health"
	TrunkStateKey = "media_health_trunks"
)

// Defaults of Config.
const (
	// DefaultRetryT38After is how long a destination stays on G.711 after
	// its T.38 negotiation failed.
	DefaultRetryT38After = 24 * time.Hour
	// DefaultLossyMaxRate is the highest bit rate on a lossy path (V.29
	// 9600 instead of V.17 14400: fewer bits lost per missing packet,
	// and a more robust modulation after the gateway).
	DefaultLossyMaxRate = 9600
	// DefaultHealthyAttempts clean attempts in a row end a lossy record.
	DefaultHealthyAttempts = 3
	// DefaultTrunkWindow attempts with a media report are pooled per trunk.
	DefaultTrunkWindow = 10
	// MinPackets: a direction with fewer expected packets is too short
	// for a loss rate (an attempt that ended at once).
	MinPackets = 20
)

// State is durable storage of small JSON state (store.DB).
type State interface {
	GetState(name string, v any) (bool, error)
	PutState(name string, v any) error
}

// Record is what was learned of one destination.
type Record struct {
	// T38FailedAt: when its T.38 negotiation last failed (zero: never,
	// or a delivery over T.38 since).
	T38FailedAt time.Time    `json:"t38_failed_at,omitzero"`
	T38Failure  failure.Code `json:"t38_failure,omitempty"` // the attempt's error
	// LossyAt: when an attempt to it last showed a lossy path (zero: not
	// lossy, or healthy again since); LossyWhy what it showed ("3%
	// unrecoverable loss"); Clean the clean attempts since.
	LossyAt  time.Time `json:"lossy_at,omitzero"`
	LossyWhy string    `json:"lossy_why,omitempty"`
	Clean    int       `json:"clean,omitempty"`
}

func (r Record) empty() bool { return r.T38FailedAt.IsZero() && r.LossyAt.IsZero() }

// Config of a Book. Zero fields take their defaults.
type Config struct {
	// RetryT38After: how long after a failed T.38 negotiation T.38 is
	// tried again (default DefaultRetryT38After).
	RetryT38After   time.Duration
	Thresholds      Thresholds
	LossyMaxRate    int // default DefaultLossyMaxRate
	HealthyAttempts int // default DefaultHealthyAttempts
	TrunkWindow     int // default DefaultTrunkWindow
	Log             *slog.Logger
}

func (c *Config) fill() {
	if c.RetryT38After <= 0 {
		c.RetryT38After = DefaultRetryT38After
	}
	c.Thresholds.fill()
	if c.LossyMaxRate <= 0 {
		c.LossyMaxRate = DefaultLossyMaxRate
	}
	if c.HealthyAttempts <= 0 {
		c.HealthyAttempts = DefaultHealthyAttempts
	}
	if c.TrunkWindow <= 0 {
		c.TrunkWindow = DefaultTrunkWindow
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Book holds the destinations' records and the trunks' windows. It is
// safe for concurrent use.
type Book struct {
	cfg Config
	st  State

	mu     sync.Mutex
	recs   map[string]Record
	trunks map[string][]Sample
}

// Open reads the records from st.
func Open(st State, cfg Config) (*Book, error) {
	cfg.fill()
	b := &Book{cfg: cfg, st: st, recs: map[string]Record{}, trunks: map[string][]Sample{}}
	if _, err := st.GetState(StateKey, &b.recs); err != nil {
		return nil, fmt.Errorf("health: read the destinations' records: %w", err)
	}
	if _, err := st.GetState(TrunkStateKey, &b.trunks); err != nil {
		return nil, fmt.Errorf("health: read the trunks' records: %w", err)
	}
	return b, nil
}

const stamp = "2006-01-02 15:04 MST"

// AvoidT38 reports whether the next fax attempt to number at now should go
// G.711 first, and the decision as the attempt shows it.
func (b *Book) AvoidT38(number string, now time.Time) (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.recs[number]
	if !ok || r.T38FailedAt.IsZero() {
		return false, ""
	}
	until := r.T38FailedAt.Add(b.cfg.RetryT38After)
	if !now.Before(until) {
		return false, fmt.Sprintf("T.38 tried again: its negotiation failed to this number on %s, more than %s ago",
			r.T38FailedAt.UTC().Format(stamp), b.cfg.RetryT38After)
	}
	return true, fmt.Sprintf("G.711 because T.38 negotiation failed to this number on %s (%s); T.38 is tried again from %s",
		r.T38FailedAt.UTC().Format(stamp), r.T38Failure, until.UTC().Format(stamp))
}

// AdvisePath returns the session settings the next fax attempt to number
// should use because of what its path showed: ecm (turn ECM on), maxRate
// (at most this many bit/s; 0: no limit) and the decision as the attempt
// shows it, empty when nothing was learned. fixedECM and fixedRate say the
// destination's rule in the configuration sets ECM or the rate: those win
// and are not advised.
func (b *Book) AdvisePath(number string, now time.Time, fixedECM, fixedRate bool) (ecm bool, maxRate int, decision string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.recs[number]
	if !ok || r.LossyAt.IsZero() || (fixedECM && fixedRate) {
		return false, 0, ""
	}
	var what string
	switch {
	case fixedECM:
		maxRate, what = b.cfg.LossyMaxRate, fmt.Sprint(b.cfg.LossyMaxRate)
	case fixedRate:
		ecm, what = true, "ECM on"
	default:
		ecm, maxRate, what = true, b.cfg.LossyMaxRate, fmt.Sprintf("ECM on, %d", b.cfg.LossyMaxRate)
	}
	decision = fmt.Sprintf("%s because of %s to this number on %s", what, r.LossyWhy, r.LossyAt.UTC().Format(stamp))
	if r.Clean > 0 {
		decision += fmt.Sprintf(" (%d of %d clean attempts since)", r.Clean, b.cfg.HealthyAttempts)
	}
	return ecm, maxRate, decision
}

// Observe learns from finished fax attempt a to number: t38Only says the
// attempt asked for T.38 alone (no G.711 audio fallback in the call).
func (b *Book) Observe(number string, a *job.Attempt, t38Only bool, now time.Time) {
	if a == nil {
		return
	}
	s, measured := sampleOf(a.Media, now)
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.recs[number]
	r := b.learnT38(old, a, t38Only, now)
	if measured {
		r = b.learnPath(r, s, now)
	}
	if r != old {
		if r.empty() {
			delete(b.recs, number)
		} else {
			b.recs[number] = r
		}
		if err := b.st.PutState(StateKey, b.recs); err != nil {
			b.cfg.Log.Error("health: the destinations' records were not saved", "err", err, "number", number)
		}
	}
	if measured && a.Line.Group != "" {
		b.addSampleLocked(a.Line.Group, s)
	}
}

// learnT38 applies the T.38 rule to r.
func (b *Book) learnT38(r Record, a *job.Attempt, t38Only bool, now time.Time) Record {
	if !a.T38 {
		return r
	}
	var code failure.Code
	if a.Error != nil {
		code = a.Error.Code
	}
	failed := code == failure.FaxT38Negotiation ||
		(t38Only && code.Class() == "fax" && code != failure.FaxRemoteNotFax && a.Transport != "t38")
	switch {
	case failed:
		r.T38FailedAt, r.T38Failure = now, code
	case a.Result == job.AttemptDelivered && a.Transport == "t38":
		r.T38FailedAt, r.T38Failure = time.Time{}, ""
	}
	return r
}

// learnPath applies the lossy-path rules to r.
func (b *Book) learnPath(r Record, s Sample, now time.Time) Record {
	if why := b.cfg.Thresholds.lossy(s); why != "" {
		r.LossyAt, r.LossyWhy, r.Clean = now, why, 0
		return r
	}
	if r.LossyAt.IsZero() {
		return r
	}
	r.Clean++
	if r.Clean >= b.cfg.HealthyAttempts {
		r.LossyAt, r.LossyWhy, r.Clean = time.Time{}, "", 0
	}
	return r
}
