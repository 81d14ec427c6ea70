// Package directory is the office directory on LDAP as the box uses it:
// API users with their tokens or passwords, the inbound callback's allowed
// callers, the click-to-call agents and a phone book.
//
// The box reads the whole directory it needs (users, phone book entries,
// the three groups) into a copy that it uses for TTL, then reads it again.
// A read that fails — the server unreachable, a bind refused, a search
// cut short — keeps the last good copy and raises Alarm until a read
// succeeds: an outage never grants access that the last good copy did not.
// A password (HTTP Basic) is always checked by a live bind as the user, so
// an unreachable directory admits no password at all.
//
// Everything read is data from outside: names, logins and tokens with
// control characters (CR, LF, …), "${" or invalid UTF-8 are refused, and
// numbers must be plain numbers the box dials (spaces, -, /, (, ) and .
// are dropped; then 3 to 20 digits with an optional leading +, on no deny
// prefix: package rules), so nothing from the directory reaches Asterisk
// unchecked. Each refusal is logged and counted in Status.
package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
)

// Alarm is the alarm the box shows while the directory cannot be read.
const Alarm = "directory unreachable"

// RetryAfterFailure is the wait before a failed read is tried again (the
// TTL when that is shorter).
const RetryAfterFailure = 30 * time.Second

// Errors of the lookups.
var (
	// ErrNoCopy: the directory has not been read successfully yet.
	ErrNoCopy = errors.New("directory: not read yet (the directory server has not answered since the box started)")
	// ErrDenied: the credentials are wrong, unknown, or the user is in
	// none of the groups that grant a right.
	ErrDenied = errors.New("directory: not admitted")
	// ErrNotFound: no entry matches.
	ErrNotFound = errors.New("directory: no entry matches")
	// ErrQuery: a search text that is empty, too long or holds control
	// characters.
	ErrQuery = errors.New("directory: the search text must be 1 to 100 characters without control characters")
)

// Record is one LDAP entry as read: its DN and its attributes (names in
// lower case).
type Record struct {
	DN    string
	Attrs map[string][]string
}

// Get returns the values of attribute name (any case).
func (r Record) Get(name string) []string { return r.Attrs[lower(name)] }

// Raw is one read of the directory, before any check.
type Raw struct {
	// Users are the entries of ldap.user_filter, Book those of
	// ldap.book_filter.
	Users, Book []Record
	// Groups are the configured groups by their DN as configured (a group
	// that does not exist is absent: it grants nobody).
	Groups map[string]Record
}

// Source reads a directory (the LDAP server; a fake in tests).
type Source interface {
	// Read reads users, phone book and groups. An error means no copy.
	Read(ctx context.Context) (*Raw, error)
	// Bind checks password by binding as dn; nil means the server
	// accepted it.
	Bind(ctx context.Context, dn, password string) error
}

// Config wires a Directory.
type Config struct {
	LDAP config.LDAP
	// Deny are the deny prefixes (calls.deny_prefixes): numbers on them
	// are refused like malformed ones.
	Deny []string
	// Source reads the directory; nil: the LDAP server of LDAP.
	Source Source
	Clock  clock.Clock
	Log    *slog.Logger
}

// Status is the directory's state for /v1/status.
type Status struct {
	URL string `json:"url"`
	// State is ok, unreachable (the last read failed; the last good copy
	// is in use) or not_read (no read has succeeded yet).
	State       string     `json:"state"`
	LastSync    *time.Time `json:"last_sync,omitempty"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	Error       string     `json:"error,omitempty"`
	Users       int        `json:"users"`
	Entries     int        `json:"entries"`
	// Refused counts the values of the last good copy refused as hostile
	// or malformed (see the log for which).
	Refused int `json:"refused"`
}

// Directory is the cached directory. It is safe for concurrent use.
type Directory struct {
	cfg Config
	src Source
	log *slog.Logger

	mu      sync.RWMutex
	snap    *snapshot // last good copy; nil before the first
	attempt time.Time
	lastErr error
	timer   clock.Timer
	ctx     context.Context
	stop    context.CancelFunc
}

// New returns the directory of c; Start begins reading it.
func New(c Config) (*Directory, error) {
	c.LDAP = c.LDAP.WithDefaults()
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Source == nil {
		s, err := NewLDAP(c.LDAP)
		if err != nil {
			return nil, err
		}
		c.Source = s
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Directory{cfg: c, src: c.Source, log: c.Log.With("component", "directory"), ctx: ctx, stop: stop}, nil
}

// Start reads the directory in the background now and then every TTL
// (RetryAfterFailure after a failed read), until Close.
func (d *Directory) Start() { d.schedule(0) }

// Close stops the reading; the copy stays usable.
func (d *Directory) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stop()
	if d.timer != nil {
		d.timer.Stop()
	}
}

func (d *Directory) schedule(after time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return
	}
	d.timer = d.cfg.Clock.AfterFunc(after, d.tick)
}

func (d *Directory) tick() {
	ctx, cancel := context.WithTimeout(d.ctx, 3*d.cfg.LDAP.Timeout.D())
	err := d.Refresh(ctx)
	cancel()
	next := d.cfg.LDAP.TTL.D()
	if err != nil {
		next = min(next, RetryAfterFailure)
	}
	d.schedule(next)
}

// Refresh reads the directory once: on success the new copy replaces the
// old one; on failure the old one stays, Alarm is raised and the error is
// returned.
func (d *Directory) Refresh(ctx context.Context) error {
	now := d.cfg.Clock.Now()
	raw, err := d.src.Read(ctx)
	var s *snapshot
	if err == nil {
		s = build(raw, d.cfg.LDAP, d.cfg.Deny, d.log)
		s.at = now
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.attempt = now
	d.lastErr = err
	if err != nil {
		d.log.Warn("directory: read failed; keeping the last good copy", "url", d.cfg.LDAP.URL, "err", err,
			"copy_from", d.snapAt())
		return fmt.Errorf("directory: read %s: %w", d.cfg.LDAP.URL, err)
	}
	d.snap = s
	d.log.Info("directory: read", "users", len(s.users), "entries", len(s.book), "refused", s.refused)
	return nil
}

// snapAt is when the current copy was read (zero without one); d.mu held.
func (d *Directory) snapAt() time.Time {
	if d.snap == nil {
		return time.Time{}
	}
	return d.snap.at
}

// copy returns the last good copy, or ErrNoCopy.
func (d *Directory) copy() (*snapshot, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.snap == nil {
		return nil, ErrNoCopy
	}
	return d.snap, nil
}

// Alarm returns the alarm to show (directory.Alarm) while the last read
// failed or none has succeeded after the first attempt; "" otherwise.
func (d *Directory) Alarm() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.lastErr != nil {
		return Alarm
	}
	return ""
}

// Status reports the directory's state.
func (d *Directory) Status() Status {
	d.mu.RLock()
	defer d.mu.RUnlock()
	st := Status{URL: d.cfg.LDAP.URL, State: "ok"}
	if !d.attempt.IsZero() {
		t := d.attempt
		st.LastAttempt = &t
	}
	if d.snap != nil {
		t := d.snap.at
		st.LastSync = &t
		st.Users, st.Entries, st.Refused = len(d.snap.users), len(d.snap.book), d.snap.refused
	}
	switch {
	case d.lastErr != nil:
		st.State, st.Error = "unreachable", d.lastErr.Error()
	case d.snap == nil:
		st.State = "not_read"
	}
	if d.snap == nil && d.lastErr != nil {
		st.State = "not_read"
	}
	return st
}
