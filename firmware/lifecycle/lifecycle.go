// Package lifecycle decides what an attempt's end means for its job: done,
// retry when and how (the fallback ladder), or fail. It is pure: it changes
// the job it is given and returns the webhook events the change produces.
package lifecycle

import (
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
)

// Policy holds the per-cause retry intervals (zero: the job's own
// interval); Waits and MaxAttempts are the job's destination's (its
// destination controls): they win over Retry and cap the job's own
// max_attempts.
type Policy struct {
	Retry       config.Retry
	Waits       map[failure.Code]time.Duration
	MaxAttempts int
}

// Interval returns how long to wait before retrying after code.
func (p Policy) Interval(j *job.Job, code failure.Code) time.Duration {
	if w, ok := p.Waits[code]; ok {
		return w
	}
	var d job.Duration
	switch code {
	case failure.LineBusy:
		d = p.Retry.Busy
	case failure.LineNoAnswer:
		d = p.Retry.NoAnswer
	case failure.LineCongestion, failure.LineUnavailable:
		d = p.Retry.Congestion
	default:
		if code.Class() == "fax" {
			d = p.Retry.FaxError
		}
	}
	if d <= 0 {
		d = j.RetryInterval
	}
	return d.D()
}

// Finish records r on attempt a (the job's last attempt) and moves j to its
// next state. cancelled says the user cancelled while the call was up: unless
// the fax went through, the job ends cancelled. It returns the events to
// deliver, in order.
func Finish(j *job.Job, r dialler.Result, cancelled bool, p Policy, now time.Time) []job.Event {
	a := j.LastAttempt()
	record(j, a, r, now)
	if r.OK() {
		return delivered(j, a, r, now)
	}
	a.Result = job.AttemptFailed
	a.Error = job.NewError(r.Code, r.Raw)
	if cancelled {
		j.Status = job.Cancelled
		j.Error = job.NewError(failure.JobCancelled, "")
		j.CompletedAt = &now
		return []job.Event{job.EventFaxCancelled.For(j.Kind)}
	}
	events := []job.Event{job.EventFaxAttemptFailed.For(j.Kind)}
	if r.Answered && j.Kind == job.KindCall {
		events = []job.Event{job.EventCallAnswered, job.EventCallAttemptFailed}
	}
	retryOrFail(j, a, r, p, now)
	if j.Status == job.Failed {
		events = append(events, job.EventFaxFailed.For(j.Kind))
	}
	return events
}

// record copies what the dialler reported onto attempt a and the job's
// counters (tries, pages confirmed).
func record(j *job.Job, a *job.Attempt, r dialler.Result, now time.Time) {
	end := r.EndedAt
	if end.IsZero() {
		end = now
	}
	a.EndedAt = &end
	if !r.AnsweredAt.IsZero() {
		t := r.AnsweredAt
		a.AnsweredAt = &t
	}
	a.PagesSent = r.PagesSent
	a.BitRate = r.BitRate
	a.ECM = r.ECM
	if r.Transport != "" {
		a.Transport = r.Transport
	}
	if r.Channel != "" {
		a.Channel = r.Channel
	}
	a.RemoteStationID = r.RemoteStationID
	a.DurationMS = end.Sub(a.StartedAt).Milliseconds()
	if r.ReachedFax {
		j.Tries++
	}
	if c := a.FirstPage - 1 + r.PagesSent; c > j.PagesConfirmed {
		j.PagesConfirmed = min(c, j.Pages)
	}
	j.UpdatedAt = now
	j.NextAttemptAt = nil

	if j.Kind == job.KindCall {
		a.Digit, a.TalkSeconds = r.Digit, r.TalkSeconds
	}
}

// delivered ends the job delivered (a call: it did what it was for).
func delivered(j *job.Job, a *job.Attempt, r dialler.Result, now time.Time) []job.Event {
	a.Result = job.AttemptDelivered
	j.PagesConfirmed = j.Pages
	j.Status = job.Delivered
	j.Error = nil
	j.CompletedAt = &now
	if j.Kind == job.KindCall {
		if r.Acked {
			return []job.Event{job.EventCallAnswered, job.EventCallAcknowledged}
		}
		return []job.Event{job.EventCallAnswered, job.EventCallCompleted}
	}
	return []job.Event{job.EventFaxDelivered}
}

// retryOrFail decides after failed attempt a: fail the job (not retryable,
// out of attempts, or the retry would come after expire_at) or wait for the
// retry, one step down the fallback ladder.
func retryOrFail(j *job.Job, a *job.Attempt, r dialler.Result, p Policy, now time.Time) {
	info := failure.Lookup(r.Code)
	if r.Code.Class() == failure.ClassBox {
		// The box's own fault (its Asterisk could not read the document):
		// the dial does not count against max_attempts.
		j.RetryBase = min(j.RetryBase+1, j.Dials)
	}
	switch {
	case !info.Retryable:
		fail(j, a.Error, now)
	case j.Dials-j.RetryBase >= p.maxAttempts(j):
		fail(j, a.Error, now)
	default:
		wait := p.Interval(j, r.Code)
		if j.Kind == job.KindCall && j.Call != nil && len(j.Call.FallbackTo) > 0 {
			wait = 0 // nobody answered or acknowledged: the next number now
		}
		next := now.Add(wait)
		if next.After(j.ExpireAt) {
			e := job.NewError(failure.JobExpired, string(r.Code)+": "+r.Raw)
			fail(j, e, now)
			break
		}
		Fallback(j, a, r.Code)
		j.Status = job.RetryWait
		j.NextAttemptAt = &next
	}
}

func fail(j *job.Job, e *job.Error, now time.Time) {
	j.Status = job.Failed
	j.Error = e
	j.CompletedAt = &now
}

// maxAttempts is j's max_attempts, capped by its destination's.
func (p Policy) maxAttempts(j *job.Job) int {
	if p.MaxAttempts > 0 && p.MaxAttempts < j.MaxAttempts {
		return p.MaxAttempts
	}
	return j.MaxAttempts
}

// Fallback moves the job one step down the ladder after a fax-level failure
// of attempt a: T.38 → G.711 audio, then ECM off, then at most 9600 bit/s.
// Line-level failures and "not a fax" leave the ladder where it is.
func Fallback(j *job.Job, a *job.Attempt, code failure.Code) {
	if code.Class() != "fax" || code == failure.FaxRemoteNotFax {
		return
	}
	f := &j.Fallback
	switch {
	case code == failure.FaxT38Negotiation || (a.T38 && !f.NoT38):
		f.NoT38 = true
	case !f.NoECM:
		f.NoECM = true
	case f.MaxRate == 0 || f.MaxRate > 9600:
		f.MaxRate = 9600
	}
}

// Expire ends a job that could not be sent by its expire_at.
func Expire(j *job.Job, now time.Time) []job.Event {
	raw := ""
	if a := j.LastAttempt(); a != nil && a.Error != nil {
		raw = string(a.Error.Code)
	}
	fail(j, job.NewError(failure.JobExpired, raw), now)
	j.UpdatedAt = now
	j.NextAttemptAt = nil
	return []job.Event{job.EventFaxFailed.For(j.Kind)}
}

// FailDocument ends a job whose document could not be converted.
func FailDocument(j *job.Job, code failure.Code, raw string, now time.Time) []job.Event {
	fail(j, job.NewError(code, raw), now)
	j.UpdatedAt = now
	return []job.Event{job.EventFaxFailed.For(j.Kind)}
}

// Cancel ends a job that is not in a call.
func Cancel(j *job.Job, now time.Time) []job.Event {
	j.Status = job.Cancelled
	j.Error = job.NewError(failure.JobCancelled, "")
	j.CompletedAt = &now
	j.UpdatedAt = now
	j.NextAttemptAt = nil
	return []job.Event{job.EventFaxCancelled.For(j.Kind)}
}
