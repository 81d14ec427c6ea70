package engine

import (
	"slices"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/capacity"
	"github.com/faxbox/faxbox/firmware/destctl"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/lifecycle"
	"github.com/faxbox/faxbox/firmware/scheduler"
)

// stateCaps is the store state holding the learned caps.
const stateCaps = "destination_caps"

// control returns the destination controls that apply to number.
func (e *Engine) control(number string) destctl.Control {
	return e.cfg.Rules.Match(number)
}

// limits is the scheduler's view of a number (digits, no +): the rule's
// concurrency lowered by a learned cap, and its batching. The rules match
// the number as submitted; a rule for "+49…" needs the +, so both forms are
// tried, the submitted one first (the scheduler strips it).
func (e *Engine) limits(num string) scheduler.Limits {
	ctl := e.numberControl(num)
	return scheduler.Limits{
		Concurrent: e.cfg.Learned.Limit(num, ctl.MaxConcurrent, e.cfg.Clock.Now()),
		Batch:      ctl.MaxBatch,
		BatchWait:  ctl.BatchWait,
	}
}

// Rejected reports whether the destination rules refuse number, and why.
func (e *Engine) Rejected(number string) (reason string, rejected bool) {
	return e.cfg.Rules.Reject(number)
}

// numberControl is the control of a number as the scheduler knows it
// (digits, no +): the rule for the number, or else for it with a +.
func (e *Engine) numberControl(num string) destctl.Control {
	ctl := e.control(num)
	if ctl.Rule < 0 {
		ctl = e.control("+" + num)
	}
	return ctl
}

// observeBusyLocked learns from a busy answer while the box had other calls
// up to the same number (this call still counts as up here): the number
// takes no more than those. The caps are stored when they change.
func (e *Engine) observeBusyLocked(r dialler.Result) {
	if r.Code != failure.LineBusy {
		return
	}
	en := e.entryForAttemptLocked(r.AttemptID)
	if b := e.batches[r.AttemptID]; b != nil && len(b.members) > 0 {
		en = b.members[0]
	}
	if en == nil || en.rec.Job.Kind != job.KindFax {
		return
	}
	num := strings.TrimPrefix(en.rec.Job.To, "+")
	others := e.sched.InCalls(num) - 1
	if !e.cfg.Learned.Busy(num, others, e.numberControl(num).MaxConcurrent, e.cfg.Clock.Now()) {
		return
	}
	e.log.Info("engine: a number answered busy with calls up; capped", "number", num, "calls", others)
	e.saveCapsLocked()
}

// saveCapsLocked stores the learned caps, in order, off the lock.
func (e *Engine) saveCapsLocked() {
	snap := e.cfg.Learned.Snapshot()
	e.capsSeq++
	seq := e.capsSeq
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.capsMu.Lock()
		defer e.capsMu.Unlock()
		if seq < e.capsSaved {
			return // a newer snapshot is stored already
		}
		e.capsSaved = seq
		if err := e.cfg.Store.PutState(stateCaps, snap); err != nil {
			e.log.Warn("engine: store the learned caps", "err", err)
		}
	}()
}

// restoreCaps loads the learned caps stored by an earlier run; caps learned
// under another configured limit are dropped.
func (e *Engine) restoreCaps() {
	var caps []capacity.Cap
	if ok, err := e.cfg.Store.GetState(stateCaps, &caps); err != nil || !ok {
		if err != nil {
			e.log.Warn("engine: read the learned caps", "err", err)
		}
		return
	}
	e.cfg.Learned.Restore(caps, func(num string) int { return e.numberControl(num).MaxConcurrent })
}

// policyFor is the retry policy for j: the box's, with its destination's
// retry waits and attempt cap.
func (e *Engine) policyFor(j *job.Job) lifecycle.Policy {
	p := e.cfg.Policy
	ctl := e.control(j.To)
	p.Waits, p.MaxAttempts = ctl.RetryWaits, ctl.MaxAttempts
	return p
}

// faxSettings are the session settings of j's next attempt: the job's
// options, overridden by its destination's rule, stepped down by the
// fallback ladder.
type faxSettings struct {
	t38, ecm, audioFallback bool
	maxRate                 int
	decision                string // why t38 is not the job's (learned)
}

func (e *Engine) settings(j *job.Job) faxSettings {
	o, ctl := j.Options, e.control(j.To)
	t38, ecm := o.T38, o.ECM
	if ctl.T38 != "" {
		t38 = ctl.T38
	}
	if ctl.ECM != "" {
		ecm = ctl.ECM
	}
	rate := j.Fallback.MaxRate
	if ctl.MaxRate > 0 && (rate == 0 || ctl.MaxRate < rate) {
		rate = ctl.MaxRate
	}
	s := faxSettings{
		t38:           t38 != "off" && !j.Fallback.NoT38,
		ecm:           ecm != "off" && !j.Fallback.NoECM,
		audioFallback: t38 != "on",
		maxRate:       rate,
	}
	if s.t38 && ctl.T38 == "" && e.cfg.Health != nil && j.Kind != job.KindCall {
		avoid, why := e.cfg.Health.AvoidT38(j.To, e.cfg.Clock.Now())
		s.t38, s.decision = !avoid, why
	}
	if pa, ok := e.cfg.Health.(PathAdvisor); ok && j.Kind != job.KindCall {
		// Learned from a lossy path: ECM on (unless this job's own
		// failures turned it off) and a lower rate; the rule's win.
		ecmOn, rate, why := pa.AdvisePath(j.To, e.cfg.Clock.Now(), ctl.ECM != "", ctl.MaxRate > 0)
		s.ecm = s.ecm || (ecmOn && !j.Fallback.NoECM)
		if rate > 0 && (s.maxRate == 0 || rate < s.maxRate) {
			s.maxRate = rate
		}
		if why != "" && s.decision != "" {
			s.decision += "; " + why
		} else if why != "" {
			s.decision = why
		}
	}
	return s
}

// DestinationState is what the box knows of one number: its rule, how many
// calls to it are up, and how many it may have now (lower than the rule's
// while a learned cap holds).
type DestinationState struct {
	Number        string    `json:"number"`
	Rule          string    `json:"rule,omitempty"` // the matching rule's pattern
	MaxConcurrent int       `json:"max_concurrent"`
	Limit         int       `json:"limit"`
	InCalls       int       `json:"in_calls"`
	CappedSince   time.Time `json:"capped_since,omitzero"`
}

// Destinations returns the numbers with calls up or a learned cap, by number.
func (e *Engine) Destinations() []DestinationState {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Clock.Now()
	by := map[string]*DestinationState{}
	get := func(num string) *DestinationState {
		if d := by[num]; d != nil {
			return d
		}
		ctl := e.numberControl(num)
		d := &DestinationState{Number: num, Rule: ctl.Pattern, MaxConcurrent: ctl.MaxConcurrent, Limit: e.limits(num).Concurrent}
		by[num] = d
		return d
	}
	for num, n := range e.sched.Numbers() {
		get(num).InCalls = n
	}
	for _, c := range e.cfg.Learned.Caps(now) {
		get(c.Number).CappedSince = c.Since
	}
	out := make([]DestinationState, 0, len(by))
	for _, d := range by {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DestinationState) int { return strings.Compare(a.Number, b.Number) })
	return out
}
