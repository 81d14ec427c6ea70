package panel

import (
	"strings"
	"testing"
	"time"
)

func TestPatternLevels(t *testing.T) {
	for _, c := range []struct {
		p    Pattern
		at   []time.Duration
		want []bool
	}{
		{Off, []time.Duration{0, 500 * time.Millisecond}, []bool{false, false}},
		{On, []time.Duration{0, 999 * time.Millisecond}, []bool{true, true}},
		{SlowBlink, []time.Duration{0, 499 * time.Millisecond, 500 * time.Millisecond, time.Second}, []bool{true, true, false, true}},
		{FastBlink, []time.Duration{0, 124 * time.Millisecond, 125 * time.Millisecond, 250 * time.Millisecond}, []bool{true, true, false, true}},
		{Heartbeat, []time.Duration{0, 150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond}, []bool{true, false, true, false, true}},
	} {
		for i, at := range c.at {
			if got := c.p.Level(at); got != c.want[i] {
				t.Errorf("%s at %s = %v", c.p, at, got)
			}
		}
	}
}

func TestLEDs(t *testing.T) {
	in := Input{QueueDepth: 2, Alarms: []Alarm{AsteriskDown}, Lines: []Line{
		{ID: "trunk/1", State: "idle"}, {ID: "trunk/2", State: "sending", JobID: "j", Page: 2, Pages: 5},
		{ID: "trunk/3", State: "ringing", JobID: "k"}, {ID: "trunk/4", State: "busied_out"}, {ID: "trunk/5", State: "voice", JobID: "c"}}}
	got := LEDs(in)
	want := map[string]Pattern{"power": SlowBlink, "alarm": FastBlink, "activity": Heartbeat,
		"line:trunk/1": Off, "line:trunk/2": SlowBlink, "line:trunk/3": FastBlink, "line:trunk/4": Heartbeat, "line:trunk/5": On}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
	quiet := LEDs(Input{})
	if quiet["power"] != On || quiet["alarm"] != Off || quiet["activity"] != Off {
		t.Errorf("idle box: %v", quiet)
	}
}

func TestScreensAndMenu(t *testing.T) {
	p := New(2, 16)
	in := Input{IP: "192.0.2.7", QueueDepth: 3, LastResult: "fx_1 delivered", Lines: []Line{{ID: "trunk/1", State: "sending", JobID: "j", Page: 2, Pages: 5}}}
	out := p.Update(in)
	if out.Screen[0] != "faxbox 192.0.2.7" || out.Screen[1] != "Queue 3 Calls 1 " {
		t.Fatalf("status page: %q", out.Screen)
	}
	for _, row := range out.Screen {
		if len(row) != 16 {
			t.Fatalf("row %q is not 16 wide", row)
		}
	}
	p.Handle(Event{Button: "page"}, in)
	if s := p.Update(in).Screen; strings.TrimSpace(s[0]) != "L1 sending 2/5" {
		t.Fatalf("lines page: %q", s)
	}
	p.Handle(Event{Button: "page"}, in)
	if s := p.Update(in).Screen; strings.TrimSpace(s[1]) != "fx_1 delivered" {
		t.Fatalf("last result page: %q", s)
	}
	p.Handle(Event{Key: "enter"}, in)
	if s := p.Update(in).Screen; s[0] != ">Line status    " {
		t.Fatalf("menu: %q", s)
	}
	p.Handle(Event{Key: "down"}, in)
	p.Handle(Event{Key: "down"}, in)
	if acts := p.Handle(Event{Key: "enter"}, in); len(acts) != 1 || acts[0].Kind != "self_test" {
		t.Fatalf("self-test: %v", acts)
	}
	p.Handle(Event{Key: "back"}, in)
	p.Handle(Event{Key: "up"}, in)
	p.Handle(Event{Key: "up"}, in)
	p.Handle(Event{Key: "enter"}, in)
	if s := p.Update(in).Screen; strings.TrimSpace(s[0]) != "L1 sending" {
		t.Fatalf("line status view: %q", s)
	}
}

func TestButtons(t *testing.T) {
	p := New(2, 16)
	in := Input{Lines: []Line{{ID: "trunk/1", State: "idle"}, {ID: "trunk/2", State: "busied_out"}}}
	for _, c := range []struct {
		ev   Event
		want []Action
	}{
		{Event{Button: "cancel", Line: "trunk/1"}, []Action{{Kind: "cancel_line", Line: "trunk/1"}}},
		{Event{Button: "retry"}, []Action{{Kind: "retry_failed"}}},
		{Event{Button: "busy", Line: "trunk/1"}, []Action{{Kind: "set_busy", Line: "trunk/1", Busy: true}}},
		{Event{Button: "busy", Line: "trunk/2"}, []Action{{Kind: "set_busy", Line: "trunk/2", Busy: false}}},
		{Event{Button: "reset"}, nil},
		{Event{Button: "reset", Long: true}, []Action{{Kind: "reset_network"}}},
	} {
		got := p.Handle(c.ev, in)
		if len(got) != len(c.want) || len(got) > 0 && got[0] != c.want[0] {
			t.Errorf("%+v → %v, want %v", c.ev, got, c.want)
		}
	}
}
