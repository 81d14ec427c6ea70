package xmpp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
	"mellium.im/xmpp/stanza"
)

func testConfig() config.XMPP {
	return config.XMPP{JID: "faxbox@example.org", Password: "pw", Nick: "faxbox", Timeout: config.Duration(time.Second),
		FirstRetry: config.Duration(5 * time.Second), MaxBackoff: config.Duration(40 * time.Second), GiveUpAfter: config.Duration(time.Hour),
		Rooms: []string{"office@conference.example.org"}, Notify: []string{"Boss@Example.org", "boss@example.org"}}
}

func TestOutbox(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	out := Outbox(testConfig(), func() time.Time { return now })
	j := &job.Job{ID: "fx_1", Kind: job.KindFax, To: "102", NotifyXMPP: "clerk@example.org",
		Attempts: []job.Attempt{failedAttempt(failure.LineBusy)}, Error: job.NewError(failure.LineBusy, "")}
	if ds := out(j, []job.Event{job.EventFaxAttemptFailed}); len(ds) != 0 {
		t.Fatalf("attempt_failed made %d deliveries; only final events notify", len(ds))
	}
	ds := out(j, []job.Event{job.EventFaxAttemptFailed, job.EventFaxFailed})
	var urls []string
	for _, d := range ds {
		urls = append(urls, d.URL)
		if d.Method != Method || d.JobID != "fx_1" || d.Event != job.EventFaxFailed || !d.NextAt.Equal(now) ||
			string(d.Body) != "Fax to 102 failed: the line was busy\njob fx_1" {
			t.Errorf("delivery %+v", d)
		}
		if tg, err := ParseTarget(d.URL); err != nil || tg.URI() != d.URL {
			t.Errorf("ParseTarget(%s) = %v, %v", d.URL, tg, err)
		}
	}
	want := "xmpp:office@conference.example.org?join xmpp:boss@example.org xmpp:clerk@example.org"
	if strings.Join(urls, " ") != want {
		t.Fatalf("targets %v, want %s", urls, want)
	}
	if ds[0].ID >= ds[1].ID || ds[1].ID >= ds[2].ID {
		t.Errorf("ids do not sort in creation order: %s %s %s", ds[0].ID, ds[1].ID, ds[2].ID)
	}
	if ds := Outbox(config.XMPP{}, time.Now)(j, []job.Event{job.EventFaxFailed}); len(ds) != 0 {
		t.Errorf("no account, yet %d deliveries", len(ds))
	}
	for _, u := range []string{"https://example.org", "xmpp:a@example.org\r\n<x/>", "xmpp:a@example.org/res", "xmpp:room@example.org?join&x"} {
		if _, err := ParseTarget(u); err == nil {
			t.Errorf("ParseTarget(%q) accepted", u)
		}
	}
}

// fakeStore records what the client did with each delivery.
type fakeStore struct {
	mu        sync.Mutex
	delivered []string
	dead      []string
	updates   int
}

func (s *fakeStore) UpdateDelivery(*store.Delivery) error {
	s.mu.Lock()
	s.updates++
	s.mu.Unlock()
	return nil
}
func (s *fakeStore) Delivered(d *store.Delivery, dead bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dead {
		s.dead = append(s.dead, d.ID)
	} else {
		s.delivered = append(s.delivered, d.ID)
	}
	return nil
}

func (s *fakeStore) state() (delivered, dead []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.delivered...), append([]string(nil), s.dead...)
}

// fakeServer hands out fake sessions while up; sessions record messages
// and fail as told.
type fakeServer struct {
	mu    sync.Mutex
	up    bool
	dials int
	sent  []string         // "uri|id|text"
	fail  map[string]error // target URI → error of Send
	conns []*fakeConn
}

type fakeConn struct {
	srv  *fakeServer
	done chan struct{}
	once sync.Once
}

func (s *fakeServer) dial(context.Context) (Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dials++
	if !s.up {
		return nil, errors.New("xmpp: connect: connection refused")
	}
	c := &fakeConn{srv: s, done: make(chan struct{})}
	s.conns = append(s.conns, c)
	return c, nil
}

func (s *fakeServer) set(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.up = up
	if !up {
		for _, c := range s.conns {
			c.Close()
		}
	}
}

func (s *fakeServer) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sent...)
}

func (c *fakeConn) Send(_ context.Context, t Target, id, text string) error {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if closed(c.done) {
		return errors.New("xmpp: send: use of closed connection")
	}
	if err := c.srv.fail[t.URI()]; err != nil {
		return err
	}
	c.srv.sent = append(c.srv.sent, t.URI()+"|"+id+"|"+text)
	return nil
}
func (c *fakeConn) Done() <-chan struct{} { return c.done }
func (c *fakeConn) Close() error          { c.once.Do(func() { close(c.done) }); return nil }

// waitFor polls cond (real time), advancing the fake clock by step whenever
// the client sleeps on a timer.
func waitFor(t *testing.T, clk *clock.Fake, step time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if step > 0 && clk.Pending() > 0 {
			clk.Advance(step)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func newTestClient(t *testing.T, srv *fakeServer) (*Client, *fakeStore, *clock.Fake) {
	clk := clock.NewFake(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	st := &fakeStore{}
	c := New(testConfig(), st, clk, srv.dial, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.Start()
	t.Cleanup(c.Close)
	return c, st, clk
}

func delivery(id, uri, text string, at time.Time) *store.Delivery {
	return &store.Delivery{ID: id, JobID: "fx_" + id, Method: Method, URL: uri, Body: []byte(text), CreatedAt: at, NextAt: at}
}

// TestClientReconnectsWithBackoff: with the server down the client tries
// again after 5 s, 10 s, 20 s, 40 s, 40 s (status: not connected, the
// error, queued); once it is up the queue goes out in order and is removed
// from the store.
func TestClientReconnectsWithBackoff(t *testing.T) {
	srv := &fakeServer{}
	c, st, clk := newTestClient(t, srv)
	t0 := clk.Now()
	c.Enqueue([]*store.Delivery{delivery("b", "xmpp:boss@example.org", "two", t0), delivery("a", "xmpp:office@conference.example.org?join", "one", t0),
		{ID: "w", Method: "POST", URL: "http://x"}})
	var gaps []time.Duration
	last := t0
	for want := 1; want <= 6; want++ {
		waitFor(t, clk, 0, "a dial", func() bool { srv.mu.Lock(); defer srv.mu.Unlock(); return srv.dials >= want && clk.Pending() > 0 })
		s := c.Status()
		if s.Connected || s.Queued != 2 || !strings.Contains(s.LastError, "connection refused") || s.NextConnect == nil {
			t.Fatalf("status while down: %+v", s)
		}
		gaps = append(gaps, s.NextConnect.Sub(last))
		last = *s.NextConnect
		clk.Advance(s.NextConnect.Sub(clk.Now()))
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second, 40 * time.Second}
	if fmt.Sprint(gaps) != fmt.Sprint(want) {
		t.Fatalf("reconnect waits %v, want %v", gaps, want)
	}
	srv.set(true)
	waitFor(t, clk, 40*time.Second, "the queue sent", func() bool { d, _ := st.state(); return len(d) == 2 })
	got := srv.messages()
	if strings.Join(got, " ; ") != "xmpp:office@conference.example.org?join|a|one ; xmpp:boss@example.org|b|two" {
		t.Fatalf("sent %q", got)
	}
	if s := c.Status(); !s.Connected || s.Queued != 0 || s.Sent != 2 || s.NextConnect != nil {
		t.Fatalf("status after: %+v", s)
	}
}

// TestClientConnectionLost: a session that breaks mid-send is dropped, the
// message waits its backoff and goes out on the next session; nothing is
// lost or sent twice.
func TestClientConnectionLost(t *testing.T) {
	srv := &fakeServer{up: true, fail: map[string]error{}}
	c, st, clk := newTestClient(t, srv)
	waitFor(t, clk, 0, "connected", func() bool { return c.Status().Connected })
	srv.set(false) // the server goes away
	t0 := clk.Now()
	c.Enqueue([]*store.Delivery{delivery("a", "xmpp:boss@example.org", "one", t0)})
	waitFor(t, clk, 0, "the failure noticed", func() bool { s := c.Status(); return !s.Connected && s.NextConnect != nil })
	srv.set(true)
	waitFor(t, clk, 5*time.Second, "sent", func() bool { d, _ := st.state(); return len(d) == 1 })
	if got := srv.messages(); len(got) != 1 || got[0] != "xmpp:boss@example.org|a|one" {
		t.Fatalf("sent %q", got)
	}
	srv.mu.Lock()
	dials := srv.dials
	srv.mu.Unlock()
	if dials < 2 {
		t.Fatalf("%d dials; want a new session after the loss", dials)
	}
}

// TestClientMessageRefused: a stanza error keeps the session, retries the
// message with backoff while the others go out, and gives it up as a dead
// letter after give_up_after.
func TestClientMessageRefused(t *testing.T) {
	forbidden := stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden}
	srv := &fakeServer{up: true, fail: map[string]error{"xmpp:closed@conference.example.org?join": forbidden}}
	c, st, clk := newTestClient(t, srv)
	t0 := clk.Now()
	c.Enqueue([]*store.Delivery{delivery("a", "xmpp:closed@conference.example.org?join", "one", t0), delivery("b", "xmpp:boss@example.org", "two", t0)})
	waitFor(t, clk, 0, "the other message", func() bool { d, _ := st.state(); return len(d) == 1 })
	if d, _ := st.state(); d[0] != "b" {
		t.Fatalf("delivered %v", d)
	}
	waitFor(t, clk, 10*time.Minute, "the dead letter", func() bool { _, dead := st.state(); return len(dead) == 1 })
	s := c.Status()
	srv.mu.Lock()
	dials := srv.dials
	srv.mu.Unlock()
	if dials != 1 || !s.Connected || s.DeadLetters != 1 || s.Queued != 0 || !strings.Contains(s.LastError, "forbidden") || st.updates < 3 {
		t.Fatalf("dials %d, status %+v, updates %d", dials, s, st.updates)
	}
}

// TestClientBadTarget: a delivery whose URL is not a valid xmpp: URI (a
// tampered outbox) is never sent: a dead letter at once.
func TestClientBadTarget(t *testing.T) {
	srv := &fakeServer{up: true}
	c, st, clk := newTestClient(t, srv)
	c.Enqueue([]*store.Delivery{delivery("a", "xmpp:x@example.org/res\n<evil/>", "one", clk.Now())})
	waitFor(t, clk, 0, "dead letter", func() bool { _, dead := st.state(); return len(dead) == 1 })
	if got := srv.messages(); len(got) != 0 {
		t.Fatalf("sent %q", got)
	}
}
