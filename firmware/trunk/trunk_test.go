package trunk

import (
	"testing"

	"github.com/faxbox/faxbox/firmware/ami"
)

func contact(aor, status string) ami.Message {
	return ami.Message{{Key: "Event", Value: "ContactStatus"}, {Key: "Privilege", Value: "system,all"},
		{Key: "URI", Value: "sip:remote@127.0.0.1:5070"}, {Key: "ContactStatus", Value: status},
		{Key: "AOR", Value: aor}, {Key: "EndpointName", Value: aor}}
}

// TestWatchFollowsContactStatus: the state starts Unknown and follows the
// trunk's own ContactStatus events; statuses without a reachability verdict
// keep the last one; the event is reported as handled.
func TestWatchFollowsContactStatus(t *testing.T) {
	w := New("trunk")
	if got := w.State(); got != Unknown {
		t.Fatalf("new watch: %q, want %q", got, Unknown)
	}
	for _, step := range []struct {
		status string
		want   State
	}{
		{"Reachable", Reachable},
		{"Updated", Reachable},
		{"Unreachable", Unreachable},
		{"Created", Unreachable},
		{"Reachable", Reachable},
		{"NonQualified", Unknown},
		{"Unreachable", Unreachable},
		{"Removed", Unknown},
		{"Unreachable", Unreachable},
		{"Unknown", Unknown},
	} {
		if !w.Handle(contact("trunk", step.status)) {
			t.Fatalf("ContactStatus %s of the trunk not handled", step.status)
		}
		if got := w.State(); got != step.want {
			t.Fatalf("after %s: %q, want %q", step.status, got, step.want)
		}
	}
}

// TestWatchIgnoresOtherEvents: another AOR's status and other events are
// not the trunk's: not handled, state unchanged.
func TestWatchIgnoresOtherEvents(t *testing.T) {
	w := New("trunk")
	w.Handle(contact("trunk", "Reachable"))
	others := []ami.Message{
		contact("other", "Unreachable"),
		contact("trunk2", "Unreachable"),
		{{Key: "Event", Value: "PeerStatus"}, {Key: "AOR", Value: "trunk"}, {Key: "ContactStatus", Value: "Unreachable"}},
		{{Key: "Response", Value: "Success"}, {Key: "ContactStatus", Value: "Unreachable"}},
	}
	for _, m := range others {
		if w.Handle(m) {
			t.Errorf("handled %v", m)
		}
	}
	if got := w.State(); got != Reachable {
		t.Fatalf("state %q after other events, want %q", got, Reachable)
	}
}
