package job

import "testing"

func TestEventForKind(t *testing.T) {
	for _, c := range []struct {
		e    Event
		k    Kind
		want Event
	}{
		{EventFaxFailed, KindFax, EventFaxFailed},
		{EventFaxFailed, KindCall, EventCallFailed},
		{EventFaxAttemptFailed, KindCall, EventCallAttemptFailed},
		{EventFaxCancelled, KindCall, EventCallCancelled},
		{EventCallAnswered, KindCall, EventCallAnswered},
	} {
		if got := c.e.For(c.k); got != c.want {
			t.Errorf("%s.For(%s) = %s, want %s", c.e, c.k, got, c.want)
		}
	}
}

func TestEventFinal(t *testing.T) {
	final := map[Event]bool{
		EventFaxDelivered: true, EventFaxFailed: true, EventFaxCancelled: true, EventFaxAttemptFailed: false,
		EventCallAnswered: false, EventCallAttemptFailed: false, EventCallCompleted: true,
		EventCallAcknowledged: true, EventCallFailed: true, EventCallCancelled: true,
	}
	for e, want := range final {
		if e.Final() != want {
			t.Errorf("%s.Final() = %v, want %v", e, !want, want)
		}
	}
}
