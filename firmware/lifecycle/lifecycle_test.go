package lifecycle

import (
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func newJob(dials int) *job.Job {
	return &job.Job{ID: "j", Pages: 3, MaxAttempts: 3, Dials: dials, RetryInterval: job.Duration(5 * time.Minute),
		ExpireAt: t0.Add(24 * time.Hour), Attempts: []job.Attempt{{ID: "a", FirstPage: 1, StartedAt: t0, T38: true}}}
}

func TestFinish(t *testing.T) {
	pol := Policy{Retry: config.Retry{Busy: job.Duration(time.Minute)}}
	for _, c := range []struct {
		name      string
		dials     int
		r         dialler.Result
		cancelled bool
		status    job.Status
		events    []job.Event
		next      time.Duration
		confirmed int
	}{
		{"delivered", 1, dialler.Result{PagesSent: 3, ReachedFax: true}, false, job.Delivered, []job.Event{job.EventFaxDelivered}, 0, 3},
		{"busy retries after the busy interval", 1, dialler.Result{Code: failure.LineBusy}, false, job.RetryWait, []job.Event{job.EventFaxAttemptFailed}, time.Minute, 0},
		{"no answer uses the job interval", 1, dialler.Result{Code: failure.LineNoAnswer}, false, job.RetryWait, []job.Event{job.EventFaxAttemptFailed}, 5 * time.Minute, 0},
		{"last attempt fails the job", 3, dialler.Result{Code: failure.LineBusy}, false, job.Failed, []job.Event{job.EventFaxAttemptFailed, job.EventFaxFailed}, 0, 0},
		{"invalid number is final", 1, dialler.Result{Code: failure.LineInvalidNumber}, false, job.Failed, []job.Event{job.EventFaxAttemptFailed, job.EventFaxFailed}, 0, 0},
		{"pages confirmed are kept", 1, dialler.Result{Code: failure.FaxRemoteHangup, PagesSent: 1, ReachedFax: true}, false, job.RetryWait, []job.Event{job.EventFaxAttemptFailed}, 5 * time.Minute, 1},
		{"cancelled during the call", 1, dialler.Result{Code: failure.LineDropped}, true, job.Cancelled, []job.Event{job.EventFaxCancelled}, 0, 0},
		{"delivered although cancelled", 1, dialler.Result{PagesSent: 3}, true, job.Delivered, []job.Event{job.EventFaxDelivered}, 0, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := newJob(c.dials)
			evs := Finish(j, c.r, c.cancelled, pol, t0)
			if j.Status != c.status {
				t.Errorf("status = %s, want %s", j.Status, c.status)
			}
			if len(evs) != len(c.events) {
				t.Fatalf("events = %v, want %v", evs, c.events)
			}
			for i := range evs {
				if evs[i] != c.events[i] {
					t.Errorf("events = %v, want %v", evs, c.events)
				}
			}
			if c.next > 0 && (j.NextAttemptAt == nil || j.NextAttemptAt.Sub(t0) != c.next) {
				t.Errorf("next attempt = %v, want +%s", j.NextAttemptAt, c.next)
			}
			if j.PagesConfirmed != c.confirmed {
				t.Errorf("pages confirmed = %d, want %d", j.PagesConfirmed, c.confirmed)
			}
			if c.status == job.Failed && (j.Error == nil || j.Error.Code != c.r.Code) {
				t.Errorf("job error = %+v, want code %s", j.Error, c.r.Code)
			}
		})
	}
}

func TestExpiryBeforeRetry(t *testing.T) {
	j := newJob(1)
	j.ExpireAt = t0.Add(time.Minute)
	evs := Finish(j, dialler.Result{Code: failure.LineNoAnswer}, false, Policy{}, t0)
	if j.Status != job.Failed || j.Error.Code != failure.JobExpired || evs[len(evs)-1] != job.EventFaxFailed {
		t.Fatalf("status %s error %+v events %v; want failed job.expired", j.Status, j.Error, evs)
	}
}

func TestFallbackLadder(t *testing.T) {
	j := newJob(1)
	a := j.LastAttempt()
	steps := []job.FallbackState{{NoT38: true}, {NoT38: true, NoECM: true}, {NoT38: true, NoECM: true, MaxRate: 9600}, {NoT38: true, NoECM: true, MaxRate: 9600}}
	for i, want := range steps {
		Fallback(j, a, failure.FaxTraining)
		if j.Fallback != want {
			t.Fatalf("step %d: %+v, want %+v", i, j.Fallback, want)
		}
		a.T38 = !j.Fallback.NoT38
	}
	k := newJob(1)
	Fallback(k, k.LastAttempt(), failure.LineBusy)
	Fallback(k, k.LastAttempt(), failure.FaxRemoteNotFax)
	if k.Fallback != (job.FallbackState{}) {
		t.Fatalf("line failures moved the ladder: %+v", k.Fallback)
	}
}

// TestBoxFaultKeepsTheJob: a dial that failed because the box's Asterisk
// could not read the (validated) document keeps the job, whatever its
// max_attempts, and does not use one up: once fixed, the job still has all
// of them.
func TestBoxFaultKeepsTheJob(t *testing.T) {
	j := newJob(1) // the engine counted the dial
	j.MaxAttempts = 1
	r := dialler.Result{Code: failure.BoxDocumentAccess, Raw: "FAILED / FILE_ERROR / error reading file / ANSWER / cause 16", Answered: true}
	evs := Finish(j, r, false, Policy{}, t0)
	if j.Status != job.RetryWait || j.Error != nil || len(evs) != 1 || evs[0] != job.EventFaxAttemptFailed {
		t.Fatalf("status %s error %+v events %v; want retry_wait, no job error, one fax.attempt_failed", j.Status, j.Error, evs)
	}
	if j.NextAttemptAt == nil || j.NextAttemptAt.Sub(t0) != 5*time.Minute {
		t.Errorf("next attempt %v, want the job's retry interval", j.NextAttemptAt)
	}
	if a := j.LastAttempt(); a.Error == nil || a.Error.Code != failure.BoxDocumentAccess || a.Error.Class != "box" || !a.Error.Retryable {
		t.Errorf("attempt error %+v", a.Error)
	}
	if j.Tries != 0 || j.Fallback != (job.FallbackState{}) {
		t.Errorf("tries %d, ladder %+v: a box fault is neither a try nor a step down the ladder", j.Tries, j.Fallback)
	}
	// Fixed: the next dial is the job's one real attempt; its failure
	// ends the job as max_attempts 1 says.
	j.Attempts = append(j.Attempts, job.Attempt{ID: "b", FirstPage: 1, StartedAt: t0, T38: true})
	j.Dials++
	Finish(j, dialler.Result{Code: failure.LineBusy}, false, Policy{}, t0.Add(6*time.Minute))
	if j.Status != job.Failed || j.Error.Code != failure.LineBusy {
		t.Fatalf("after the box fault, one busy: status %s error %+v; want failed line.busy", j.Status, j.Error)
	}
}
