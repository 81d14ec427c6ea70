package dahdi

import (
	"flag"
	"os"
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
	for _, want := range []string{"fxsks = 1-4", "fxoks = 5-6", "span = 1,1,0,ccs,hdb3,crc4", "bchan = 7-21,23-37", "dchan = 22"} {
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
