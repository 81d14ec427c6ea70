package box

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/dahdi"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/linecard/linecardtest"
)

// The box's wiring of the manager interface: its events reach the line
// cards (and through them the engine, the panel and /v1/status), and the
// box runs while Asterisk is not there yet.

// TestDAHDIAlarmsTakeLinesDown: the box reads DAHDI's channel list when it
// connects to the manager interface and again on FullyBooted (chan_dahdi
// loads after the manager), and follows the alarm events: channels
// in alarm leave their line group (line state "down"), the panel's alarm
// input and /v1/status show the alarm, and a cleared alarm puts them back.
func TestDAHDIAlarmsTakeLinesDown(t *testing.T) {
	f := linecardtest.NewAMI(t, linecardtest.Options{NotBooted: true})
	e := startBox(t, func(c *config.Config) {
		c.Asterisk = &config.Asterisk{AMIAddr: f.Addr(), AMIUser: "faxbox", AMISecret: "s3cretpass", SpoolDir: t.TempDir()}
		c.DAHDI = &dahdi.Config{Spans: []dahdi.Span{{Type: "fxo", First: 1, Channels: 4, Group: 1, LineGroup: "pstn"}}}
		if err := c.ResolveDAHDI(); err != nil {
			t.Fatal(err)
		}
	})
	states := func() string {
		var s []string
		for _, l := range e.box.Engine.Lines() {
			if l.Group == "pstn" {
				s = append(s, string(l.State))
			}
		}
		return strings.Join(s, " ")
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for states() != want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := states(); got != want {
			t.Fatalf("pstn lines: %q, want %q", got, want)
		}
	}
	// Connected while Asterisk was still loading: the list failed; the
	// FullyBooted event reads it again.
	time.Sleep(200 * time.Millisecond)
	if got := states(); got != "idle idle idle idle" {
		t.Fatalf("before chan_dahdi is there: %q", got)
	}
	f.Boot()
	waitFor("idle idle idle down")
	if in := e.box.panelInput(nil, ""); !strings.Contains(fmt.Sprint(in.Alarms), "line card alarm") {
		t.Fatalf("panel alarms %v", in.Alarms)
	}
	var st struct {
		Extra map[string]any `json:"extra"`
	}
	e.c.Do(t, "GET", "/v1/status", nil, "", &st)
	if fmt.Sprint(st.Extra["dahdi_alarms"]) != "[channel 2: Red Alarm]" {
		t.Fatalf("status: dahdi_alarms %v", st.Extra["dahdi_alarms"])
	}
	f.Event("Event: SpanAlarm\r\nPrivilege: system,all\r\nSpan: 1\r\nAlarm: Red Alarm\r\n")
	waitFor("down down down down")
	f.Event("Event: SpanAlarmClear\r\nPrivilege: system,all\r\nSpan: 1\r\n")
	f.Event("Event: AlarmClear\r\nPrivilege: system,all\r\nDAHDIChannel: 2\r\n")
	waitFor("idle idle idle idle")
	if in := e.box.panelInput(nil, ""); strings.Contains(fmt.Sprint(in.Alarms), "line card") {
		t.Fatalf("alarm after clear: %v", in.Alarms)
	}
}

// TestBoxStartsBeforeAsterisk: the box starts while its Asterisk does not
// listen yet (boot order, a crashed Asterisk), shows the "asterisk
// unreachable" alarm, and connects when the manager comes up.
func TestBoxStartsBeforeAsterisk(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e := startBox(t, func(c *config.Config) {
		c.Asterisk = &config.Asterisk{AMIAddr: addr, AMIUser: "faxbox", AMISecret: "s3cretpass", SpoolDir: t.TempDir()}
		c.LineGroups = []config.LineGroup{{Name: "sip", Channels: 1, Dial: "PJSIP/%s@trunk"}}
	})
	if in := e.box.panelInput(nil, ""); !strings.Contains(fmt.Sprint(in.Alarms), "asterisk unreachable") {
		t.Fatalf("alarms without Asterisk: %v", in.Alarms)
	}
	linecardtest.NewAMI(t, linecardtest.Options{Addr: addr})
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(fmt.Sprint(e.box.panelInput(nil, "").Alarms), "asterisk unreachable") {
		if time.Now().After(deadline) {
			t.Fatal("still unreachable after the manager came up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
