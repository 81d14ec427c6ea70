package panel

import (
	"strings"
	"testing"
)

// The keypad's Self-test item starts the self-test and then shows how it
// goes, from the box's SelfTest summary.
func TestSelfTestView(t *testing.T) {
	p := New(2, 16)
	in := Input{}
	p.Handle(Event{Key: "enter"}, in)
	p.Handle(Event{Key: "down"}, in)
	p.Handle(Event{Key: "down"}, in)
	if acts := p.Handle(Event{Key: "enter"}, in); len(acts) != 1 || acts[0].Kind != "self_test" {
		t.Fatalf("self-test: %v", acts)
	}
	if s := p.Update(in).Screen; strings.TrimSpace(s[0]) != "Self-test" || strings.TrimSpace(s[1]) != "started" {
		t.Fatalf("before a summary: %q", s)
	}
	for _, sum := range []string{"running", "passed", "failed line.busy"} {
		in.SelfTest = sum
		s := p.Update(in).Screen
		if strings.TrimSpace(s[0]) != "Self-test" || strings.TrimSpace(s[1]) != sum {
			t.Fatalf("%s: %q", sum, s)
		}
	}
}
