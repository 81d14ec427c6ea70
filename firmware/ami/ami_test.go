package ami

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/staskobzar/goami2"
)

// fakeAMI is a scripted manager server for unit tests. handle answers one
// action; it may write anything.
type fakeAMI struct {
	ln     net.Listener
	handle func(w *bufio.Writer, m Message)
	mu     sync.Mutex
	conns  []net.Conn
	logins atomic.Int32
	got    chan Message
}

func newFake(t *testing.T, handle func(w *bufio.Writer, m Message)) *fakeAMI {
	return newFakeAt(t, "127.0.0.1:0", handle)
}

func newFakeAt(t *testing.T, addr string, handle func(w *bufio.Writer, m Message)) *fakeAMI {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAMI{ln: ln, handle: handle, got: make(chan Message, 10000)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			go f.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); f.dropAll() })
	return f
}

func (f *fakeAMI) serve(c net.Conn) {
	w := bufio.NewWriter(c)
	w.WriteString("Asterisk Call Manager/11.0.0\r\n")
	w.Flush()
	r := bufio.NewReader(c)
	var wmu sync.Mutex
	for {
		m, err := Parse(r)
		if err != nil {
			return
		}
		f.got <- m
		if m.Get("Action") == "Login" {
			f.logins.Add(1)
			wmu.Lock()
			fmt.Fprintf(w, "Response: Success\r\nActionID: %s\r\nMessage: Authentication accepted\r\n\r\n", m.Get("ActionID"))
			w.Flush()
			wmu.Unlock()
			continue
		}
		wmu.Lock()
		f.handle(w, m)
		w.Flush()
		wmu.Unlock()
	}
}

func (f *fakeAMI) dropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func dial(t *testing.T, f *fakeAMI, onConnect func(context.Context, *Client)) *Client {
	c, err := Dial(context.Background(), Config{Addr: f.ln.Addr().String(), Username: "u", Secret: "s", OnConnect: onConnect, Keepalive: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestParseKeepsRepeatedHeaders(t *testing.T) {
	raw := "Event: VarSet\r\nVariable: A=1\r\nVariable: B=2\r\nValue: x: y\r\nOutput line without colon\r\n\r\n"
	m, err := Parse(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.All("Variable"); len(got) != 2 || got[0] != "A=1" || got[1] != "B=2" {
		t.Fatalf("Variable = %v", got)
	}
	if m.Get("value") != "x: y" || m[len(m)-1].Value != "Output line without colon" {
		t.Fatalf("%#v", m)
	}
}

func TestCorrelationOutOfOrder(t *testing.T) {
	// Answer actions in reverse order of arrival, in batches of 10.
	var mu sync.Mutex
	var held []Message
	f := newFake(t, func(w *bufio.Writer, m Message) {
		mu.Lock()
		defer mu.Unlock()
		held = append(held, m)
		if len(held) < 10 {
			return
		}
		for i := len(held) - 1; i >= 0; i-- {
			fmt.Fprintf(w, "Response: Success\r\nActionID: %s\r\nEcho: %s\r\n\r\n", held[i].Get("ActionID"), held[i].Get("Value"))
		}
		held = nil
	})
	c := dial(t, f, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := c.Action(context.Background(), "Echo", Header{"Value", fmt.Sprint(i)})
			if err != nil || r.Get("Echo") != fmt.Sprint(i) {
				errs <- fmt.Errorf("action %d got %q, %v", i, r.Get("Echo"), err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestListAction(t *testing.T) {
	f := newFake(t, func(w *bufio.Writer, m Message) {
		id := m.Get("ActionID")
		fmt.Fprintf(w, "Response: Success\r\nActionID: %s\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n", id)
		fmt.Fprintf(w, "Event: Hangup\r\nUniqueid: unrelated\r\n\r\n")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "Event: CoreShowChannel\r\nActionID: %s\r\nUniqueid: u%d\r\n\r\n", id, i)
		}
		fmt.Fprintf(w, "Event: CoreShowChannelsComplete\r\nActionID: %s\r\nEventList: Complete\r\nListItems: 3\r\n\r\n", id)
	})
	c := dial(t, f, nil)
	_, items, err := c.List(context.Background(), "CoreShowChannels")
	if err != nil || len(items) != 3 || items[2].Get("Uniqueid") != "u2" {
		t.Fatalf("list: %v %v", items, err)
	}
	select {
	case ev := <-c.Events():
		if ev.Get("Uniqueid") != "unrelated" {
			t.Fatalf("event %v", ev)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the unrelated event was not delivered")
	}
}

func TestInjectionRefused(t *testing.T) {
	f := newFake(t, func(w *bufio.Writer, m Message) {
		fmt.Fprintf(w, "Response: Success\r\nActionID: %s\r\n\r\n", m.Get("ActionID"))
	})
	c := dial(t, f, nil)
	<-f.got // login
	for _, h := range []Header{
		{"Variable", "FAXBOX_FILE=/x\r\nAction: Command\r\nCommand: core stop now"},
		{"Channel", "PJSIP/100@trunk\nContext: evil"},
		{"Exten\r\nX", "1"},
		{"Variable", "A=\x00"},
		{"ActionID", "mine"},
	} {
		if _, err := c.Action(context.Background(), "Originate", h); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", h, err)
		}
	}
	if _, err := c.Action(context.Background(), "Ping\r\nAction: Command"); !errors.Is(err, ErrInvalid) {
		t.Errorf("action name with CRLF: %v", err)
	}
	c.Action(context.Background(), "Ping")
	select {
	case m := <-f.got:
		if m.Get("Action") != "Ping" {
			t.Fatalf("the server received %v before the Ping: an invalid action was written", m)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no Ping")
	}
}

func TestBackPressureNoDrops(t *testing.T) {
	const n = 20000
	f := newFake(t, func(w *bufio.Writer, m Message) {
		fmt.Fprintf(w, "Response: Success\r\nActionID: %s\r\n\r\n", m.Get("ActionID"))
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "Event: UserEvent\r\nSeq: %d\r\n\r\n", i)
		}
	})
	c, err := Dial(context.Background(), Config{Addr: f.ln.Addr().String(), Username: "u", Secret: "s", EventBuffer: 16, Keepalive: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Action(context.Background(), "Flood")
	for i := 0; i < n; i++ {
		if i%1000 == 0 {
			time.Sleep(5 * time.Millisecond) // a slow consumer
		}
		select {
		case ev := <-c.Events():
			if ev.Get("Seq") != fmt.Sprint(i) {
				t.Fatalf("event %d: got %s", i, ev.Get("Seq"))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d events arrived", i, n)
		}
	}
}

func TestReconnect(t *testing.T) {
	block := make(chan struct{})
	f := newFake(t, func(w *bufio.Writer, m Message) {
		if m.Get("Action") == "Slow" {
			<-block
			return
		}
		fmt.Fprintf(w, "Response: Success\r\nActionID: %s\r\n\r\n", m.Get("ActionID"))
	})
	resync := make(chan struct{}, 4)
	c := dial(t, f, func(ctx context.Context, c *Client) { resync <- struct{}{} })
	<-resync
	errc := make(chan error, 1)
	go func() { _, err := c.Action(context.Background(), "Slow"); errc <- err }()
	time.Sleep(100 * time.Millisecond)
	f.dropAll()
	close(block)
	if err := <-errc; !errors.Is(err, ErrDisconnected) {
		t.Fatalf("pending action: %v, want ErrDisconnected", err)
	}
	select {
	case <-resync:
	case <-time.After(5 * time.Second):
		t.Fatal("no re-sync after the reconnect")
	}
	if _, err := c.Action(context.Background(), "Ping"); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
	if c.Reconnects() != 1 || f.logins.Load() != 2 {
		t.Fatalf("reconnects %d, logins %d", c.Reconnects(), f.logins.Load())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("Event: Hangup\r\nUniqueid: x\r\nCause: 16\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(strings.NewReader(string(b)))
		for i := 0; i < 100; i++ {
			m, err := Parse(r)
			if err != nil {
				return
			}
			_ = m.Get("Event")
			_ = m.All("Variable")
			_ = m.String()
		}
	})
}

// goami2Stream reads a stream as goami2's own client does (lines up to the
// blank line, then goami2.Parse) and counts the messages.
func goami2Stream(data string) (int, error) {
	r := bufio.NewReaderSize(strings.NewReader(data), 64<<10)
	var buf strings.Builder
	n := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return n, nil
		}
		buf.WriteString(line)
		if line == "\r\n" {
			if _, err := goami2.Parse(buf.String()); err != nil {
				return n, err
			}
			n++
			buf.Reset()
		}
	}
}

func oursStream(data string) (int, error) {
	r := bufio.NewReaderSize(strings.NewReader(data), 64<<10)
	n := 0
	for {
		if _, err := Parse(r); err != nil {
			return n, nil
		}
		n++
	}
}

// BenchmarkParse reports events/s for real captured events, side by side
// with github.com/staskobzar/goami2 (v1.7.6) in the same run: both read the
// same stream; each iteration runs each parser three times, alternating
// which goes first, and keeps its best pass (the least disturbed on a
// shared machine).
func BenchmarkParse(b *testing.B) {
	var corpus strings.Builder
	for _, e := range realEvents {
		corpus.WriteString(e)
	}
	const rounds = 2000
	data := strings.Repeat(corpus.String(), rounds)
	n := rounds * len(realEvents)
	for name, f := range map[string]func(string) (int, error){"ours": oursStream, "goami2": goami2Stream} {
		if got, err := f(corpus.String()); err != nil || got != len(realEvents) {
			b.Fatalf("%s reads %d of %d real events: %v", name, got, len(realEvents), err)
		}
	}
	best := func(f func(string) (int, error)) time.Duration {
		t0 := time.Now()
		if got, _ := f(data); got != n {
			b.Fatalf("parsed %d of %d", got, n)
		}
		return time.Since(t0)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	var ours, theirs time.Duration
	for i := 0; i < b.N; i++ {
		bo, bt := time.Duration(1<<62), time.Duration(1<<62)
		for pass := 0; pass < 3; pass++ {
			if pass%2 == 0 {
				bo = min(bo, best(oursStream))
				bt = min(bt, best(goami2Stream))
			} else {
				bt = min(bt, best(goami2Stream))
				bo = min(bo, best(oursStream))
			}
		}
		ours += bo
		theirs += bt
	}
	b.StopTimer()
	eo := float64(n*b.N) / ours.Seconds()
	et := float64(n*b.N) / theirs.Seconds()
	b.ReportMetric(eo, "events/s")
	b.ReportMetric(et, "goami2-events/s")
	b.ReportMetric(eo/et, "x-goami2")
	b.Logf("AMI parser: ours %.0f events/s, goami2 v1.7.6 %.0f events/s: %.2fx", eo, et, eo/et)
}

// TestBackgroundDial: with Background, Dial returns while nothing listens;
// the client connects once the manager comes up, runs OnConnect and serves
// actions. Without it, Dial fails.
func TestBackgroundDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Dial(context.Background(), Config{Addr: addr, Username: "u", Secret: "s"}); err == nil {
		t.Fatal("Dial without Background succeeded with nothing listening")
	}
	connected := make(chan struct{}, 1)
	c, err := Dial(context.Background(), Config{Addr: addr, Username: "u", Secret: "s", Background: true, Keepalive: time.Hour,
		OnConnect: func(context.Context, *Client) { connected <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Connected() {
		t.Fatal("connected to nothing")
	}
	time.Sleep(300 * time.Millisecond)
	newFakeAt(t, addr, func(w *bufio.Writer, m Message) {
		fmt.Fprintf(w, "Response: Success\r\nActionID: %s\r\nPing: Pong\r\n\r\n", m.Get("ActionID"))
	})
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("never connected once the manager was up")
	}
	if !c.Connected() {
		t.Fatal("OnConnect ran but Connected is false")
	}
	if m, err := c.Action(context.Background(), "Ping"); err != nil || m.Get("Ping") != "Pong" {
		t.Fatalf("ping: %v %v", m, err)
	}
}

// OnConnect sees the login it runs for: Reconnects() is already counted
// when it starts, so a re-sync keyed on Reconnects() > 0 is never skipped.
func TestOnConnectSeesItsReconnect(t *testing.T) {
	f := newFake(t, func(w *bufio.Writer, m Message) {
		fmt.Fprintf(w, "Response: Success\r\nActionID: %s\r\n\r\n", m.Get("ActionID"))
	})
	seen := make(chan int64, 64)
	dial(t, f, func(ctx context.Context, c *Client) { seen <- c.Reconnects() })
	for want := int64(0); want <= 20; want++ {
		select {
		case got := <-seen:
			if got != want {
				t.Fatalf("login %d: OnConnect saw Reconnects() = %d", want+1, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("login %d: no OnConnect", want+1)
		}
		f.dropAll()
	}
}
