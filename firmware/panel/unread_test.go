package panel

import (
	"strings"
	"testing"
)

// TestUnreadFaxes: unread received faxes blink the inbox LED and take the
// status screen's first row; marked read, the screen and LED are as before.
func TestUnreadFaxes(t *testing.T) {
	p := New(2, 16)
	in := Input{IP: "192.0.2.7", QueueDepth: 1}
	if got := LEDs(in)["inbox"]; got != Off {
		t.Errorf("inbox LED without unread faxes: %s", got)
	}
	before := p.Update(in).Screen
	if !strings.HasPrefix(before[0], "faxbox 192.0.2.7") {
		t.Fatalf("status screen: %q", before)
	}
	in.Unread = 3
	out := p.Update(in)
	if out.LEDs["inbox"] != SlowBlink {
		t.Errorf("inbox LED with 3 unread: %s", out.LEDs["inbox"])
	}
	if out.Screen[0] != "3 new faxes     " || !strings.HasPrefix(out.Screen[1], "Queue 1 Calls 0") {
		t.Errorf("status screen with 3 unread: %q", out.Screen)
	}
	big := New(4, 20)
	in.Unread, in.LastResult = 1, "0301 delivered"
	if s := big.Update(in).Screen; strings.TrimSpace(s[0]) != "1 new fax" || strings.TrimSpace(s[2]) != "0301 delivered" || strings.TrimSpace(s[3]) != "faxbox 192.0.2.7" {
		t.Errorf("4-row status screen with 1 unread: %q", s)
	}
	in.Unread = 0
	if s := p.Update(in).Screen; s[0] != before[0] || LEDs(in)["inbox"] != Off {
		t.Errorf("after reading: %q, inbox LED %s", s, LEDs(in)["inbox"])
	}
}
