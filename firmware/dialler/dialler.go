// Package dialler defines how the scheduler hands one attempt to a line and
// learns what happened. Implementations: testline (simulated outcomes, no
// dialling), and the Asterisk transports (AMI originate, call files).
//
// Contract:
//   - Dial returns once the dial command has been issued (or failed to be);
//     it never waits for the call. Every Dial that returns nil is followed by
//     exactly one Result for its AttemptID, delivered through the Sink.
//   - Progress reports are optional and may arrive in any number before Result.
//   - Hangup ends an attempt in progress; its Result still follows.
//   - Reconcile is asked after a restart which attempts are still up; for
//     those a Result will follow, the rest are lost and the scheduler retries
//     them.
package dialler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/faxbox/faxbox/firmware/job"

	"github.com/faxbox/faxbox/firmware/failure"
)

// ErrUnknownAttempt is returned by Hangup for an attempt the dialler does not
// have in progress.
var ErrUnknownAttempt = errors.New("dialler: unknown attempt")

// ErrRequest is returned by Request.Check for a request that is neither
// exactly a fax nor exactly a call.
var ErrRequest = errors.New("dialler: a request is a fax or a call")

// Request is one attempt: what every attempt has, and exactly one of Fax
// (send pages) or Call (a call job's call).
type Request struct {
	AttemptID string // unique; Asterisk ChannelId / call file name
	JobID     string
	To        string // digits, optionally a leading +; validated before here
	// Line is the line the attempt occupies (its group and 1-based
	// number). A line carries one attempt at a time, so a dialler may keep
	// one result per line (Keeper) and the space that takes stays bounded.
	Line job.LineID
	Fax  *FaxSpec
	Call *CallSpec
}

// FaxSpec is what a fax attempt sends and how.
type FaxSpec struct {
	TIFF       string // absolute path of the TIFF-F holding the pages to send
	FirstPage  int    // 1-based page of the document the TIFF starts at
	Pages      int    // pages in TIFF
	TotalPages int    // pages in the whole document
	StationID  string
	ECM        bool
	T38        bool // offer T.38; when false send G.711 audio only
	MaxRate    int  // 0 = engine default (14400)
	// AudioFallback lets a T.38 sender fall back to G.711 audio (SendFAX f).
	AudioFallback bool
}

// CallSpec is what a call attempt does; the Request's To is the number it
// calls.
type CallSpec struct {
	Kind         job.CallKind
	Agent        string // click2call: rings first
	Sound        string // message: absolute path of the 8 kHz WAV, without extension
	Repeat       int
	ConfirmDigit string
}

// Kind returns the kind of job the request belongs to.
func (r Request) Kind() job.Kind {
	if r.Call != nil {
		return job.KindCall
	}
	return job.KindFax
}

// Check reports ErrRequest unless exactly one of Fax and Call is set.
func (r Request) Check() error {
	if (r.Fax == nil) == (r.Call == nil) {
		return fmt.Errorf("%w: attempt %s", ErrRequest, r.AttemptID)
	}
	return nil
}

// State of an attempt as the line sees it.
type State string

// Attempt states reported by Progress.
const (
	StateDialing  State = "dialing"
	StateRinging  State = "ringing"
	StateAnswered State = "answered"
	StateSending  State = "sending" // fax session up; Page/Pages meaningful
)

// Progress is a report on an attempt in flight.
type Progress struct {
	AttemptID string
	State     State
	Page      int // page being sent, relative to the attempt's TIFF (1-based)
	Pages     int
	Transport string // t38|g711|test once known
	Channel   string
	At        time.Time
}

// Result is how an attempt ended. Code is empty when the fax was delivered.
type Result struct {
	AttemptID       string
	Code            failure.Code // "" on success
	Raw             string       // Asterisk/spandsp text, verbatim
	Answered        bool
	ReachedFax      bool // a fax session started (counts as a try)
	PagesSent       int  // pages the remote confirmed, relative to the TIFF
	BitRate         int
	ECM             bool
	Transport       string
	RemoteStationID string
	Channel         string
	AnsweredAt      time.Time
	EndedAt         time.Time
	// Calls.
	Digit       string // the key pressed (message with confirm_digit)
	Acked       bool
	TalkSeconds int
}

// OK reports whether the attempt delivered every page.
func (r Result) OK() bool { return r.Code == "" }

// Sink receives the reports of a dialler. Calls may come from any goroutine;
// implementations must not block for long.
type Sink interface {
	Progress(Progress)
	Result(Result)
}

// Dialler places fax attempts on one kind of line.
type Dialler interface {
	// Dial issues the dial command for r and returns; see the package contract.
	Dial(ctx context.Context, r Request) error
	// Hangup ends attempt id if it is in progress.
	Hangup(ctx context.Context, attemptID string) error
	// Reconcile is asked after a restart about the attempts that were in a
	// call, each given as the Request it was dialled with (rebuilt from the
	// job record, without the TIFF). It returns the attempt ids the dialler
	// still has up and adopts them: a Result follows for each of those.
	Reconcile(ctx context.Context, attempts []Request) (alive map[string]bool, err error)
}

// Keeper is a Dialler whose lines keep each attempt's result where a
// restarted faxbox finds it (Asterisk: AstDB). The engine asks it for
// attempts that Reconcile did not find up, before calling them interrupted
// (which would send a delivered fax again).
type Keeper interface {
	// Kept returns the result of attempt r, if one was kept. A line keeps
	// the result of its latest attempt only (Request.Line), so what is kept
	// does not grow with the number of faxes sent.
	Kept(ctx context.Context, r Request) (Result, bool)
}

// LineStatus is what a line is doing, as the panel and /v1/lines show it.
type LineStatus string

// Line statuses: in a call, the attempt's State; otherwise idle, or out of
// service (made busy wins over down).
const (
	LineIdle      LineStatus = "idle"
	LineDialing   LineStatus = LineStatus(StateDialing)
	LineRinging   LineStatus = LineStatus(StateRinging)
	LineAnswered  LineStatus = LineStatus(StateAnswered)
	LineSending   LineStatus = LineStatus(StateSending)
	LineBusiedOut LineStatus = "busied_out"
	LineDown      LineStatus = "down"
)

// LineState is a line's (channel's) state for the panel and /v1/status.
type LineState struct {
	Group   string     `json:"group"`
	Index   int        `json:"index"` // 1-based
	State   LineStatus `json:"state"`
	JobID   string     `json:"job_id,omitempty"`
	To      string     `json:"to,omitempty"`
	Page    int        `json:"page,omitempty"`
	Pages   int        `json:"pages,omitempty"`
	Busy    bool       `json:"busied_out,omitempty"`
	Healthy bool       `json:"healthy"`
}

// ID returns the line's id ("group/n").
func (ls LineState) ID() job.LineID { return job.LineID{Group: ls.Group, N: ls.Index} }
