package xmpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/store"
	"mellium.im/xmpp/stanza"
)

// Store is where the client records what became of a delivery
// (*store.DB).
type Store interface {
	// UpdateDelivery records a failed try.
	UpdateDelivery(d *store.Delivery) error
	// Delivered removes d from the outbox; dead keeps it as a dead letter.
	Delivered(d *store.Delivery, dead bool) error
}

// Status is the XMPP client's state as /v1/status shows it.
type Status struct {
	Account        string     `json:"account"`
	Connected      bool       `json:"connected"`
	ConnectedSince *time.Time `json:"connected_since,omitempty"`
	// NextConnect is when a lost or refused connection is tried again.
	NextConnect *time.Time `json:"next_connect,omitempty"`
	Queued      int        `json:"queued"`
	Sent        uint64     `json:"sent_total"`
	Failures    uint64     `json:"failures_total"`
	DeadLetters uint64     `json:"dead_letters_total"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// Client sends the outbox's XMPP deliveries over one session, made again
// with backoff whenever it is lost.
type Client struct {
	cfg  config.XMPP
	st   Store
	clk  clock.Clock
	dial Dialer
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}
	done   chan struct{}
	start  sync.Once

	mu        sync.Mutex
	queue     []*store.Delivery // by id (creation order)
	conn      Conn
	since     time.Time
	connFails int
	retryAt   time.Time
	lastErr   string
	lastErrAt time.Time
	sent      uint64
	failed    uint64
	dead      uint64
}

// New returns a client of cfg's account that records results in st; dial
// makes its sessions (Dial(cfg) for a real server). Start runs it.
func New(cfg config.XMPP, st Store, clk clock.Clock, dial Dialer, log *slog.Logger) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{cfg: cfg, st: st, clk: clk, dial: dial, log: log.With("component", "xmpp"),
		ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Start connects and sends in the background until Close.
func (c *Client) Start() { c.start.Do(func() { go c.run() }) }

// Close stops the client and ends its session; what is left stays in the
// store's outbox for the next start.
func (c *Client) Close() {
	c.cancel()
	c.start.Do(func() { close(c.done) })
	<-c.done
	c.mu.Lock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	c.mu.Unlock()
}

// Enqueue adds durable deliveries (Method XMPP) to the queue; ids already
// queued are ignored.
func (c *Client) Enqueue(ds []*store.Delivery) {
	c.mu.Lock()
	have := map[string]bool{}
	for _, d := range c.queue {
		have[d.ID] = true
	}
	for _, d := range ds {
		if d.Method == Method && !have[d.ID] {
			have[d.ID] = true
			c.queue = append(c.queue, d)
		}
	}
	sort.Slice(c.queue, func(i, j int) bool { return c.queue[i].ID < c.queue[j].ID })
	c.mu.Unlock()
	c.poke()
}

// Status returns the client's state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Account: c.cfg.JID, Queued: len(c.queue), Sent: c.sent, Failures: c.failed, DeadLetters: c.dead, LastError: c.lastErr}
	if c.conn != nil && !closed(c.conn.Done()) {
		st.Connected = true
		t := c.since
		st.ConnectedSince = &t
	} else if !c.retryAt.IsZero() {
		t := c.retryAt
		st.NextConnect = &t
	}
	if !c.lastErrAt.IsZero() {
		t := c.lastErrAt
		st.LastErrorAt = &t
	}
	return st
}

func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run keeps a session and sends what is due, until Close.
func (c *Client) run() {
	defer close(c.done)
	for c.ctx.Err() == nil {
		conn, wait := c.connect()
		if conn == nil {
			c.sleep(wait, nil)
			continue
		}
		d, wait := c.next()
		if d == nil {
			c.sleep(wait, conn.Done())
			continue
		}
		c.deliver(conn, d)
	}
}

// connect returns the live session, making one when it is time to; else
// nil and how long to wait before trying again.
func (c *Client) connect() (Conn, time.Duration) {
	c.mu.Lock()
	if c.conn != nil && !closed(c.conn.Done()) {
		defer c.mu.Unlock()
		return c.conn, 0
	}
	if c.conn != nil {
		err := errors.New("xmpp: connection lost")
		if e, ok := c.conn.(interface{ Err() error }); ok && e.Err() != nil {
			err = fmt.Errorf("xmpp: connection lost: %w", e.Err())
		}
		c.conn.Close()
		c.conn = nil
		c.failConnLocked(err)
	}
	if wait := c.retryAt.Sub(c.clk.Now()); wait > 0 {
		c.mu.Unlock()
		return nil, wait
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.Timeout.D())
	conn, err := c.dial(ctx)
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.ctx.Err() == nil {
			c.failConnLocked(err)
		}
		return nil, c.retryAt.Sub(c.clk.Now())
	}
	c.conn, c.since, c.connFails, c.retryAt = conn, c.clk.Now(), 0, time.Time{}
	c.log.Info("xmpp: connected", "account", c.cfg.JID)
	return conn, 0
}

// failConnLocked records a failed or lost session and schedules the next
// try with backoff.
func (c *Client) failConnLocked(err error) {
	c.connFails++
	wait := Backoff(c.cfg, c.connFails)
	c.retryAt = c.clk.Now().Add(wait)
	c.noteLocked(err)
	c.log.Warn("xmpp: not connected; will try again", "account", c.cfg.JID, "try", c.connFails, "in", wait, "err", err)
}

func (c *Client) noteLocked(err error) {
	c.lastErr, c.lastErrAt = err.Error(), c.clk.Now()
}

// next returns the first delivery that is due, or nil and how long until
// one is (negative: none queued).
func (c *Client) next() (*store.Delivery, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clk.Now()
	wait := time.Duration(-1)
	for _, d := range c.queue {
		w := d.NextAt.Sub(now)
		if w <= 0 {
			return d, 0
		}
		if wait < 0 || w < wait {
			wait = w
		}
	}
	return nil, wait
}

// sleep waits for wait (forever when negative), a new delivery, the end of
// the session (lost) or Close.
func (c *Client) sleep(wait time.Duration, lost <-chan struct{}) {
	if wait >= 0 {
		t := c.clk.AfterFunc(wait, c.poke)
		defer t.Stop()
	}
	select {
	case <-c.wake:
	case <-lost:
	case <-c.ctx.Done():
	}
}

// deliver sends d and records the outcome.
func (c *Client) deliver(conn Conn, d *store.Delivery) {
	t, err := ParseTarget(d.URL)
	never := err != nil // a bad address: a dead letter at once
	if err == nil {
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.Timeout.D())
		err = conn.Send(ctx, t, d.ID, clean(string(d.Body)))
		cancel()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return // closing: the delivery stays in the outbox
	}
	if err == nil {
		c.sent++
		if err := c.st.Delivered(d, false); err != nil {
			c.log.Error("xmpp: record delivery", "delivery", d.ID, "err", err)
		}
		c.removeLocked(d)
		return
	}
	c.failed++
	d.Attempts++
	d.LastError = err.Error()
	c.noteLocked(err)
	var se stanza.Error
	if !never && !errors.As(err, &se) && c.conn == conn {
		conn.Close() // the session is in doubt: make a new one
		c.conn = nil
		c.failConnLocked(err)
	}
	now := c.clk.Now()
	if never || now.Sub(d.CreatedAt) >= c.cfg.GiveUpAfter.D() {
		c.dead++
		c.log.Error("xmpp: giving up", "delivery", d.ID, "job", d.JobID, "to", d.URL, "tries", d.Attempts, "err", err)
		if err := c.st.Delivered(d, true); err != nil {
			c.log.Error("xmpp: record dead letter", "delivery", d.ID, "err", err)
		}
		c.removeLocked(d)
		return
	}
	wait := Backoff(c.cfg, d.Attempts)
	d.NextAt = now.Add(wait)
	c.log.Warn("xmpp: message failed; will retry", "delivery", d.ID, "job", d.JobID, "to", d.URL, "try", d.Attempts, "in", wait, "err", err)
	if err := c.st.UpdateDelivery(d); err != nil && !errors.Is(err, store.ErrNotFound) {
		c.log.Error("xmpp: record retry", "delivery", d.ID, "err", err)
	}
}

func (c *Client) removeLocked(d *store.Delivery) {
	for i, x := range c.queue {
		if x.ID == d.ID {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return
		}
	}
}

// Backoff is the wait after n failures in a row: FirstRetry doubling up to
// MaxBackoff.
func Backoff(cfg config.XMPP, n int) time.Duration {
	d := cfg.FirstRetry.D()
	for i := 1; i < n && d < cfg.MaxBackoff.D(); i++ {
		d *= 2
	}
	return min(d, cfg.MaxBackoff.D())
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
