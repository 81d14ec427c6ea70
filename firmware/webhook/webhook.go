// Package webhook delivers job results from the durable outbox.
//
// Every result is first committed to the store's outbox together with the
// job change that produced it (see engine); Sender then POSTs it to the job's
// callback_url as {"event": ..., "data": job}, signed with
// X-Faxbox-Signature: sha256=<hex HMAC-SHA256 of the body> when a secret is
// set, and carrying X-Faxbox-Delivery (stable across retries) for
// de-duplication. A delivery is retried with exponential backoff until the
// receiver answers 2xx or GiveUpAfter has passed (then it is kept as a dead
// letter). Jobs from the classic /faxservice/ endpoint get the classic
// GET returnUrl?fax=…&faxId=…&status=…&message=… instead.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/oklog/ulid/v2"
)

// Payload is the JSON body of a webhook.
type Payload struct {
	Event job.Event `json:"event"`
	Data  *job.Job  `json:"data"`
}

// Sign returns the X-Faxbox-Signature value for body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against body in constant time.
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// Outbox builds the deliveries for a job change (engine.Outbox).
func Outbox(now func() time.Time) func(j *job.Job, events []job.Event) []*store.Delivery {
	return func(j *job.Job, events []job.Event) []*store.Delivery {
		var out []*store.Delivery
		t := now()
		for _, ev := range events {
			if j.CallbackURL != "" {
				body, err := json.Marshal(Payload{Event: ev, Data: j})
				if err != nil {
					continue
				}
				out = append(out, &store.Delivery{ID: "dl_" + strings.ToLower(ulid.Make().String()), JobID: j.ID, Event: ev,
					Method: http.MethodPost, URL: j.CallbackURL, Body: body, CreatedAt: t, NextAt: t})
			}
			if j.Compat != nil && j.Compat.ReturnURL != "" && ev.Final() {
				u, err := compatURL(j, ev)
				if err != nil {
					continue
				}
				out = append(out, &store.Delivery{ID: "dl_" + strings.ToLower(ulid.Make().String()), JobID: j.ID, Event: ev,
					Method: http.MethodGet, URL: u, CreatedAt: t, NextAt: t})
			}
		}
		return out
	}
}

// compatURL is the classic result report: returnUrl?fax=&faxId=&status=&message=
// with status SUCCESS or FAILED (FAXOPT(status) of the classic dialplan).
func compatURL(j *job.Job, ev job.Event) (string, error) {
	u, err := url.Parse(j.Compat.ReturnURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("fax", j.To)
	q.Set("faxId", j.Compat.FaxID)
	status, msg := "SUCCESS", "OK"
	if ev != job.EventFaxDelivered {
		status = "FAILED"
		if j.Error != nil {
			msg = string(j.Error.Code) + ": " + j.Error.Message
		}
	}
	q.Set("status", status)
	q.Set("message", msg)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Sender delivers the outbox.
type Sender struct {
	st     *store.DB
	clk    clock.Clock
	client *http.Client
	secret string
	pol    config.Webhook
	log    *slog.Logger
	sem    chan struct{}

	mu      sync.Mutex
	pending map[string]clock.Timer       // scheduled deliveries (heads of their job's queue)
	queued  map[string][]*store.Delivery // job → deliveries waiting behind the head, in order
	closed  bool
	wg      sync.WaitGroup
	ctx     context.Context
	stop    context.CancelFunc
	sent    uint64
	failed  uint64
}

// NewSender returns a sender; Start loads the outbox.
func NewSender(st *store.DB, clk clock.Clock, secret string, pol config.Webhook, log *slog.Logger) *Sender {
	if pol.Workers <= 0 {
		pol.Workers = 4
	}
	if pol.Timeout <= 0 {
		pol.Timeout = job.Duration(10 * time.Second)
	}
	if pol.FirstRetry <= 0 {
		pol.FirstRetry = job.Duration(5 * time.Second)
	}
	if pol.MaxBackoff <= 0 {
		pol.MaxBackoff = job.Duration(30 * time.Minute)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Sender{st: st, clk: clk, secret: secret, pol: pol, log: log,
		client:  &http.Client{Timeout: pol.Timeout.D(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		sem:     make(chan struct{}, pol.Workers),
		pending: map[string]clock.Timer{}, queued: map[string][]*store.Delivery{}, ctx: ctx, stop: stop}
}

// Start schedules every delivery left in the outbox.
func (s *Sender) Start() error {
	ds, err := s.st.Outbox()
	if err != nil {
		return fmt.Errorf("webhook: load outbox: %w", err)
	}
	s.Enqueue(ds)
	return nil
}

// Enqueue schedules durable deliveries. Deliveries of one job go out one at
// a time, in the order they were created (their IDs sort by time), so a
// receiver sees fax.attempt_failed before fax.failed.
func (s *Sender) Enqueue(ds []*store.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	sorted := append([]*store.Delivery(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for _, d := range sorted {
		if _, ok := s.pending[d.ID]; ok {
			continue
		}
		q, busy := s.queued[d.JobID]
		dup := false
		for _, x := range q {
			dup = dup || x.ID == d.ID
		}
		if dup {
			continue
		}
		s.queued[d.JobID] = append(q, d)
		if !busy {
			s.startLocked(d.JobID)
		}
	}
}

// startLocked schedules the head of job's queue.
func (s *Sender) startLocked(jobID string) {
	q := s.queued[jobID]
	if len(q) == 0 {
		delete(s.queued, jobID)
		return
	}
	d := q[0]
	s.pending[d.ID] = s.clk.AfterFunc(max(d.NextAt.Sub(s.clk.Now()), 0), func() { s.fire(d) })
}

// doneLocked removes the head of d's job queue and starts the next.
func (s *Sender) doneLocked(d *store.Delivery) {
	delete(s.pending, d.ID)
	q := s.queued[d.JobID]
	if len(q) > 0 && q[0].ID == d.ID {
		q = q[1:]
	}
	if len(q) == 0 {
		delete(s.queued, d.JobID)
		return
	}
	s.queued[d.JobID] = q
	s.startLocked(d.JobID)
}

// Pending returns how many deliveries wait.
func (s *Sender) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.queued {
		n += len(q)
	}
	return n
}

// Close stops sending; what is left stays in the outbox for the next start.
func (s *Sender) Close() {
	s.mu.Lock()
	s.closed = true
	for id, t := range s.pending {
		t.Stop()
		delete(s.pending, id)
	}
	s.queued = map[string][]*store.Delivery{}
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
}

func (s *Sender) fire(d *store.Delivery) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		return
	}
	err := s.send(d)
	<-s.sem
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := s.clk.Now()
	if err == nil {
		s.sent++
		if err := s.st.Delivered(d, false); err != nil {
			s.log.Error("webhook: record delivery", "delivery", d.ID, "err", err)
		}
		s.doneLocked(d)
		return
	}
	s.failed++
	d.Attempts++
	d.LastError = err.Error()
	if s.pol.GiveUpAfter > 0 && now.Sub(d.CreatedAt) >= s.pol.GiveUpAfter.D() {
		s.log.Error("webhook: giving up", "delivery", d.ID, "job", d.JobID, "url", d.URL, "tries", d.Attempts, "err", err)
		if err := s.st.Delivered(d, true); err != nil {
			s.log.Error("webhook: record dead letter", "delivery", d.ID, "err", err)
		}
		s.doneLocked(d)
		return
	}
	wait := Backoff(s.pol, d.Attempts)
	d.NextAt = now.Add(wait)
	s.log.Warn("webhook: delivery failed; will retry", "delivery", d.ID, "job", d.JobID, "event", d.Event, "try", d.Attempts, "in", wait, "err", err)
	if err := s.st.UpdateDelivery(d); err != nil {
		s.log.Error("webhook: record retry", "delivery", d.ID, "err", err)
	}
	s.pending[d.ID] = s.clk.AfterFunc(wait, func() { s.fire(d) })
}

// Backoff is the wait before try n+1 after n failures: FirstRetry doubling
// up to MaxBackoff.
func Backoff(p config.Webhook, n int) time.Duration {
	d := p.FirstRetry.D()
	for i := 1; i < n && d < p.MaxBackoff.D(); i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff.D())
}

func (s *Sender) send(d *store.Delivery) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.pol.Timeout.D())
	defer cancel()
	var body io.Reader
	if d.Method == http.MethodPost {
		body = bytes.NewReader(d.Body)
	}
	req, err := http.NewRequestWithContext(ctx, d.Method, d.URL, body)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "faxbox")
	req.Header.Set("X-Faxbox-Delivery", d.ID)
	req.Header.Set("X-Faxbox-Event", string(d.Event))
	if d.Method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		if s.secret != "" {
			req.Header.Set("X-Faxbox-Signature", Sign(s.secret, d.Body))
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: %s %s: HTTP %d", d.Method, redact(d.URL), resp.StatusCode)
	}
	return nil
}

func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// Stats returns how many deliveries succeeded and how many tries failed.
func (s *Sender) Stats() (sent, failed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent, s.failed
}
