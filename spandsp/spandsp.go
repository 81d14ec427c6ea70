// Package spandsp is faxbox's knowledge of the fax engine: what every result
// Asterisk and spandsp report means for a job — a stable failure code, whether
// to retry, whether the call reached a fax machine (a "try"), and the next
// step of the fallback ladder.
//
// Sources, in the order Classify reads them: the FaxboxResult UserEvent
// (FAXOPT status/error/statusstr), the DialEnd DialStatus, the Hangup cause
// (Q.850) and the OriginateResponse Reason.
package spandsp

import (
	"strings"

	"github.com/faxbox/faxbox/firmware/failure"
)

// Fallback is a step down the ladder after a fax-level failure.
type Fallback string

// Ladder steps.
const (
	None          Fallback = "none"
	AudioFallback Fallback = "audio_fallback" // T.38 → G.711
	ECMOff        Fallback = "ecm_off"
	Rate9600      Fallback = "rate_9600"
)

// Outcome is what Asterisk told about one attempt.
type Outcome struct {
	Answered    bool   // OriginateResponse Success
	Status      string // FAXOPT(status): SUCCESS, FAILED, ...
	Error       string // FAXOPT(error): HANGUP, T38_NEG_ERROR, ...
	StatusStr   string // FAXOPT(statusstr): spandsp's T.30 text
	Pages       int
	DialStatus  string // DialEnd
	HangupCause int    // Q.850, -1 unknown
	Reason      int    // OriginateResponse Reason, -1 unknown
	HaveResult  bool   // a FaxboxResult event arrived
	// T38: the call switched to T.38 (FAXStatus "T.38 Negotiated"): the
	// far end is a fax machine, whatever happened next.
	T38 bool
}

// Verdict is the classification.
type Verdict struct {
	Code       failure.Code // "" when delivered
	Raw        string
	Retryable  bool
	ReachedFax bool
	Next       Fallback
}

// generic FAXOPT(error) values of res_fax.
var faxErrors = map[string]failure.Code{
	"INIT_ERROR":           failure.FaxEngine,
	"FILE_ERROR":           failure.BoxDocumentAccess, // see fileError
	"T38_NEG_ERROR":        failure.FaxT38Negotiation,
	"HANGUP":               failure.FaxRemoteHangup,
	"TIMEOUT":              failure.FaxTimeout,
	"NEGOTIATION_ERROR":    failure.FaxNegotiation,
	"PROTOCOL_ERROR":       failure.FaxProtocol,
	"TRAINING_ERROR":       failure.FaxTraining,
	"RETRAIN_ERROR":        failure.FaxTraining,
	"MEMORY_ERROR":         failure.FaxEngine,
	"UNKNOWN_ERROR":        failure.FaxEngine,
	"CAP_ERROR":            failure.FaxNegotiation,
	"INVALID_ARGUMENTS":    failure.FaxEngine,
	"UNSUPPORTED_ERROR":    failure.FaxNegotiation,
	"MODEM_ERROR":          failure.FaxEngine,
	"CALL_DROPPED":         failure.FaxRemoteHangup,
	"NO_FAX":               failure.FaxRemoteNotFax,
	"FAX_ERROR":            failure.FaxProtocol,
	"BUSY":                 failure.LineBusy,
	"NOANSWER":             failure.LineNoAnswer,
	"PAGE_ERRORS":          failure.FaxPageErrors,
	"RECEIVE_BUFFER_ERROR": failure.FaxEngine,
}

// spandsp T.30 completion texts (t30_completion_code_to_str), by substring.
var t30Texts = []struct {
	text string
	code failure.Code
}{
	{"call dropped prematurely", failure.FaxRemoteNotFax},
	{"timed out waiting for initial communication", failure.FaxRemoteNotFax},
	{"timed out waiting for the first message", failure.FaxRemoteNotFax},
	{"far end is not compatible", failure.FaxNegotiation},
	{"received no response to dcs", failure.FaxNegotiation},
	{"no response to dcs", failure.FaxNegotiation},
	{"dcs", failure.FaxNegotiation},
	{"failed to train", failure.FaxTraining},
	{"training", failure.FaxTraining},
	{"invalid response after sending a page", failure.FaxProtocol},
	{"disconnected after permission to transmit", failure.FaxRemoteHangup},
	{"unexpected dcn", failure.FaxRemoteHangup},
	{"too many errors", failure.FaxPageErrors},
	{"rtn", failure.FaxPageErrors},
	{"ecm", failure.FaxPageErrors},
	{"tiff/f", failure.DocumentUnreadable},
	{"error reading file", failure.BoxDocumentAccess}, // res_fax's own access() check
	{"file", failure.DocumentUnreadable},
	{"t.38", failure.FaxT38Negotiation},
	{"timed out", failure.FaxTimeout},
}

// dialStatus values of DialEnd.
var dialStatus = map[string]failure.Code{
	"BUSY":        failure.LineBusy,
	"NOANSWER":    failure.LineNoAnswer,
	"CONGESTION":  failure.LineCongestion,
	"CHANUNAVAIL": failure.LineUnavailable,
	"CANCEL":      failure.LineNoAnswer,
	"DONTCALL":    failure.LineRejected,
	"TORTURE":     failure.LineRejected,
	"INVALIDARGS": failure.LineInvalidNumber,
}

// Cause maps a Q.850 hangup cause of a call that was not answered.
func Cause(cause int) (failure.Code, bool) {
	switch cause {
	case 1, 3, 22, 28: // unallocated, no route, number changed, invalid format
		return failure.LineInvalidNumber, true
	case 17:
		return failure.LineBusy, true
	case 18, 19, 20: // no user responding, no answer, subscriber absent
		return failure.LineNoAnswer, true
	case 21:
		return failure.LineRejected, true
	case 27, 34, 38, 41, 42, 44, 47: // destination out of order, no circuit, network out of order, temporary failure, congestion
		return failure.LineCongestion, true
	case 127:
		return failure.LineUnavailable, true
	}
	return "", false
}

// Classify decides what an attempt's outcome means.
func Classify(o Outcome) Verdict {
	raw := strings.TrimSpace(strings.Join(nonEmpty(o.Status, o.Error, o.StatusStr, o.DialStatus, causeText(o.HangupCause)), " / "))
	if raw == "" {
		raw = "the call ended without a result from Asterisk"
	}
	if o.HaveResult && strings.EqualFold(o.Status, "SUCCESS") {
		// On success the sender's error is HANGUP: key on status.
		return Verdict{Raw: raw, ReachedFax: true, Next: None}
	}
	if !o.Answered && !o.HaveResult {
		code := failure.LineNoAnswer
		if c, ok := dialStatus[strings.ToUpper(o.DialStatus)]; ok {
			code = c
		} else if c, ok := Cause(o.HangupCause); ok {
			code = c
		} else {
			switch o.Reason { // OriginateResponse Reason (busy is 0 over PJSIP)
			case 1:
				code = failure.LineUnavailable
			case 3:
				code = failure.LineNoAnswer
			case 5:
				code = failure.LineBusy
			case 8:
				code = failure.LineCongestion
			}
		}
		return verdict(code, raw, false)
	}
	if !o.HaveResult {
		return verdict(failure.LineDropped, raw, false)
	}
	code := failure.FaxProtocol
	st := strings.ToLower(o.StatusStr)
	matched := false
	for _, t := range t30Texts {
		if st != "" && strings.Contains(st, t.text) {
			code, matched = t.code, true
			break
		}
	}
	if c, ok := faxErrors[strings.ToUpper(o.Error)]; ok && (!matched || c == failure.FaxT38Negotiation) {
		code = c
	}
	if strings.EqualFold(o.Error, "FILE_ERROR") {
		code = fileError(st)
	}
	if code == failure.FaxRemoteHangup && o.Pages == 0 && strings.Contains(st, "dropped") {
		code = failure.FaxRemoteNotFax
	}
	if code == failure.FaxRemoteNotFax && o.T38 {
		// Only a fax machine accepts the switch to T.38: a session that
		// then dropped (heavy UDPTL loss, say) lost its fax, not its
		// far end's nature.
		code = failure.FaxRemoteHangup
	}
	reached := code != failure.FaxRemoteNotFax && code != failure.BoxDocumentAccess
	return verdict(code, raw, reached || o.Pages > 0)
}

// fileError tells the two kinds of FILE_ERROR apart (st: the lower-case
// FAXOPT(statusstr)). spandsp reports a TIFF it opened but cannot use with a
// "TIFF/F ..." T.30 text: the document's fault. res_fax reports "error
// reading file" when its access() check fails before any fax session: the
// file is missing where Asterisk looks or Asterisk's user may not read it.
// faxbox validates every TIFF before it dials, so that is the box's fault
// (its data directory or permissions), never the document's.
func fileError(st string) failure.Code {
	if strings.Contains(st, "tiff/f") {
		return failure.DocumentUnreadable
	}
	return failure.BoxDocumentAccess
}

func verdict(code failure.Code, raw string, reached bool) Verdict {
	v := Verdict{Code: code, Raw: raw, Retryable: failure.Lookup(code).Retryable, ReachedFax: reached, Next: None}
	switch code {
	case failure.FaxT38Negotiation:
		v.Next = AudioFallback
	case failure.FaxTraining, failure.FaxNegotiation, failure.FaxPageErrors, failure.FaxProtocol:
		v.Next = ECMOff
	}
	return v
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func causeText(c int) string {
	if c <= 0 {
		return ""
	}
	return "cause " + itoa(c)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
