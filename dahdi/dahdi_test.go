package dahdi

import (
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/faxbox/faxbox/firmware/ami"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestGolden(t *testing.T) {
	cfg := Config{ToneZone: "de", Spans: []Span{
		{Type: "fxo", First: 1, Channels: 4, Group: 1},
		{Type: "fxs", First: 5, Channels: 2, Group: 3},
		{Type: "e1", First: 7, Group: 2, CRC4: true, Timing: 1},
	}}
	sys, ch, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"system.conf": sys, "chan_dahdi.conf": ch} {
		golden := "testdata/" + name + ".golden"
		if *update {
			os.WriteFile(golden, got, 0o644)
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil || string(want) != string(got) {
			t.Errorf("%s differs from %s (%v):\n%s", name, golden, err, got)
		}
	}
	s := string(sys)
	for _, want := range []string{"fxsks = 1-4", "fxoks = 5-6", "span = 3,1,0,ccs,hdb3,crc4", "bchan = 7-21,23-37", "dchan = 22"} {
		if !strings.Contains(s, want) {
			t.Errorf("system.conf lacks %q", want)
		}
	}
	c := string(ch)
	for _, want := range []string{"signalling = fxs_ks", "signalling = fxo_ks", "signalling = pri_cpe", "switchtype = euroisdn"} {
		if !strings.Contains(c, want) {
			t.Errorf("chan_dahdi.conf lacks %q", want)
		}
	}
}

func TestRefusals(t *testing.T) {
	for name, cfg := range map[string]Config{
		"overlap":        {Spans: []Span{{Type: "fxo", First: 1, Channels: 4}, {Type: "fxs", First: 3, Channels: 2}}},
		"bad type":       {Spans: []Span{{Type: "bri", First: 1, Channels: 2}}},
		"newline zone":   {ToneZone: "de\nloadzone=us", Spans: []Span{{Type: "fxo", First: 1, Channels: 1}}},
		"no channels":    {Spans: []Span{{Type: "fxo", First: 1}}},
		"context inject": {Context: "x]\n[evil", Spans: []Span{{Type: "fxo", First: 1, Channels: 1}}},
	} {
		if _, _, err := Render(cfg); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
}

func TestState(t *testing.T) {
	s := NewState()
	s.Load([]ami.Message{
		{{Key: "Event", Value: "DAHDIShowChannels"}, {Key: "DAHDIChannel", Value: "1"}, {Key: "Alarm", Value: "No Alarm"}},
		{{Key: "Event", Value: "DAHDIShowChannels"}, {Key: "DAHDIChannel", Value: "2"}, {Key: "Alarm", Value: "Red Alarm"}},
	})
	s.Handle(ami.Message{{Key: "Event", Value: "SpanAlarm"}, {Key: "Span", Value: "1"}, {Key: "Alarm", Value: "Red Alarm"}})
	if got := strings.Join(s.Alarms(), ";"); got != "channel 2: Red Alarm;span 1: Red Alarm" {
		t.Fatalf("alarms: %s", got)
	}
	s.Handle(ami.Message{{Key: "Event", Value: "AlarmClear"}, {Key: "DAHDIChannel", Value: "2"}})
	s.Handle(ami.Message{{Key: "Event", Value: "SpanAlarmClear"}, {Key: "Span", Value: "1"}})
	if len(s.Alarms()) != 0 {
		t.Fatalf("after clear: %v", s.Alarms())
	}
}

// layout is a board with a 4-port FXO card, a 2-port FXS card and an E1.
var layout = Config{ToneZone: "de", Spans: []Span{
	{Type: "fxo", First: 1, Channels: 4, Group: 1, LineGroup: "analog"},
	{Type: "fxs", First: 5, Channels: 2, Group: 3},
	{Type: "e1", First: 7, Group: 2, CRC4: true, Timing: 1},
}}

func TestLineGroups(t *testing.T) {
	got, err := LineGroups(layout)
	if err != nil {
		t.Fatal(err)
	}
	want := []LineGroup{{Name: "analog", Channels: 4, Dial: "DAHDI/g1/%s"}, {Name: "dahdi2", Channels: 30, Dial: "DAHDI/g2/%s"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("line groups %+v, want %+v", got, want)
	}
	// Two cards in one line group add up; one name for two dial groups is refused.
	two := Config{Spans: []Span{{Type: "fxo", First: 1, Channels: 4, Group: 1, LineGroup: "pstn"}, {Type: "fxo", First: 5, Channels: 4, Group: 1, LineGroup: "pstn"}}}
	if got, err := LineGroups(two); err != nil || len(got) != 1 || got[0].Channels != 8 {
		t.Fatalf("two cards: %+v %v", got, err)
	}
	two.Spans[1].Group = 2
	if _, err := LineGroups(two); err == nil {
		t.Fatal("one line group over two dial groups accepted")
	}
}

func TestDown(t *testing.T) {
	s := NewState()
	if d := s.Down(layout); len(d) != 0 {
		t.Fatalf("nothing known, down %v", d)
	}
	s.Load([]ami.Message{
		{{Key: "Event", Value: "DAHDIShowChannels"}, {Key: "DAHDIChannel", Value: "2"}, {Key: "Alarm", Value: "Red Alarm"}, {Key: "DND", Value: "Disabled"}},
		{{Key: "Event", Value: "DAHDIShowChannels"}, {Key: "DAHDIChannel", Value: "3"}, {Key: "Alarm", Value: "No Alarm"}, {Key: "DND", Value: "Enabled"}},
		{{Key: "Event", Value: "DAHDIShowChannels"}, {Key: "DAHDIChannel", Value: "5"}, {Key: "Alarm", Value: "Red Alarm"}},
	})
	if d := s.Down(layout); !reflect.DeepEqual(d, map[string]int{"analog": 2}) {
		t.Fatalf("down %v (FXS port 5 must not count)", d)
	}
	// The E1 is DAHDI span 3: its alarm takes all 30 calls away.
	s.Handle(ami.Message{{Key: "Event", Value: "SpanAlarm"}, {Key: "Span", Value: "3"}, {Key: "Alarm", Value: "Red Alarm"}})
	s.Handle(ami.Message{{Key: "Event", Value: "DNDState"}, {Key: "DAHDIChannel", Value: "3"}, {Key: "Status", Value: "disabled"}})
	if d := s.Down(layout); !reflect.DeepEqual(d, map[string]int{"analog": 1, "dahdi2": 30}) {
		t.Fatalf("down %v", d)
	}
	s.Handle(ami.Message{{Key: "Event", Value: "SpanAlarmClear"}, {Key: "Span", Value: "3"}})
	s.Handle(ami.Message{{Key: "Event", Value: "Alarm"}, {Key: "DAHDIChannel", Value: "9"}, {Key: "Alarm", Value: "Yellow Alarm"}})
	if d := s.Down(layout); !reflect.DeepEqual(d, map[string]int{"analog": 1, "dahdi2": 1}) {
		t.Fatalf("down %v", d)
	}
}

// TestPRISide renders an E1's PRI side (cpe by default, net on request)
// and refuses any other side, or a side on a span that is not an E1.
func TestPRISide(t *testing.T) {
	for side, want := range map[PRISide]string{"": "signalling = pri_cpe\n", PRICPE: "signalling = pri_cpe\n", PRINet: "signalling = pri_net\n"} {
		_, ch, err := Render(Config{Spans: []Span{{Type: "e1", First: 1, Group: 1, PRI: side}}})
		if err != nil {
			t.Fatalf("pri %q: %v", side, err)
		}
		if !strings.Contains(string(ch), want) || strings.Count(string(ch), "signalling = ") != 1 {
			t.Errorf("pri %q: chan_dahdi.conf lacks %q:\n%s", side, want, ch)
		}
	}
	for name, sp := range map[string]Span{
		"unknown side": {Type: "e1", First: 1, PRI: "network"},
		"upper case":   {Type: "e1", First: 1, PRI: "NET"},
		"on fxo":       {Type: "fxo", First: 1, Channels: 4, PRI: PRICPE},
	} {
		err := Config{Spans: []Span{sp}}.Validate()
		if err == nil || !strings.Contains(err.Error(), `pri "`) {
			t.Errorf("%s: %v, want a pri error", name, err)
		}
	}
	var sp Span
	if err := json.Unmarshal([]byte(`{"type": "e1", "first": 32, "pri": "net"}`), &sp); err != nil || sp.PRI != PRINet {
		t.Fatalf("json pri: %+v %v", sp, err)
	}
}

// TestDynamicE1 renders two E1 spans on joined loopback dynamic spans (a
// box and its far end): a dynamic line of 31 channels each, no span line
// (dahdi_cfg would apply it before the span exists), the D-channel on
// timeslot 16 of each, the far end on the network side.
func TestDynamicE1(t *testing.T) {
	sys, ch, err := Render(Config{Spans: []Span{
		{Type: "e1", First: 1, Group: 1, LineGroup: "trunk", Dynamic: "loc,1:0", PRI: PRICPE},
		{Type: "e1", First: 32, Group: 2, Dynamic: "loc,1:1", PRI: PRINet},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, c := string(sys), string(ch)
	for _, want := range []string{"dynamic = loc,1:0,31,0\n", "dynamic = loc,1:1,31,0\n", "bchan = 1-15,17-31\n", "dchan = 16\n", "bchan = 32-46,48-62\n", "dchan = 47\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("system.conf lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "\nspan =") {
		t.Errorf("system.conf has a span line for a dynamic span:\n%s", s)
	}
	for _, want := range []string{"signalling = pri_cpe\nswitchtype = euroisdn\nresetinterval = never\ngroup = 1\nchannel => 1-15,17-31\n",
		"signalling = pri_net\nswitchtype = euroisdn\nresetinterval = never\ngroup = 2\nchannel => 32-46,48-62\n"} {
		if !strings.Contains(c, want) {
			t.Errorf("chan_dahdi.conf lacks %q:\n%s", want, c)
		}
	}
}
