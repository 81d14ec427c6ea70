// Package trunk follows the SIP trunk's qualify result from Asterisk's
// ContactStatus events (a system-class event: the rendered manager user
// reads them when the trunk is qualified). Unreachable raises the panel's
// "trunk unqualified" alarm, Reachable clears it. Asterisk sends the event
// only when the status changes, so after faxbox (re)starts the state is
// Unknown until the next change.
package trunk

import (
	"sync"

	"github.com/faxbox/faxbox/firmware/ami"
)

// State is what the box knows of the trunk's reachability. Its text is what
// /v1/status shows as "trunk".
type State string

// The trunk's states.
const (
	// Unknown: no qualify result since faxbox started, or the contact was
	// removed or is not qualified.
	Unknown State = "unknown"
	// Reachable: the last qualify was answered.
	Reachable State = "reachable"
	// Unreachable: the last qualify went unanswered.
	Unreachable State = "unreachable"
)

// Watch follows one trunk (its AOR, as rendered into pjsip.conf). It is
// safe for concurrent use: Handle runs on the event loop, State on API and
// panel goroutines.
type Watch struct {
	aor string

	mu    sync.Mutex
	state State
}

// New returns a Watch of the trunk whose AOR is aor, in state Unknown.
func New(aor string) *Watch { return &Watch{aor: aor, state: Unknown} }

// Handle takes one AMI event and reports whether it was this trunk's
// ContactStatus (the caller then need not hand it on). Statuses that say
// nothing about reachability (Created, Updated) leave the state as it is.
func (w *Watch) Handle(m ami.Message) bool {
	if m.Event() != "ContactStatus" || m.Get("AOR") != w.aor {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch m.Get("ContactStatus") {
	case "Reachable":
		w.state = Reachable
	case "Unreachable":
		w.state = Unreachable
	case "Removed", "Unknown", "NonQualified":
		w.state = Unknown
	}
	return true
}

// State returns the trunk's current state.
func (w *Watch) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}
