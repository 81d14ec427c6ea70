// Package selftest holds what the box's self-test and trunk qualification
// share: the loopback number and endpoint its Asterisk is rendered with, the
// record of a run as the API shows it, and the scoring of a fax path from an
// attempt's media report (score.go).
//
// The loop. The self-test is one fax job of the box's own (job.Internal
// "selftest"), taken through the engine like any other: converted, put on
// the self-test line (one line, group SelfTestGroup, which dials only
// Number), dialled by the Asterisk dialler as
// PJSIP/<number>@faxbox-selftest. That endpoint's contact is the box's own
// SIP transport, so the INVITE comes back in over UDP; it is identified by
// its request URI (sip:<number>@<box address>:<sip port>, tried before the
// trunk's identify-by-IP) as the same endpoint, whose context
// faxbox-selftest ReceiveFAXes into <receive_dir>/selftest-<job id>.tif
// (the job id travels as the caller name). spandsp thus sends and receives
// the fax, over T.38/UDPTL when both legs take the re-INVITE (else G.711),
// and the media capture sees both legs on the loopback interface. The run
// passes when the attempt is delivered and the received TIFF has as many
// pages as were sent.
//
// The loopback number is derived from the manager secret (a keyed hash),
// so nobody who does not know the box's configuration can address the
// self-test context from outside.
package selftest

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
)

// Names shared by the rendered Asterisk configuration and the box.
const (
	// Endpoint is the PJSIP endpoint (and AOR) that loops back to the box.
	Endpoint = "faxbox-selftest"
	// Context receives the loop's faxes.
	Context = "faxbox-selftest"
	// Group is the line group of the self-test's one line.
	Group = "selftest"
	// FilePrefix starts the received file's name in the receive directory.
	FilePrefix = "selftest-"
)

// Internal marks of the box's own jobs (job.Job.Internal).
const (
	InternalSelfTest = "selftest"
	InternalQualify  = "qualify"
)

// Number returns the self-test's loopback number for a box whose manager
// secret is secret: "7" and 11 digits of a SHA-256 of it.
func Number(secret string) string {
	sum := sha256.Sum256([]byte("faxbox-selftest\x00" + secret))
	return fmt.Sprintf("7%011d", binary.BigEndian.Uint64(sum[:8])%100_000_000_000)
}

// ReceivedFile is the name, in the receive directory, of the self-test
// job's received TIFF.
func ReceivedFile(jobID string) string { return FilePrefix + jobID + ".tif" }

// Status is where a run stands.
type Status string

// Run states.
const (
	Running Status = "running"
	Passed  Status = "passed"
	Failed  Status = "failed"
)

// Kind is what a run does.
type Kind string

// Kinds of run.
const (
	KindSelfTest Kind = "selftest"
	KindQualify  Kind = "qualify"
)

// Codes of the self-test's own failures (beside the attempt's fax and line
// codes).
const (
	CodePagesMismatch failure.Code = "selftest.pages_mismatch"
	CodeNoReception   failure.Code = "selftest.nothing_received"
	CodeNoLoop        failure.Code = "selftest.no_loop"
	CodeInterrupted   failure.Code = "selftest.interrupted"
	CodeTimeout       failure.Code = "selftest.timeout"
)

// Error returns a run error with code and message (class selftest).
func Error(code failure.Code, msg string) *job.Error {
	return &job.Error{Code: code, Class: "selftest", Message: msg}
}

// Run is one self-test or trunk qualification as the API shows it.
type Run struct {
	Kind   Kind   `json:"kind"`
	Status Status `json:"status"`
	// Path: "loopback" (through the box's Asterisk back to itself),
	// "test_line" (a box without Asterisk: engine and conversion only) or
	// "trunk".
	Path      string     `json:"path"`
	Trunk     string     `json:"trunk,omitempty"`
	To        string     `json:"to,omitempty"` // qualification: the number faxed
	JobID     string     `json:"job_id"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// PagesSent: the pages the fax had; PagesReceived: those the loop's
	// receiving side wrote (self-test over the loop only).
	PagesSent     int  `json:"pages_sent"`
	PagesReceived *int `json:"pages_received,omitempty"`
	// Attempt is the job's last attempt, with its media report.
	Attempt *job.Attempt `json:"attempt,omitempty"`
	// Error says why a failed run failed (code and words).
	Error *job.Error `json:"error,omitempty"`
	// Qualification: the path's score and recommendations (qualify).
	Qualification *Qualification `json:"qualification,omitempty"`
}

// Summary is the run in a few words, for the LCD and logs: "passed",
// "running", "failed line.busy".
func (r *Run) Summary() string {
	if r == nil {
		return "never run"
	}
	s := string(r.Status)
	if r.Status == Failed && r.Error != nil {
		s += " " + string(r.Error.Code)
	}
	if r.Qualification != nil && r.Status != Running {
		s = fmt.Sprintf("%s score %d", s, r.Qualification.Score)
	}
	return s
}

// Finish ends r from its job: passed when the job was delivered (and, for
// a loopback self-test, received equals pages — see CheckPages), failed
// with the job's error otherwise.
func (r *Run) Finish(j *job.Job, now time.Time) {
	r.EndedAt = &now
	r.PagesSent = j.Pages
	if a := j.LastAttempt(); a != nil {
		c := *a
		r.Attempt = &c
	}
	if j.Status == job.Delivered {
		r.Status = Passed
		return
	}
	r.Status = Failed
	switch {
	case j.Error != nil:
		e := *j.Error
		r.Error = &e
	case r.Attempt != nil && r.Attempt.Error != nil:
		e := *r.Attempt.Error
		r.Error = &e
	default:
		r.Error = Error(failure.Code("job."+string(j.Status)), "the fax ended "+string(j.Status))
	}
}

// CheckPages compares the pages received on the loop with those sent; a
// passed run whose counts differ (or whose reception is missing) fails.
func (r *Run) CheckPages(received int, err error) {
	if r.Status != Passed {
		return
	}
	if err != nil {
		r.Status = Failed
		r.Error = Error(CodeNoReception, "the box's own receiving side wrote no readable fax: "+err.Error())
		return
	}
	r.PagesReceived = &received
	if received != r.PagesSent {
		r.Status = Failed
		r.Error = Error(CodePagesMismatch, fmt.Sprintf("%d pages sent, %d received on the loop", r.PagesSent, received))
	}
}

// Host is the address the loop calls the box's SIP transport on: its bind
// address, or 127.0.0.1 when it binds every IPv4 address (:: for IPv6:
// ::1).
func Host(bind string) string {
	switch bind {
	case "", "0.0.0.0":
		return "127.0.0.1"
	case "::", "[::]":
		return "[::1]"
	}
	if strings.Contains(bind, ":") && !strings.HasPrefix(bind, "[") {
		return "[" + bind + "]"
	}
	return bind
}

// Errors of starting a run (the API maps them to its answers).
var (
	// ErrRunning: a run of the same kind (and trunk) has not ended yet.
	ErrRunning = errors.New("selftest: a run is in progress")
	// ErrNoTrunk: no SIP trunk of that name.
	ErrNoTrunk = errors.New("selftest: no such trunk")
	// ErrNoNumber: no number to qualify the trunk with.
	ErrNoNumber = errors.New("selftest: no number to send the test fax to (qualify.number, or number in the request)")
	// ErrBadNumber: the number is not 3 to 20 digits.
	ErrBadNumber = errors.New("selftest: number must be 3 to 20 digits, optionally a leading +")
	// ErrNoLine: no line group dials through the trunk.
	ErrNoLine = errors.New("selftest: no line group dials through the trunk")
)
