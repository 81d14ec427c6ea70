// Package linecardtest is a scripted Asterisk manager interface with a
// DAHDI line card, for tests of what follows the card over AMI (package
// linecard, and the box that wires it). It speaks the real protocol over
// TCP, so the code under test uses the real ami.Client.
package linecardtest

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/faxbox/faxbox/firmware/ami"
)

// Options shape an AMI.
type Options struct {
	// Addr is the address to listen on (127.0.0.1:0 when empty).
	Addr string
	// NotBooted: DAHDIShowChannels is an unknown action until Boot
	// (chan_dahdi not loaded yet while Asterisk starts).
	NotBooted bool
	// OnLogin is a raw event (header lines ending in CRLF) sent right
	// after every successful login.
	OnLogin string
}

// AMI is a manager interface whose DAHDIShowChannels lists four FXO
// channels, channel 2 in red alarm; every other action, Login included,
// succeeds. It stops when the test ends.
type AMI struct {
	ln      net.Listener
	onLogin string
	live    atomic.Int32

	mu     sync.Mutex
	conns  []*bufio.Writer
	lists  int
	notYet bool
}

// NewAMI listens and serves until the test ends.
func NewAMI(t testing.TB, o Options) *AMI {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &AMI{ln: ln, notYet: o.NotBooted, onLogin: o.OnLogin}
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

// Addr is the address the manager listens on.
func (f *AMI) Addr() string { return f.ln.Addr().String() }

// Live counts the open manager connections.
func (f *AMI) Live() int { return int(f.live.Load()) }

// Lists counts the DAHDIShowChannels actions answered with the list.
func (f *AMI) Lists() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists
}

// Boot makes chan_dahdi known and sends FullyBooted.
func (f *AMI) Boot() {
	f.mu.Lock()
	f.notYet = false
	f.mu.Unlock()
	f.Event("Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n")
}

// Event sends a raw event (header lines ending in CRLF) to every
// connection.
func (f *AMI) Event(raw string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.conns {
		w.WriteString(raw + "\r\n")
		w.Flush()
	}
}

func (f *AMI) serve(c net.Conn) {
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
		f.mu.Lock()
		f.answer(w, m)
		w.Flush()
		f.mu.Unlock()
	}
}

// answer writes the response to one action; it runs under f.mu.
func (f *AMI) answer(w *bufio.Writer, m ami.Message) {
	id := m.Get("ActionID")
	if m.Get("Action") != "DAHDIShowChannels" {
		fmt.Fprintf(w, "Response: Success\r\nActionID: %s\r\nMessage: ok\r\n\r\n", id)
		if m.Get("Action") == "Login" && f.onLogin != "" {
			w.WriteString(f.onLogin + "\r\n")
		}
		return
	}
	if f.notYet {
		fmt.Fprintf(w, "Response: Error\r\nActionID: %s\r\nMessage: Invalid/unknown command: DAHDIShowChannels. Use Action: ListCommands to show available commands.\r\n\r\n", id)
		return
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
}
