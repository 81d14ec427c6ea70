package mail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// ErrNoRelay is returned by Enqueue when the box has no relay configured
// (config smtp.host).
var ErrNoRelay = errors.New("mail: no SMTP relay is configured (smtp.host)")

// State is where an outbox message stands.
type State string

// Outbox states. Sent and Refused are final.
const (
	Queued  State = "queued"
	Sent    State = "sent"
	Refused State = "refused" // the relay refused it for good (5xx), or it was not accepted within give_up_after
)

// Record is a message in the outbox, as stored.
type Record struct {
	ID        string     `json:"id"`
	Message   Message    `json:"message"`
	State     State      `json:"state"`
	CreatedAt time.Time  `json:"created_at"`
	NextAt    time.Time  `json:"next_at"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	DoneAt    *time.Time `json:"done_at,omitempty"`
	// RefusedRecipients are recipients the relay refused for good while it
	// accepted the message for others (address → reply).
	RefusedRecipients map[string]string `json:"refused_recipients,omitempty"`
}

// Status is the outbox as /v1/status shows it.
type Status struct {
	Relay    string `json:"relay"` // host:port, "" without a relay
	Pending  int    `json:"pending"`
	Sent     uint64 `json:"sent_total"`
	Refused  uint64 `json:"refused_total"`  // stored refusals (kept keepDone)
	Failures uint64 `json:"failures_total"` // failed tries since start
	// LastError is the newest failed try's error (cleared by a success).
	LastError   string   `json:"last_error,omitempty"`
	LastRefused *Refusal `json:"last_refused,omitempty"`
}

// Refusal summarises a message refused for good.
type Refusal struct {
	ID    string    `json:"id"`
	Ref   string    `json:"ref,omitempty"`
	To    []string  `json:"to"`
	Error string    `json:"error"`
	At    time.Time `json:"at"`
}

var (
	bQueue = []byte("queue") // id → Record, not yet accepted or refused
	bDone  = []byte("done")  // id → Record, sent or refused (kept keepDone)
)

// keepDone is how long sent and refused records are kept (for status and
// so that a message queued again under its id is not sent twice).
const keepDone = 30 * 24 * time.Hour

// OutboxConfig configures an Outbox.
type OutboxConfig struct {
	SMTP config.SMTP
	// Dir is the data directory: the outbox keeps mail.db and copies of
	// the attachments (mail/<id>/) there.
	Dir   string
	Clock clock.Clock
	Log   *slog.Logger
	// Workers is how many messages are submitted at once (default 2).
	Workers int
}

// Outbox is the durable outgoing mail queue. It implements Mailer.
//
// Contracts: Enqueue returns once the message and copies of its attachments
// are on disk; a queued message is submitted until the relay accepts it,
// refuses it for good (a 5xx reply: kept as refused, with the reply), or
// give_up_after has passed; a restart resumes where it stopped. A message
// accepted by the relay but whose acceptance was not yet recorded when the
// box stopped is sent again (at least once, with the same Message-ID).
type Outbox struct {
	cfg   OutboxConfig
	db    *bolt.DB
	relay *relay // nil without a relay
	files string
	log   *slog.Logger
	sem   chan struct{}

	mu          sync.Mutex
	queued      map[string]*Record
	timers      map[string]clock.Timer
	closed      bool
	sent        uint64
	refused     uint64
	failures    uint64
	lastErr     string
	lastRefused *Refusal
	wg          sync.WaitGroup
	ctx         context.Context
	stop        context.CancelFunc
}

var _ Mailer = (*Outbox)(nil)

// OpenOutbox opens (creating) the outbox in cfg.Dir and loads what is
// queued; Start begins sending.
func OpenOutbox(cfg OutboxConfig) (*Outbox, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	o := &Outbox{cfg: cfg, files: filepath.Join(cfg.Dir, "mail"), log: cfg.Log.With("component", "mail"),
		sem: make(chan struct{}, cfg.Workers), queued: map[string]*Record{}, timers: map[string]clock.Timer{}}
	o.ctx, o.stop = context.WithCancel(context.Background())
	if cfg.SMTP.Enabled() {
		r, err := newRelay(cfg.SMTP)
		if err != nil {
			return nil, err
		}
		o.relay = r
	}
	if err := os.MkdirAll(o.files, 0o750); err != nil {
		return nil, fmt.Errorf("mail: outbox: %w", err)
	}
	path := filepath.Join(cfg.Dir, "mail.db")
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterr.ErrTimeout) {
		return nil, fmt.Errorf("mail: outbox %s is in use by another faxbox process", path)
	}
	if err != nil {
		return nil, fmt.Errorf("mail: open outbox %s: %w", path, err)
	}
	o.db = db
	if err := o.load(); err != nil {
		db.Close()
		return nil, err
	}
	return o, nil
}

// load creates the buckets, reads the queue, counts refusals, drops done
// records older than keepDone and attachment copies nothing refers to.
func (o *Outbox) load() error {
	cutoff := o.cfg.Clock.Now().Add(-keepDone)
	err := o.db.Update(func(tx *bolt.Tx) error {
		q, err := tx.CreateBucketIfNotExists(bQueue)
		if err != nil {
			return err
		}
		d, err := tx.CreateBucketIfNotExists(bDone)
		if err != nil {
			return err
		}
		if err := q.ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			o.queued[r.ID] = &r
			return nil
		}); err != nil {
			return err
		}
		var old [][]byte
		if err := d.ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			switch {
			case r.DoneAt != nil && r.DoneAt.Before(cutoff):
				old = append(old, append([]byte(nil), k...))
			case r.State == Refused:
				o.refused++
				o.noteRefusal(&r)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range old {
			if err := d.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mail: load outbox: %w", err)
	}
	ents, _ := os.ReadDir(o.files)
	for _, e := range ents {
		if o.queued[e.Name()] == nil {
			os.RemoveAll(filepath.Join(o.files, e.Name()))
		}
	}
	return nil
}

// Start schedules every queued message (none without a relay).
func (o *Outbox) Start() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.queued {
		o.scheduleLocked(r)
	}
}

// NewID returns a new outbox message id.
func NewID() string { return "ml_" + strings.ToLower(ulid.Make().String()) }

// Enqueue queues m under a new id (see EnqueueID).
func (o *Outbox) Enqueue(m Message) (string, error) { return o.EnqueueID(NewID(), m) }

// EnqueueID queues m under id and returns once it is durable. Queueing an id
// the outbox already holds (queued, sent or refused) does nothing, so a
// caller that may repeat itself after a crash sends one mail. The
// attachments are copied into the outbox: their files may go once
// EnqueueID returns.
func (o *Outbox) EnqueueID(id string, m Message) (string, error) {
	if o.relay == nil {
		return "", ErrNoRelay
	}
	if id == "" || strings.ContainsAny(id, "/\\.\x00") || len(id) > 100 {
		return "", fmt.Errorf("mail: bad message id %q", id)
	}
	m.To = append([]string(nil), m.To...)
	m.Attachments = append([]Attachment(nil), m.Attachments...)
	if err := m.Validate(); err != nil {
		return "", err
	}
	o.mu.Lock()
	closed, known := o.closed, o.queued[id] != nil
	o.mu.Unlock()
	if closed {
		return "", errors.New("mail: outbox closed")
	}
	if known || o.isDone(id) {
		return id, nil
	}
	if err := o.copyAttachments(id, &m); err != nil {
		os.RemoveAll(filepath.Join(o.files, id))
		return "", err
	}
	now := o.cfg.Clock.Now()
	r := &Record{ID: id, Message: m, State: Queued, CreatedAt: now, NextAt: now}
	if err := o.put(bQueue, r, nil); err != nil {
		os.RemoveAll(filepath.Join(o.files, id))
		return "", err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.queued[id] == nil && !o.closed {
		o.queued[id] = r
		o.scheduleLocked(r)
	}
	o.log.Info("mail queued", "mail", id, "ref", m.Ref, "to", strings.Join(m.To, ","), "attachments", len(m.Attachments))
	return id, nil
}

// copyAttachments copies m's attachments to mail/<id>/ (synced) and points
// m at the copies.
func (o *Outbox) copyAttachments(id string, m *Message) error {
	if len(m.Attachments) == 0 {
		return nil
	}
	dir := filepath.Join(o.files, id)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("mail: attachments of %s: %w", id, err)
	}
	for i, a := range m.Attachments {
		dst := filepath.Join(dir, fmt.Sprintf("%02d", i))
		if err := copyFile(a.Path, dst); err != nil {
			return fmt.Errorf("mail: attachment %s of %s: %w", a.Name, id, err)
		}
		m.Attachments[i].Path = dst
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mail: attachments of %s: %w", id, err)
	}
	defer d.Close()
	return d.Sync()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// isDone reports whether id was sent or refused already.
func (o *Outbox) isDone(id string) bool {
	var done bool
	o.db.View(func(tx *bolt.Tx) error {
		done = tx.Bucket(bDone).Get([]byte(id)) != nil
		return nil
	})
	return done
}

// put stores r in bucket b (and deletes it from del, when set) in one
// transaction.
func (o *Outbox) put(b []byte, r *Record, del []byte) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("mail: encode %s: %w", r.ID, err)
	}
	err = o.db.Update(func(tx *bolt.Tx) error {
		if del != nil {
			if err := tx.Bucket(del).Delete([]byte(r.ID)); err != nil {
				return err
			}
		}
		return tx.Bucket(b).Put([]byte(r.ID), v)
	})
	if err != nil {
		return fmt.Errorf("mail: store %s: %w", r.ID, err)
	}
	return nil
}

// scheduleLocked arms r's timer for r.NextAt (no relay: nothing is sent).
func (o *Outbox) scheduleLocked(r *Record) {
	if o.relay == nil || o.closed {
		return
	}
	if t := o.timers[r.ID]; t != nil {
		t.Stop()
	}
	o.timers[r.ID] = o.cfg.Clock.AfterFunc(max(r.NextAt.Sub(o.cfg.Clock.Now()), 0), func() { o.fire(r.ID) })
}

// fire submits one message and records the outcome.
func (o *Outbox) fire(id string) {
	o.mu.Lock()
	r := o.queued[id]
	if o.closed || r == nil {
		o.mu.Unlock()
		return
	}
	delete(o.timers, id)
	o.wg.Add(1)
	o.mu.Unlock()
	defer o.wg.Done()
	select {
	case o.sem <- struct{}{}:
	case <-o.ctx.Done():
		return
	}
	refused, err := o.submit(r)
	<-o.sem
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.outcomeLocked(r, refused, err)
}

// submit composes r's message and hands it to the relay.
func (o *Outbox) submit(r *Record) (map[string]string, error) {
	var buf bytes.Buffer
	if err := compose(&buf, &r.Message, o.cfg.SMTP.From, r.ID, r.CreatedAt); err != nil {
		return nil, &permanentError{err}
	}
	return o.relay.send(o.ctx, r.Message.To, buf.Bytes())
}

// outcomeLocked records a try: sent, refused for good, or a retry later.
func (o *Outbox) outcomeLocked(r *Record, refused map[string]string, err error) {
	now := o.cfg.Clock.Now()
	r.Attempts++
	if err == nil {
		o.sent++
		o.lastErr = ""
		r.State, r.DoneAt, r.RefusedRecipients, r.LastError = Sent, &now, refused, ""
		o.finishLocked(r)
		o.log.Info("mail sent", "mail", r.ID, "ref", r.Message.Ref, "to", strings.Join(r.Message.To, ","), "tries", r.Attempts)
		return
	}
	o.failures++
	o.lastErr = err.Error()
	r.LastError = err.Error()
	giveUp := o.cfg.SMTP.GiveUpAfter > 0 && now.Sub(r.CreatedAt) >= o.cfg.SMTP.GiveUpAfter.D()
	if permanent(err) || giveUp {
		if !permanent(err) {
			r.LastError = fmt.Sprintf("not accepted within %s: %v", o.cfg.SMTP.GiveUpAfter.D(), err)
		}
		o.refused++
		r.State, r.DoneAt, r.RefusedRecipients = Refused, &now, refused
		o.finishLocked(r)
		o.noteRefusal(r)
		o.log.Error("mail refused for good", "mail", r.ID, "ref", r.Message.Ref, "to", strings.Join(r.Message.To, ","), "err", r.LastError)
		return
	}
	wait := backoff(o.cfg.SMTP, r.Attempts)
	r.NextAt = now.Add(wait)
	if err := o.put(bQueue, r, nil); err != nil {
		o.log.Error("mail: record retry", "mail", r.ID, "err", err)
	}
	o.log.Warn("mail not sent; will retry", "mail", r.ID, "ref", r.Message.Ref, "try", r.Attempts, "in", wait, "err", err)
	o.scheduleLocked(r)
}

// finishLocked moves r from the queue to the done records and drops its
// attachment copies.
func (o *Outbox) finishLocked(r *Record) {
	delete(o.queued, r.ID)
	if err := o.put(bDone, r, bQueue); err != nil {
		o.log.Error("mail: record outcome", "mail", r.ID, "state", r.State, "err", err)
		return
	}
	os.RemoveAll(filepath.Join(o.files, r.ID))
}

// noteRefusal keeps the newest refusal for Status.
func (o *Outbox) noteRefusal(r *Record) {
	if r.DoneAt == nil || (o.lastRefused != nil && o.lastRefused.At.After(*r.DoneAt)) {
		return
	}
	o.lastRefused = &Refusal{ID: r.ID, Ref: r.Message.Ref, To: r.Message.To, Error: r.LastError, At: *r.DoneAt}
}

// backoff is the wait after n failed tries: first_retry doubling up to
// max_backoff.
func backoff(c config.SMTP, n int) time.Duration {
	d := c.FirstRetry.D()
	for i := 1; i < n && d < c.MaxBackoff.D(); i++ {
		d *= 2
	}
	return min(d, c.MaxBackoff.D())
}

// Get returns the record of message id (queued, sent or refused).
func (o *Outbox) Get(id string) (*Record, error) {
	var r *Record
	err := o.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bQueue, bDone} {
			if v := tx.Bucket(b).Get([]byte(id)); v != nil {
				r = &Record{}
				return json.Unmarshal(v, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mail: read %s: %w", id, err)
	}
	if r == nil {
		return nil, fmt.Errorf("mail: message %s: not found", id)
	}
	return r, nil
}

// Status returns the outbox's counters for /v1/status.
func (o *Outbox) Status() Status {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := Status{Pending: len(o.queued), Sent: o.sent, Refused: o.refused, Failures: o.failures, LastError: o.lastErr}
	if o.relay != nil {
		s.Relay = fmt.Sprintf("%s:%d", o.cfg.SMTP.Host, o.cfg.SMTP.Port)
	}
	if o.lastRefused != nil {
		lr := *o.lastRefused
		s.LastRefused = &lr
	}
	return s
}

// Close stops sending (a submission in progress is cut; it is tried again on
// the next start) and closes mail.db.
func (o *Outbox) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	for id, t := range o.timers {
		t.Stop()
		delete(o.timers, id)
	}
	o.mu.Unlock()
	o.stop()
	o.wg.Wait()
	return o.db.Close()
}
