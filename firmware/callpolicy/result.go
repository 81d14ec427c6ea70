package callpolicy

import (
	"strconv"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/spandsp"
)

// End is what Asterisk reported of a call attempt by the time it ended.
type End struct {
	Kind job.CallKind
	// ConfirmDigit is a message's acknowledgement key ("" asks for none).
	ConfirmDigit string
	// Answered: the originated channel (the agent for click2call, the
	// called party otherwise) was answered.
	Answered bool
	// DialStatus of the originated channel (DialEnd), HangupCause its
	// Q.850 cause and Reason the OriginateResponse Reason; -1 unknown.
	DialStatus  string
	HangupCause int
	Reason      int
	// Report is the dialplan's report from the call's h extension (the
	// FaxboxCall user event); nil when none arrived.
	Report *Report
	// Refused is the callback flow's refusal (Flow.Refused).
	Refused failure.Code
}

// Report is the dialplan's report of a call, verbatim: the bridged dial's
// DIALSTATUS, HANGUPCAUSE and ANSWEREDTIME (seconds), and the key pressed.
type Report struct {
	DialStatus   string
	HangupCause  string
	AnsweredTime string
	Digit        string
}

// Result says what the end of a call attempt means; Code is "" for a call
// that did what it was for. Unanswered, a call fails with the line's code
// (spandsp.Classify), except that for click2call an agent not answering or
// busy is failure.CallAgentNoAnswer (the customer was never called).
// Answered without a Report it is failure.LineDropped. Otherwise the kind
// decides: see click2call, callback and message.
func Result(e End) dialler.Result {
	if !e.Answered {
		v := spandsp.Classify(spandsp.Outcome{DialStatus: e.DialStatus, HangupCause: e.HangupCause, Reason: e.Reason})
		code := v.Code
		if e.Kind == job.CallClick2Call && (code == failure.LineNoAnswer || code == failure.LineBusy) {
			code = failure.CallAgentNoAnswer
		}
		return dialler.Result{Code: code, Raw: v.Raw}
	}
	r := dialler.Result{Answered: true}
	if e.Report == nil {
		r.Code, r.Raw = failure.LineDropped, "the call ended without a result from Asterisk"
		return r
	}
	r.Raw = "dial status " + e.Report.DialStatus + ", hangup cause " + e.Report.HangupCause
	switch e.Kind {
	case job.CallClick2Call:
		click2call(&r, e.Report)
	case job.CallCallback:
		callback(&r, e.Report, e.Refused)
	case job.CallMessage:
		message(&r, e.Report, e.ConfirmDigit)
	default:
		r.Code, r.Raw = failure.Internal, "unknown call kind "+strconv.Quote(string(e.Kind))
	}
	return r
}

// click2call: the customer's leg decides, by the bridged dial's status.
func click2call(r *dialler.Result, p *Report) {
	switch p.DialStatus {
	case "ANSWER":
		r.TalkSeconds, _ = strconv.Atoi(p.AnsweredTime)
	case "BUSY":
		r.Code = failure.CallCustomerBusy
	case "NOANSWER", "CANCEL":
		r.Code = failure.CallCustomerNoAnswer
	case "CONGESTION", "CHANUNAVAIL":
		r.Code = failure.LineCongestion
	default:
		r.Code = failure.LineDropped
	}
}

// callback: a refusal of the flow first, then the destination's dial; no
// dial at all means the caller hung up before keying in a destination.
func callback(r *dialler.Result, p *Report, refused failure.Code) {
	switch {
	case refused == failure.CallPINRejected:
		r.Code, r.Raw = failure.CallPINRejected, "wrong PIN three times"
	case refused != "":
		r.Code = refused
	case p.DialStatus == "ANSWER":
		r.TalkSeconds, _ = strconv.Atoi(p.AnsweredTime)
	case p.DialStatus == "BUSY":
		r.Code = failure.CallCustomerBusy
	case p.DialStatus == "":
		r.Code, r.Raw = failure.LineDropped, "the caller hung up before a destination was dialled"
	default:
		r.Code = failure.CallCustomerNoAnswer
	}
}

// message: with a confirm digit, only that key acknowledges the message;
// without one, being answered is enough.
func message(r *dialler.Result, p *Report, confirm string) {
	r.Digit = p.Digit
	if confirm == "" {
		return
	}
	if r.Digit == confirm {
		r.Acked = true
		return
	}
	r.Code = failure.CallNotAcknowledged
	r.Raw = "no acknowledgement (digit " + strconv.Quote(r.Digit) + ")"
}
