package callpolicy

import (
	"testing"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
)

// unanswered is the End of a call whose originated channel was not answered.
func unanswered(k job.CallKind, dialStatus string, cause, reason int) End {
	return End{Kind: k, DialStatus: dialStatus, HangupCause: cause, Reason: reason}
}

// answered is the End of an answered call with the dialplan's report.
func answered(k job.CallKind, p Report) End {
	return End{Kind: k, Answered: true, HangupCause: 16, Reason: 4, Report: &p}
}

func TestResult(t *testing.T) {
	c2c, cb, msg := job.CallClick2Call, job.CallCallback, job.CallMessage
	ackd := func(digit string) End {
		e := answered(msg, Report{Digit: digit})
		e.ConfirmDigit = "1"
		return e
	}
	refused := func(code failure.Code, p Report) End {
		e := answered(cb, p)
		e.Refused = code
		return e
	}
	for _, tc := range []struct {
		name string
		end  End
		want dialler.Result
	}{
		// Unanswered: the agent (click2call) or the called party.
		{"click2call agent no answer", unanswered(c2c, "", -1, 3), dialler.Result{Code: failure.CallAgentNoAnswer}},
		{"click2call agent busy", unanswered(c2c, "BUSY", -1, -1), dialler.Result{Code: failure.CallAgentNoAnswer}},
		{"click2call agent busy by cause", unanswered(c2c, "", 17, 0), dialler.Result{Code: failure.CallAgentNoAnswer}},
		{"click2call agent unreachable stays a line code", unanswered(c2c, "CHANUNAVAIL", -1, -1), dialler.Result{Code: failure.LineUnavailable}},
		{"click2call agent invalid number", unanswered(c2c, "", 1, -1), dialler.Result{Code: failure.LineInvalidNumber}},
		{"message busy is the line's busy", unanswered(msg, "BUSY", -1, -1), dialler.Result{Code: failure.LineBusy}},
		{"message no answer", unanswered(msg, "", -1, 3), dialler.Result{Code: failure.LineNoAnswer}},
		{"callback busy is the line's busy", unanswered(cb, "", 17, -1), dialler.Result{Code: failure.LineBusy}},
		{"callback congestion", unanswered(cb, "", -1, 8), dialler.Result{Code: failure.LineCongestion}},

		{"answered without a report", End{Kind: c2c, Answered: true}, dialler.Result{Answered: true, Code: failure.LineDropped}},

		// click2call: the customer's leg.
		{"click2call talked", answered(c2c, Report{DialStatus: "ANSWER", AnsweredTime: "42"}), dialler.Result{Answered: true, TalkSeconds: 42}},
		{"click2call customer busy", answered(c2c, Report{DialStatus: "BUSY"}), dialler.Result{Answered: true, Code: failure.CallCustomerBusy}},
		{"click2call customer no answer", answered(c2c, Report{DialStatus: "NOANSWER"}), dialler.Result{Answered: true, Code: failure.CallCustomerNoAnswer}},
		{"click2call agent hung up while ringing", answered(c2c, Report{DialStatus: "CANCEL"}), dialler.Result{Answered: true, Code: failure.CallCustomerNoAnswer}},
		{"click2call congestion", answered(c2c, Report{DialStatus: "CONGESTION"}), dialler.Result{Answered: true, Code: failure.LineCongestion}},
		{"click2call channel unavailable", answered(c2c, Report{DialStatus: "CHANUNAVAIL"}), dialler.Result{Answered: true, Code: failure.LineCongestion}},
		{"click2call no dial", answered(c2c, Report{}), dialler.Result{Answered: true, Code: failure.LineDropped}},

		// callback: the flow's refusal, then the destination's dial.
		{"callback talked", answered(cb, Report{DialStatus: "ANSWER", AnsweredTime: "17"}), dialler.Result{Answered: true, TalkSeconds: 17}},
		{"callback PIN rejected", refused(failure.CallPINRejected, Report{}), dialler.Result{Answered: true, Code: failure.CallPINRejected}},
		{"callback destination refused", refused(failure.CallDestRefused, Report{}), dialler.Result{Answered: true, Code: failure.CallDestRefused}},
		{"callback refusal wins over a dial status", refused(failure.CallDestRefused, Report{DialStatus: "ANSWER", AnsweredTime: "5"}), dialler.Result{Answered: true, Code: failure.CallDestRefused}},
		{"callback destination busy", answered(cb, Report{DialStatus: "BUSY"}), dialler.Result{Answered: true, Code: failure.CallCustomerBusy}},
		{"callback destination no answer", answered(cb, Report{DialStatus: "NOANSWER"}), dialler.Result{Answered: true, Code: failure.CallCustomerNoAnswer}},
		{"callback destination congestion", answered(cb, Report{DialStatus: "CONGESTION"}), dialler.Result{Answered: true, Code: failure.CallCustomerNoAnswer}},
		{"callback caller hung up before a destination", answered(cb, Report{}), dialler.Result{Answered: true, Code: failure.LineDropped}},

		// message: the acknowledgement key.
		{"message acknowledged", ackd("1"), dialler.Result{Answered: true, Digit: "1", Acked: true}},
		{"message wrong key", ackd("2"), dialler.Result{Answered: true, Digit: "2", Code: failure.CallNotAcknowledged}},
		{"message no key", ackd(""), dialler.Result{Answered: true, Code: failure.CallNotAcknowledged}},
		{"message without confirm digit", answered(msg, Report{Digit: "5"}), dialler.Result{Answered: true, Digit: "5"}},
		{"message without confirm digit, no key", answered(msg, Report{}), dialler.Result{Answered: true}},

		{"unknown kind is never a success", answered("system", Report{DialStatus: "ANSWER"}), dialler.Result{Answered: true, Code: failure.Internal}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Result(tc.end)
			if got.Raw == "" {
				t.Errorf("no raw text")
			}
			got.Raw = ""
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestResultRaw: the raw text keeps what Asterisk said, or says why there
// is nothing to keep.
func TestResultRaw(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  End
		want string
	}{
		{"report verbatim", answered(job.CallClick2Call, Report{DialStatus: "BUSY", HangupCause: "17"}), "dial status BUSY, hangup cause 17"},
		{"no report", End{Kind: job.CallMessage, Answered: true}, "the call ended without a result from Asterisk"},
		{"PIN rejected", func() End {
			e := answered(job.CallCallback, Report{HangupCause: "21"})
			e.Refused = failure.CallPINRejected
			return e
		}(), "wrong PIN three times"},
		{"caller hung up early", answered(job.CallCallback, Report{HangupCause: "16"}), "the caller hung up before a destination was dialled"},
		{"wrong key", func() End {
			e := answered(job.CallMessage, Report{Digit: "#"})
			e.ConfirmDigit = "1"
			return e
		}(), `no acknowledgement (digit "#")`},
		{"unanswered: the line's words", unanswered(job.CallMessage, "BUSY", 17, 0), "BUSY / cause 17"},
	} {
		if got := Result(tc.end).Raw; got != tc.want {
			t.Errorf("%s: raw %q, want %q", tc.name, got, tc.want)
		}
	}
}
