package box

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faxbox/faxbox/dahdi"
	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/config"
)

// dahdiAMI is a manager interface that knows DAHDIShowChannels (channel 2
// of the FXO card in red alarm) and can push events; every other action
// succeeds.
type dahdiAMI struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*bufio.Writer
	lists int
	// notYet: DAHDIShowChannels is unknown until boot() (chan_dahdi not
	// loaded yet while Asterisk starts).
	notYet bool
	// onLogin is sent right after a successful login.
	onLogin string
	// live counts open connections.
	live atomic.Int32
}

// boot makes chan_dahdi known and sends FullyBooted.
func (f *dahdiAMI) boot() {
	f.mu.Lock()
	f.notYet = false
	f.mu.Unlock()
	f.event("Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n")
}

func newDahdiAMI(t *testing.T) *dahdiAMI { return newDahdiAMIAt(t, "127.0.0.1:0") }

func newDahdiAMIAt(t *testing.T, addr string) *dahdiAMI {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &dahdiAMI{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go f.serve(c)
		}
	}()
	return f
}

func (f *dahdiAMI) serve(c net.Conn) {
	f.live.Add(1)
	defer f.live.Add(-1)
	w := bufio.NewWriter(c)
	f.mu.Lock()
	f.conns = append(f.conns, w)
	w.WriteString("Asterisk Call Manager/9.0.0\r\n")
	w.Flush()
	f.mu.Unlock()
	r := bufio.NewReader(c)
	for {
		m, err := ami.Parse(r)
		if err != nil {
			return
		}
		id := m.Get("ActionID")
		f.mu.Lock()
		switch m.Get("Action") {
		case "DAHDIShowChannels":
			if f.notYet {
				fmt.Fprintf(w, "Response: Error\r\nActionID: %s\r\nMessage: Invalid/unknown command: DAHDIShowChannels. Use Action: ListCommands to show available commands.\r\n\r\n", id)
				break
			}
			f.lists++
			fmt.Fprintf(w, "Response: Success\r\nActionID: %s\r\nEventList: start\r\nMessage: DAHDI channel status will follow\r\n\r\n", id)
			for ch := 1; ch <= 4; ch++ {
				alarm := "No Alarm"
				if ch == 2 {
					alarm = "Red Alarm"
				}
				fmt.Fprintf(w, "Event: DAHDIShowChannels\r\nActionID: %s\r\nDAHDIChannel: %d\r\nSignalling: FXS Kewlstart\r\nSignallingCode: 1\r\nContext: faxbox-receive\r\nDND: Disabled\r\nAlarm: %s\r\nDescription: \r\n\r\n", id, ch, alarm)
			}
			fmt.Fprintf(w, "Event: DAHDIShowChannelsComplete\r\nActionID: %s\r\nEventList: Complete\r\nListItems: 4\r\nItems: 4\r\n\r\n", id)
		default:
			fmt.Fprintf(w, "Response: Success\r\nActionID: %s\r\nMessage: ok\r\n\r\n", id)
			if m.Get("Action") == "Login" && f.onLogin != "" {
				w.WriteString(f.onLogin + "\r\n")
			}
		}
		w.Flush()
		f.mu.Unlock()
	}
}

// event sends an event to every connection.
func (f *dahdiAMI) event(raw string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.conns {
		w.WriteString(raw + "\r\n")
		w.Flush()
	}
}

// TestDAHDIAlarmsTakeLinesDown: the box reads DAHDI's channel list when it
// connects to the manager interface and again on FullyBooted (chan_dahdi
// loads after the manager), and follows the alarm events: channels
// in alarm leave their line group (line state "down"), the panel's alarm
// input and /v1/status show the alarm, and a cleared alarm puts them back.
func TestDAHDIAlarmsTakeLinesDown(t *testing.T) {
	f := newDahdiAMI(t)
	f.notYet = true
	e := startBox(t, func(c *config.Config) {
		c.Asterisk = &config.Asterisk{AMIAddr: f.ln.Addr().String(), AMIUser: "faxbox", AMISecret: "s3cretpass", SpoolDir: t.TempDir()}
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
	f.boot()
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
	f.event("Event: SpanAlarm\r\nPrivilege: system,all\r\nSpan: 1\r\nAlarm: Red Alarm\r\n")
	waitFor("down down down down")
	f.event("Event: SpanAlarmClear\r\nPrivilege: system,all\r\nSpan: 1\r\n")
	f.event("Event: AlarmClear\r\nPrivilege: system,all\r\nDAHDIChannel: 2\r\n")
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
	newDahdiAMIAt(t, addr)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(fmt.Sprint(e.box.panelInput(nil, "").Alarms), "asterisk unreachable") {
		if time.Now().After(deadline) {
			t.Fatal("still unreachable after the manager came up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
