// Package job holds the records faxbox keeps for every fax (and call) it is
// asked to send: the job, its attempts and its terminal error. The same
// structs are persisted by store and served as JSON by api, so field names
// are part of the public API.
package job

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/faxbox/faxbox/firmware/failure"
)

// Status is a job's lifecycle state.
type Status string

// Lifecycle states. Delivered, Failed and Cancelled are terminal.
const (
	Queued     Status = "queued"
	Converting Status = "converting"
	Ready      Status = "ready"
	Dialing    Status = "dialing"
	Sending    Status = "sending"
	RetryWait  Status = "retry_wait"
	Delivered  Status = "delivered"
	Failed     Status = "failed"
	Cancelled  Status = "cancelled"
)

// Terminal reports whether no further attempt will be made.
func (s Status) Terminal() bool { return s == Delivered || s == Failed || s == Cancelled }

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case Queued, Converting, Ready, Dialing, Sending, RetryWait, Delivered, Failed, Cancelled:
		return true
	}
	return false
}

// Active reports whether an attempt is in progress on a line.
func (s Status) Active() bool { return s == Dialing || s == Sending }

// Kind is what a job is: a fax to send or a call to place.
type Kind string

// Kinds of job.
const (
	KindFax  Kind = "fax"
	KindCall Kind = "call"
)

// CallKind is what a call job does.
type CallKind string

// Call kinds.
const (
	// CallClick2Call rings Agent first, then dials To and bridges them.
	CallClick2Call CallKind = "click2call"
	// CallMessage speaks or plays a message to To.
	CallMessage CallKind = "message"
	// CallCallback calls back a caller who rang the callback number and
	// offers them a line out (PIN, then a destination).
	CallCallback CallKind = "callback"
)

// CallSpec describes a call job: click-to-call, a spoken or played message, or an inbound callback.
type CallSpec struct {
	Kind CallKind `json:"kind"`
	// click2call: Agent rings first; once answered, To is dialled and
	// bridged.
	Agent string `json:"agent,omitempty"`
	// message: Say is spoken (espeak-ng), Repeat times; ConfirmDigit, when
	// set, is the key that acknowledges; FallbackTo are called in order
	// when nobody answers or acknowledges.
	Say          string   `json:"say,omitempty"`
	Play         string   `json:"play,omitempty"` // uploaded recording, in the job's document directory
	Repeat       int      `json:"repeat,omitempty"`
	ConfirmDigit string   `json:"confirm_digit,omitempty"`
	FallbackTo   []string `json:"fallback_to,omitempty"`
}

// Duration is a time.Duration that reads and writes as a Go duration string
// ("5m", "90s") in JSON; it also reads a number of seconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "5m" or 300.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: want a string like \"5m\" or seconds, got %s", b)
	}
	*d = Duration(n * float64(time.Second))
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// File is one uploaded document part, in the order it is sent.
type File struct {
	Name   string `json:"name"`
	Type   string `json:"type"` // pdf, tiff, png, jpeg, text (sniffed from content)
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Path   string `json:"-"` // relative to the job's document directory
}

// Options are the sender's fax settings for a job.
type Options struct {
	Header     string `json:"header"`
	StationID  string `json:"station_id,omitempty"`
	Resolution string `json:"resolution"` // standard|fine|superfine
	PageSize   string `json:"page_size"`  // a4|letter|legal
	ECM        string `json:"ecm"`        // auto|on|off
	T38        string `json:"t38"`        // auto|on|off
	LineGroup  string `json:"line_group,omitempty"`
}

// Error is a job's or attempt's failure as the user sees it.
type Error struct {
	Code      failure.Code `json:"code"`
	Class     string       `json:"class"`
	Retryable bool         `json:"retryable"`
	Message   string       `json:"message"`
	Raw       string       `json:"raw,omitempty"` // Asterisk/spandsp text, verbatim
}

// NewError builds an Error from a code, with raw kept beside it.
func NewError(c failure.Code, raw string) *Error {
	i := failure.Lookup(c)
	return &Error{Code: c, Class: i.Class, Retryable: i.Retryable, Message: i.Message, Raw: raw}
}

// Attempt is one dial of a job.
type Attempt struct {
	ID         string        `json:"id"`
	N          int           `json:"n"`
	Line       LineID        `json:"line"`
	Channel    string        `json:"channel,omitempty"`
	StartedAt  time.Time     `json:"started_at"`
	AnsweredAt *time.Time    `json:"answered_at,omitempty"`
	EndedAt    *time.Time    `json:"ended_at,omitempty"`
	Result     AttemptResult `json:"result,omitempty"`
	Error      *Error        `json:"error,omitempty"`
	FirstPage  int           `json:"first_page"`         // 1-based page of the document this attempt started at
	PagesSent  int           `json:"pages_sent"`         // pages the remote confirmed in this attempt
	BitRate    int           `json:"bit_rate,omitempty"` // negotiated
	// ECM: error correction was asked for (Asterisk does not report whether
	// the far end agreed).
	ECM             bool   `json:"ecm"`
	Transport       string `json:"transport,omitempty"` // t38|g711|test
	RemoteStationID string `json:"remote_station_id,omitempty"`
	DurationMS      int64  `json:"duration_ms,omitempty"`
	// Calls: the number this attempt called, the digit pressed, talk time.
	Number      string `json:"number,omitempty"`
	Digit       string `json:"digit,omitempty"`
	TalkSeconds int    `json:"talk_seconds,omitempty"`
	// Batch: the call this attempt shared with attempts of other jobs to the
	// same number (the id the line knows the call by), and how many pages of
	// those jobs went before this one's in it. Empty for a call of its own.
	Call       string `json:"call,omitempty"`
	CallOffset int    `json:"call_offset,omitempty"`
	// Settings the attempt was made with (fallback ladder).
	T38       bool `json:"t38_offered"`
	MaxRate   int  `json:"max_rate,omitempty"`
	Reconcile bool `json:"-"`
	// Media: what the media monitor saw of the call (IP lines only).
	Media *MediaReport `json:"media,omitempty"`
	// Decision: why the attempt's settings differ from the job's, from
	// what the box learned of the destination ("G.711 because T.38
	// negotiation failed to this number on …").
	Decision string `json:"decision,omitempty"`
}

// Compat holds the fields of a job submitted through /faxservice/.
type Compat struct {
	FaxID     string `json:"fax_id"`
	ReturnURL string `json:"return_url"`
}

// Job is a fax to send and everything that happened to it.
type Job struct {
	ID             string   `json:"id"`
	Kind           Kind     `json:"kind"`
	ClientRef      string   `json:"client_ref,omitempty"`
	To             string   `json:"to"`
	Status         Status   `json:"status"`
	Pages          int      `json:"pages"`
	PagesConfirmed int      `json:"pages_confirmed"`
	Priority       int      `json:"priority"`
	MaxAttempts    int      `json:"max_attempts"`
	RetryInterval  Duration `json:"retry_interval"`
	CallbackURL    string   `json:"callback_url,omitempty"`
	// NotifyEmail is the address the job's result is mailed to (e-mail to
	// fax: the sender; the API's notify_email).
	NotifyEmail string  `json:"notify_email,omitempty"`
	Options     Options `json:"options"`

	// NotifyXMPP is the bare JID the job's outcome is sent to over XMPP
	// (the API's notify_xmpp), besides the box's configured recipients.
	NotifyXMPP string `json:"notify_xmpp,omitempty"`

	// Group is the line group chosen for the job when it was accepted. A
	// configuration change that takes it away, or makes it no longer dial
	// To, routes the job again (recorded in Rerouted).
	Group         string     `json:"group,omitempty"`
	Rerouted      string     `json:"rerouted_from,omitempty"`
	Files         []File     `json:"files"`
	ContentHash   string     `json:"-"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	SendAt        *time.Time `json:"send_at,omitempty"`
	ExpireAt      time.Time  `json:"expire_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	Dials         int        `json:"dials"` // calls placed
	Tries         int        `json:"tries"` // calls that reached a fax machine
	// RetryBase is Dials when the job was last retried by hand, plus the
	// dials lost to the box's own faults (class box) since: max_attempts
	// counts the dials after it.
	RetryBase int           `json:"retry_base,omitempty"`
	Attempts  []Attempt     `json:"attempts"`
	Error     *Error        `json:"error,omitempty"`
	Compat    *Compat       `json:"compat,omitempty"`
	Call      *CallSpec     `json:"call,omitempty"`
	Fallback  FallbackState `json:"fallback"`
	Purged    bool          `json:"documents_purged,omitempty"`
	Seq       uint64        `json:"-"` // arrival order, for scheduling ties
	// Internal marks the box's own jobs ("selftest", "qualify"): they are
	// left out of job lists and send no webhook, mail or XMPP message.
	Internal string `json:"internal,omitempty"`
}

// FallbackState is where a job stands on the fallback ladder: what the next
// attempt will try after fax-level failures.
type FallbackState struct {
	NoT38   bool `json:"no_t38,omitempty"`
	NoECM   bool `json:"no_ecm,omitempty"`
	MaxRate int  `json:"max_rate,omitempty"`
}

// LastAttempt returns the newest attempt, or nil.
func (j *Job) LastAttempt() *Attempt {
	if len(j.Attempts) == 0 {
		return nil
	}
	return &j.Attempts[len(j.Attempts)-1]
}

// Clone returns a deep copy, so a job can be handed to another goroutine.
func (j *Job) Clone() *Job {
	c := *j
	c.Files = append([]File(nil), j.Files...)
	c.Attempts = append([]Attempt(nil), j.Attempts...)
	if j.Error != nil {
		e := *j.Error
		c.Error = &e
	}
	if j.Compat != nil {
		cp := *j.Compat
		c.Compat = &cp
	}
	if j.Call != nil {
		cs := *j.Call
		cs.FallbackTo = append([]string(nil), j.Call.FallbackTo...)
		c.Call = &cs
	}
	return &c
}

// CallNumber returns the number attempt n (1-based) of a call job dials:
// To, then each FallbackTo in order, then To again.
func (j *Job) CallNumber(n int) string {
	if j.Call == nil || len(j.Call.FallbackTo) == 0 || n <= 1 {
		return j.To
	}
	i := (n - 2) % (len(j.Call.FallbackTo) + 1)
	if i == len(j.Call.FallbackTo) {
		return j.To
	}
	return j.Call.FallbackTo[i]
}
