package job

import (
	"errors"
	"testing"
)

var allStatuses = []Status{Queued, Converting, Ready, Dialing, Sending, RetryWait, Delivered, Failed, Cancelled}

// Every pair of statuses, against the lifecycle as it is written down.
func TestTransitions(t *testing.T) {
	allowed := map[[2]Status]bool{}
	for _, p := range [][2]Status{
		{Queued, Converting}, {Queued, Ready}, {Queued, Failed}, {Queued, Cancelled},
		{Converting, Ready}, {Converting, Failed}, {Converting, Cancelled},
		{Ready, Dialing}, {Ready, RetryWait}, {Ready, Failed}, {Ready, Cancelled},
		{Dialing, Sending}, {Dialing, Ready}, {Dialing, RetryWait}, {Dialing, Delivered}, {Dialing, Failed}, {Dialing, Cancelled},
		{Sending, Ready}, {Sending, RetryWait}, {Sending, Delivered}, {Sending, Failed}, {Sending, Cancelled},
		{RetryWait, Ready}, {RetryWait, Dialing}, {RetryWait, Failed}, {RetryWait, Cancelled},
		{Failed, Queued}, {Failed, Ready},
		{Cancelled, Queued}, {Cancelled, Ready},
	} {
		allowed[p] = true
	}
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			err := from.To(to)
			want := allowed[[2]Status{from, to}] || from == to
			if (err == nil) != want {
				t.Errorf("%s → %s: %v, want allowed=%v", from, to, err, want)
			}
			if err != nil && !errors.Is(err, ErrTransition) {
				t.Errorf("%s → %s: %v is not ErrTransition", from, to, err)
			}
		}
	}
	if Delivered.To(Dialing) == nil || Delivered.To(Queued) == nil {
		t.Fatal("a delivered job may move on")
	}
	if Status("bogus").To("bogus") == nil {
		t.Fatal("an unknown status is accepted")
	}
}
