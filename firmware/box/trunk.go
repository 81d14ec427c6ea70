package box

import (
	"sync"

	"github.com/faxbox/faxbox/firmware/ami"
)

// trunkWatch follows the SIP trunk's qualify result from Asterisk's
// ContactStatus events (a system-class event: the rendered manager user
// reads them when the trunk is qualified): Unreachable raises the panel's
// "trunk unqualified" alarm, Reachable clears it. Asterisk sends the event
// only when the status changes, so after faxbox (re)starts the state is
// "unknown" until the next change.
type trunkWatch struct {
	aor string

	mu    sync.Mutex
	state string // unknown|reachable|unreachable
}

func newTrunkWatch(aor string) *trunkWatch { return &trunkWatch{aor: aor, state: "unknown"} }

// handle takes one AMI event; it reports whether it was the trunk's status.
func (w *trunkWatch) handle(m ami.Message) bool {
	if m.Event() != "ContactStatus" || m.Get("AOR") != w.aor {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch m.Get("ContactStatus") {
	case "Reachable":
		w.state = "reachable"
	case "Unreachable":
		w.state = "unreachable"
	case "Removed", "Unknown", "NonQualified":
		w.state = "unknown"
	}
	return true
}

// State is unknown, reachable or unreachable.
func (w *trunkWatch) State() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}
