package job

import (
	"errors"
	"fmt"
)

// ErrTransition is returned by Status.To for a change the lifecycle does not
// allow.
var ErrTransition = errors.New("job: status change not allowed")

// transitions is the one table of the job lifecycle: for each status, the
// statuses a job may move to next. A job may always keep its status (a save
// that changes other fields).
//
//	queued     → converting, ready (a retried job's pages kept), failed, cancelled
//	converting → ready, failed, cancelled, converting (again after a restart)
//	ready      → dialing, retry_wait (an attempt not recorded), failed, cancelled
//	dialing    → sending, ready, retry_wait, delivered, failed, cancelled
//	sending    → ready, retry_wait, delivered, failed, cancelled
//	retry_wait → ready, dialing, failed, cancelled
//	failed, cancelled → queued, ready (retried by hand)
//	delivered  → nothing: a delivered document is never sent again
var transitions = map[Status][]Status{
	Queued:     {Converting, Ready, Failed, Cancelled},
	Converting: {Ready, Failed, Cancelled},
	Ready:      {Dialing, RetryWait, Failed, Cancelled},
	Dialing:    {Sending, Ready, RetryWait, Delivered, Failed, Cancelled},
	Sending:    {Ready, RetryWait, Delivered, Failed, Cancelled},
	RetryWait:  {Ready, Dialing, Failed, Cancelled},
	Failed:     {Queued, Ready},
	Cancelled:  {Queued, Ready},
	Delivered:  {},
}

// To checks that a job may move from s to next: nil, or an error wrapping
// ErrTransition that names both.
func (s Status) To(next Status) error {
	if s == next && s.Valid() {
		return nil
	}
	for _, n := range transitions[s] {
		if n == next {
			return nil
		}
	}
	return fmt.Errorf("%w: %s → %s", ErrTransition, s, next)
}
