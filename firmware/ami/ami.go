// Package ami is faxbox's Asterisk Manager Interface client.
//
// Contract:
//   - One reader goroutine parses every message; writes are serialized, in
//     the order callers make them.
//   - Every action gets an ActionID; its Response (and, for list actions,
//     the events up to "EventList: Complete") go back to the caller.
//   - Messages keep repeated headers in order (Message is a list).
//   - Events go to one channel (Events). When its consumer is slow the
//     reader waits: events are never dropped.
//   - The connection is watched with Ping; on loss, pending actions fail with
//     ErrDisconnected and the client reconnects with exponential backoff, logs
//     in again and calls OnConnect, where the user re-syncs its state.
//   - Any CR, LF or other control character in an action's keys or values is
//     refused with ErrInvalid before anything is written.
package ami

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sentinel errors.
var (
	ErrInvalid      = errors.New("ami: invalid action")
	ErrDisconnected = errors.New("ami: disconnected")
	ErrClosed       = errors.New("ami: client closed")
	ErrLogin        = errors.New("ami: login failed")
)

// Header is one "Key: Value" line.
type Header struct{ Key, Value string }

// Message is a response or an event, headers in order.
type Message []Header

// Get returns the first value of key (case-insensitive), or "".
func (m Message) Get(key string) string {
	for _, h := range m {
		if strings.EqualFold(h.Key, key) {
			return h.Value
		}
	}
	return ""
}

// All returns every value of key, in order.
func (m Message) All(key string) []string {
	var out []string
	for _, h := range m {
		if strings.EqualFold(h.Key, key) {
			out = append(out, h.Value)
		}
	}
	return out
}

// Has reports whether key is present.
func (m Message) Has(key string) bool {
	for _, h := range m {
		if strings.EqualFold(h.Key, key) {
			return true
		}
	}
	return false
}

// Event returns the event name ("" for a response).
func (m Message) Event() string { return m.Get("Event") }

// String renders the message as on the wire (for logs).
func (m Message) String() string {
	var b strings.Builder
	for _, h := range m {
		b.WriteString(h.Key + ": " + h.Value + "\r\n")
	}
	return b.String()
}

// Parse reads one message (header lines up to a blank line). Lines without a
// colon are kept with an empty key (Command output). It returns io.EOF at a
// clean end.
func Parse(r *bufio.Reader) (Message, error) {
	var m Message
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF && len(m) == 0 && line == "" {
				return nil, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return m, err
		}
		if len(line) > 64<<10 {
			return m, fmt.Errorf("ami: line of %d bytes", len(line))
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(m) == 0 {
				continue // stray blank line
			}
			return m, nil
		}
		if len(m) >= 4096 {
			return m, errors.New("ami: message with more than 4096 headers")
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			m = append(m, Header{Value: line})
			continue
		}
		m = append(m, Header{Key: strings.TrimSpace(k), Value: strings.TrimLeft(v, " ")})
	}
}

func checkField(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: control character %q in %q", ErrInvalid, c, s)
		}
	}
	return nil
}

// Config of a Client.
type Config struct {
	Addr     string // host:port, 127.0.0.1:5038
	Username string
	Secret   string
	// OnConnect runs after every (re)login, before events flow to the
	// consumer's next read; the user re-syncs its state here.
	OnConnect func(ctx context.Context, c *Client)
	// Keepalive is the Ping interval (default 10 s).
	Keepalive time.Duration
	// Timeout bounds one action (default 10 s).
	Timeout time.Duration
	// EventBuffer is the events channel's size (default 1024).
	EventBuffer int
	// Background: Dial returns at once even when the first login fails (an
	// appliance's supervisor starts before its Asterisk listens); the client
	// keeps trying with backoff, Connected reports false until it is in,
	// and OnConnect runs on the first success. A refused login (ErrLogin)
	// still fails Dial: that is a wrong secret, not a slow start.
	Background bool
	Log        *slog.Logger
}

// Client is a connection to Asterisk that reconnects by itself.
type Client struct {
	cfg    Config
	events chan Message
	seq    atomic.Uint64

	wmu     sync.Mutex // serializes writes
	mu      sync.Mutex
	conn    net.Conn
	pending map[string]*call
	gen     uint64 // connection generation
	up      chan struct{}
	closed  bool
	ctx     context.Context
	stop    context.CancelFunc
	done    chan struct{}
	// Reconnects counts the logins after the first.
	reconnects atomic.Int64
}

type call struct {
	list   bool
	resp   Message
	items  []Message
	done   chan error
	gotRsp bool
}

// Dial connects and logs in, then keeps the connection up in the
// background. It fails if the first login fails.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 1024
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	for _, f := range []string{cfg.Username, cfg.Secret} {
		if err := checkField(f); err != nil {
			return nil, err
		}
	}
	c := &Client{cfg: cfg, events: make(chan Message, cfg.EventBuffer), pending: map[string]*call{}, up: make(chan struct{}), done: make(chan struct{})}
	c.ctx, c.stop = context.WithCancel(context.Background())
	conn, r, err := c.connect(ctx, false)
	if err != nil && (!cfg.Background || errors.Is(err, ErrLogin)) {
		c.stop()
		return nil, err
	}
	if err != nil {
		cfg.Log.Warn("ami: not connected yet; retrying in the background", "addr", cfg.Addr, "err", err)
	}
	go c.loop(conn, r)
	return c, nil
}

// Events returns the channel of events. It is closed by Close.
func (c *Client) Events() <-chan Message { return c.events }

// Reconnects returns how many times the client logged in again.
func (c *Client) Reconnects() int64 { return c.reconnects.Load() }

// connect dials and logs in. again marks a login after the first: it is
// counted in Reconnects before OnConnect starts, so OnConnect always sees
// the count of the login it runs for.
func (c *Client) connect(ctx context.Context, again bool) (net.Conn, *bufio.Reader, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("ami: connect %s: %w", c.cfg.Addr, err)
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	banner, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(banner, "Asterisk Call Manager") {
		conn.Close()
		return nil, nil, fmt.Errorf("ami: %s: no manager banner (%q, %v)", c.cfg.Addr, banner, err)
	}
	id := "login-" + strconv.FormatUint(c.seq.Add(1), 10)
	fmt.Fprintf(conn, "Action: Login\r\nActionID: %s\r\nUsername: %s\r\nSecret: %s\r\nEvents: on\r\n\r\n", id, c.cfg.Username, c.cfg.Secret)
	for {
		m, err := Parse(r)
		if err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("ami: login: %w", err)
		}
		if m.Get("ActionID") != id {
			continue
		}
		if m.Get("Response") != "Success" {
			conn.Close()
			return nil, nil, fmt.Errorf("%w: %s", ErrLogin, m.Get("Message"))
		}
		break
	}
	conn.SetReadDeadline(time.Time{})
	c.mu.Lock()
	c.conn = conn
	c.gen++
	close(c.up)
	c.up = make(chan struct{})
	c.mu.Unlock()
	if again {
		c.reconnects.Add(1)
	}
	if c.cfg.OnConnect != nil {
		go c.cfg.OnConnect(c.ctx, c)
	}
	return conn, r, nil
}

// loop reads until the connection breaks, then reconnects with backoff. A
// nil conn (Background, first login failed) starts with the reconnecting.
func (c *Client) loop(conn net.Conn, r *bufio.Reader) {
	defer close(c.done)
	defer close(c.events)
	for {
		err := errors.New("not connected yet")
		if conn != nil {
			kctx, kstop := context.WithCancel(c.ctx)
			go c.keepalive(kctx, conn)
			err = c.read(r)
			kstop()
			conn.Close()
		}
		c.mu.Lock()
		c.conn = nil
		for id, p := range c.pending {
			p.done <- fmt.Errorf("%w: %v", ErrDisconnected, err)
			delete(c.pending, id)
		}
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		if conn != nil {
			c.cfg.Log.Warn("ami: connection lost; reconnecting", "addr", c.cfg.Addr, "err", err)
		}
		backoff := 100 * time.Millisecond
		for {
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(backoff):
			}
			var cerr error
			conn, r, cerr = c.connect(c.ctx, true)
			if cerr == nil {
				c.cfg.Log.Info("ami: reconnected", "addr", c.cfg.Addr)
				break
			}
			c.cfg.Log.Debug("ami: reconnect failed", "err", cerr, "next", backoff)
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

func (c *Client) keepalive(ctx context.Context, conn net.Conn) {
	t := time.NewTicker(c.cfg.Keepalive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, c.cfg.Keepalive)
			_, err := c.Action(pctx, "Ping")
			cancel()
			if err != nil && ctx.Err() == nil {
				c.cfg.Log.Warn("ami: keepalive failed; dropping the connection", "err", err)
				conn.Close()
				return
			}
		}
	}
}

func (c *Client) read(r *bufio.Reader) error {
	for {
		m, err := Parse(r)
		if err != nil {
			return err
		}
		id := m.Get("ActionID")
		c.mu.Lock()
		p := c.pending[id]
		if p != nil {
			switch {
			case m.Has("Response") && !p.gotRsp:
				p.resp, p.gotRsp = m, true
				if !p.list || m.Get("Response") != "Success" || !strings.EqualFold(m.Get("EventList"), "start") {
					delete(c.pending, id)
					p.done <- nil
				}
				c.mu.Unlock()
				continue
			case p.list && m.Has("Event"):
				if strings.EqualFold(m.Get("EventList"), "Complete") {
					delete(c.pending, id)
					p.done <- nil
				} else {
					p.items = append(p.items, m)
				}
				c.mu.Unlock()
				continue
			}
		}
		c.mu.Unlock()
		if m.Has("Event") {
			select {
			case c.events <- m: // blocks when the consumer is slow: back-pressure
			case <-c.ctx.Done():
				return ErrClosed
			}
		}
	}
}

// Action sends an action and waits for its response. A "Response: Error"
// is returned as the message together with an error.
func (c *Client) Action(ctx context.Context, name string, headers ...Header) (Message, error) {
	m, _, err := c.do(ctx, false, name, headers)
	return m, err
}

// List sends a list action (CoreShowChannels, FAXSessions, …) and returns
// the response and the events up to EventList: Complete.
func (c *Client) List(ctx context.Context, name string, headers ...Header) (Message, []Message, error) {
	return c.do(ctx, true, name, headers)
}

func (c *Client) do(ctx context.Context, list bool, name string, headers []Header) (Message, []Message, error) {
	if err := checkField(name); err != nil || name == "" {
		return nil, nil, fmt.Errorf("%w: action name %q", ErrInvalid, name)
	}
	var b strings.Builder
	id := "fb-" + strconv.FormatUint(c.seq.Add(1), 10)
	b.WriteString("Action: " + name + "\r\nActionID: " + id + "\r\n")
	for _, h := range headers {
		if h.Key == "" || strings.ContainsAny(h.Key, ":") {
			return nil, nil, fmt.Errorf("%w: header key %q", ErrInvalid, h.Key)
		}
		if err := checkField(h.Key); err != nil {
			return nil, nil, err
		}
		if err := checkField(h.Value); err != nil {
			return nil, nil, err
		}
		if strings.EqualFold(h.Key, "ActionID") || strings.EqualFold(h.Key, "Action") {
			return nil, nil, fmt.Errorf("%w: %s is set by the client", ErrInvalid, h.Key)
		}
		b.WriteString(h.Key + ": " + h.Value + "\r\n")
	}
	b.WriteString("\r\n")
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	p := &call{list: list, done: make(chan error, 1)}
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, nil, ErrClosed
		}
		conn, up := c.conn, c.up
		if conn != nil {
			c.pending[id] = p
		}
		c.mu.Unlock()
		if conn != nil {
			c.wmu.Lock()
			conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, err := io.WriteString(conn, b.String())
			c.wmu.Unlock()
			if err != nil {
				c.mu.Lock()
				delete(c.pending, id)
				c.mu.Unlock()
				conn.Close()
				return nil, nil, fmt.Errorf("%w: write %s: %v", ErrDisconnected, name, err)
			}
			break
		}
		select { // wait for the connection to come back
		case <-up:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("ami: %s: %w (not connected)", name, ctx.Err())
		}
	}
	select {
	case err := <-p.done:
		if err != nil {
			return nil, nil, fmt.Errorf("ami: %s: %w", name, err)
		}
		if p.resp.Get("Response") == "Error" {
			return p.resp, p.items, fmt.Errorf("ami: %s: %s", name, p.resp.Get("Message"))
		}
		return p.resp, p.items, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("ami: %s: %w", name, ctx.Err())
	}
}

// Connected reports whether a connection is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// Close logs off and stops the client.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conn := c.conn
	c.mu.Unlock()
	c.stop()
	if conn != nil {
		c.wmu.Lock()
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(conn, "Action: Logoff\r\n\r\n")
		c.wmu.Unlock()
		conn.Close()
	}
	go func() {
		for range c.events { // let the reader finish
		}
	}()
	<-c.done
	return nil
}
