package spandsp

import (
	"testing"

	"github.com/faxbox/faxbox/firmware/failure"
)

// Every row is an outcome seen in faxbox's lab runs against the real
// Asterisk or a documented value.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name  string
		o     Outcome
		code  failure.Code
		try   bool
		next  Fallback
		retry bool
	}{
		{"delivered (error HANGUP on success)", Outcome{Answered: true, HaveResult: true, Status: "SUCCESS", Error: "HANGUP", StatusStr: "OK", Pages: 2}, "", true, None, false},
		{"busy over PJSIP: Reason 0, DialStatus BUSY", Outcome{DialStatus: "BUSY", HangupCause: 17, Reason: 0}, failure.LineBusy, false, None, true},
		{"busy by cause only", Outcome{HangupCause: 17, Reason: 0}, failure.LineBusy, false, None, true},
		{"no answer (ring timeout)", Outcome{DialStatus: "NOANSWER", HangupCause: 19, Reason: 3}, failure.LineNoAnswer, false, None, true},
		{"no user responding", Outcome{HangupCause: 18, Reason: -1}, failure.LineNoAnswer, false, None, true},
		{"unallocated", Outcome{HangupCause: 1, Reason: 0}, failure.LineInvalidNumber, false, None, false},
		{"invalid format", Outcome{HangupCause: 28, Reason: 0}, failure.LineInvalidNumber, false, None, false},
		{"congestion", Outcome{DialStatus: "CONGESTION", HangupCause: 34}, failure.LineCongestion, false, None, true},
		{"channel unavailable", Outcome{DialStatus: "CHANUNAVAIL", Reason: 1}, failure.LineUnavailable, false, None, true},
		{"T.38 negotiation failed (10.5 s)", Outcome{Answered: true, HaveResult: true, Status: "FAILED", Error: "T38_NEG_ERROR", StatusStr: "T.38 negotiation failed"}, failure.FaxT38Negotiation, true, AudioFallback, true},
		{"voice answered, G.711", Outcome{Answered: true, HaveResult: true, Status: "FAILED", Error: "HANGUP", StatusStr: "The call dropped prematurely"}, failure.FaxRemoteNotFax, false, None, true},
		{"T.38 negotiated, then the session dropped (heavy UDPTL loss)", Outcome{Answered: true, HaveResult: true, Status: "FAILED", Error: "HANGUP", StatusStr: "The call dropped prematurely", T38: true}, failure.FaxRemoteHangup, true, None, true},
		{"voice answered, no T.30 at all", Outcome{Answered: true, HaveResult: true, Status: "FAILED", Error: "HANGUP", StatusStr: "Timed out waiting for initial communication"}, failure.FaxRemoteNotFax, false, None, true},
		{"corrupt TIFF after answer", Outcome{Answered: true, HaveResult: true, Status: "FAILED", Error: "FILE_ERROR", StatusStr: "TIFF/F file cannot be opened"}, failure.DocumentUnreadable, true, None, false},
		{"TIFF spandsp cannot use", Outcome{Answered: true, HaveResult: true, Status: "FAILED", Error: "FILE_ERROR", StatusStr: "TIFF/F format is not compatible"}, failure.DocumentUnreadable, true, None, false},
		// res_fax's access() check before the session: the box's fault
		// (lab: a data directory Asterisk cannot see), kept and retried.
		{"Asterisk cannot read the validated TIFF", Outcome{Answered: true, HaveResult: true, Status: "FAILED", Error: "FILE_ERROR", StatusStr: "error reading file", HangupCause: 16}, failure.BoxDocumentAccess, false, None, true},
		{"missing file, no text", Outcome{Answered: true, HaveResult: true, Status: "FAILED", Error: "FILE_ERROR"}, failure.BoxDocumentAccess, false, None, true},
		{"DCN while waiting for DIS (lab 101 over T.38 attempt)", Outcome{Answered: true, HaveResult: true, Status: "FAILED", StatusStr: "Received a DCN while waiting for a DIS"}, failure.FaxProtocol, true, ECMOff, true},
		{"hung up after page 1 (lab 105)", Outcome{Answered: true, HaveResult: true, Status: "FAILED", Error: "HANGUP", StatusStr: "Disconnected after permission to transmit", Pages: 1}, failure.FaxRemoteHangup, true, None, true},
		{"no response to DCS", Outcome{Answered: true, HaveResult: true, Status: "FAILED", Error: "NEGOTIATION_ERROR", StatusStr: "Received no response to DCS or TCF"}, failure.FaxNegotiation, true, ECMOff, true},
		{"failed to train", Outcome{Answered: true, HaveResult: true, Status: "FAILED", Error: "TRAINING_ERROR", StatusStr: "Failed to train with any of the compatible modems"}, failure.FaxTraining, true, ECMOff, true},
		{"too many page errors", Outcome{Answered: true, HaveResult: true, Status: "FAILED", StatusStr: "ECM page errors, too many"}, failure.FaxPageErrors, true, ECMOff, true},
		{"answered, no result event", Outcome{Answered: true}, failure.LineDropped, false, None, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := Classify(c.o)
			if v.Code != c.code || v.ReachedFax != c.try || v.Next != c.next || v.Retryable != c.retry {
				t.Errorf("Classify = %+v; want code %q try %v next %s retry %v", v, c.code, c.try, c.next, c.retry)
			}
			if v.Raw == "" && c.code != "" {
				t.Error("raw text lost")
			}
		})
	}
}

func TestEveryFaxErrorIsKnown(t *testing.T) {
	for e, code := range faxErrors {
		if !failure.Known(code) {
			t.Errorf("%s maps to unknown code %s", e, code)
		}
	}
	for s, code := range dialStatus {
		if !failure.Known(code) {
			t.Errorf("DialStatus %s maps to unknown code %s", s, code)
		}
	}
}
