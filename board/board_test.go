package board

import (
	"strings"
	"testing"
)

func TestBuiltInProfiles(t *testing.T) {
	names := Names()
	if len(names) < 2 {
		t.Fatalf("profiles: %v", names)
	}
	for _, n := range names {
		p, err := Load(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if p.LEDs["power"].Chip == "" || p.LCD == nil || len(p.LCD.KeyMap()) == 0 {
			t.Errorf("%s: incomplete: %+v", n, p)
		}
	}
	if p, _ := Load("pc-x86"); len(p.DAHDI) != 1 || p.DAHDI[0].Type != "fxo" || p.DAHDI[0].Channels != 4 {
		t.Errorf("pc-x86: its FXO card: %+v", p.DAHDI)
	}
	if _, err := Load("nosuch"); err == nil || !strings.Contains(err.Error(), "pc-x86") {
		t.Errorf("unknown board: %v", err)
	}
}

func TestValidation(t *testing.T) {
	for name, c := range map[string]struct{ json, want string }{
		"line used twice": {`{"name":"x","leds":{"power":{"chip":"gpiochip0","line":1}},"buttons":{"retry":{"chip":"gpiochip0","line":1}}}`, "used twice"},
		"unknown chip":    {`{"name":"x","leds":{"power":{"chip":"gpio chip!","line":1}}}`, "unknown chip"},
		"unknown LED":     {`{"name":"x","leds":{"blinky":{"chip":"gpiochip0","line":1}}}`, "unknown LED"},
		"bad LCD size":    {`{"name":"x","lcd":{"device":"/dev/ttyUSB0","baud":9600,"rows":5,"cols":40}}`, "16x2 to 20x4"},
		"bad baud":        {`{"name":"x","lcd":{"device":"/dev/ttyUSB0","baud":12345,"rows":2,"cols":16}}`, "baud"},
		"bad key":         {`{"name":"x","lcd":{"device":"/dev/ttyUSB0","baud":9600,"rows":2,"cols":16,"keys":{"Z":"fire"}}}`, "A to Y"},
		"unknown field":   {`{"name":"x","ledz":{}}`, "unknown field"},
		"dahdi overlap":   {`{"name":"x","dahdi":[{"type":"fxo","first":1,"channels":4},{"type":"fxo","first":4,"channels":4}]}`, "channel 4 used twice"},
	} {
		_, err := Parse([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", name, err, c.want)
		}
	}
}
