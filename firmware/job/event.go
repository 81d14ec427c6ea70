package job

import "strings"

// AttemptResult is how an attempt ended, as recorded on it.
type AttemptResult string

// Attempt results.
const (
	AttemptInProgress AttemptResult = "in_progress" // the call is up
	AttemptDelivered  AttemptResult = "delivered"   // every page confirmed (a call: it did what it was for)
	AttemptFailed     AttemptResult = "failed"      // see the attempt's Error
)

// Event is the name of a webhook event: what happened to a job. Fax jobs
// produce the fax.* events, call jobs the call.* ones.
type Event string

// Events of a fax job.
const (
	EventFaxDelivered     Event = "fax.delivered"
	EventFaxFailed        Event = "fax.failed"
	EventFaxAttemptFailed Event = "fax.attempt_failed"
	EventFaxCancelled     Event = "fax.cancelled"
)

// Events of a call job.
const (
	EventCallAnswered      Event = "call.answered"
	EventCallAcknowledged  Event = "call.acknowledged" // a message call's confirm digit was pressed
	EventCallCompleted     Event = "call.completed"
	EventCallAttemptFailed Event = "call.attempt_failed"
	EventCallFailed        Event = "call.failed"
	EventCallCancelled     Event = "call.cancelled"
)

// For returns the event of the same meaning for a job of kind k: a fax event
// becomes its call.* twin for a call job ("fax.failed" → "call.failed").
func (e Event) For(k Kind) Event {
	if k == KindCall {
		if rest, ok := strings.CutPrefix(string(e), "fax."); ok {
			return Event("call." + rest)
		}
	}
	return e
}

// Final reports whether e ends its job (delivered, failed or cancelled, for
// either kind).
func (e Event) Final() bool {
	switch e {
	case EventFaxDelivered, EventFaxFailed, EventFaxCancelled,
		EventCallCompleted, EventCallAcknowledged, EventCallFailed, EventCallCancelled:
		return true
	}
	return false
}
