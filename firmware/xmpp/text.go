package xmpp

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
)

// MaxText is the longest notification text, in bytes; longer texts are cut
// at a character boundary and end with "…".
const MaxText = 1024

// Text is the plain-words notification of j's final event ev, e.g.
// "Fax to 100 delivered, 2 pages, 41 s" or "Fax to 102 failed: the line was
// busy on all 3 attempts", followed by a line naming the job (and its
// client_ref). The failure wording is the error code's description
// (package failure). Control characters other than the line break are
// removed and the text is cut to MaxText, whatever the job holds.
func Text(ev job.Event, j *job.Job) string {
	var head string
	if j.Kind == job.KindCall {
		head = callText(ev, j)
	} else {
		head = faxText(ev, j)
	}
	ref := "job " + j.ID
	if j.ClientRef != "" {
		ref += ", ref " + j.ClientRef
	}
	return clean(oneLine(head) + "\n" + oneLine(ref))
}

// oneLine drops every line break from s (clean drops the other control
// characters), so a job's fields never add lines.
func oneLine(s string) string {
	return strings.NewReplacer("\r", "", "\n", "", "\u2028", "", "\u2029", "").Replace(s)
}

// faxText is the first line for a fax job.
func faxText(ev job.Event, j *job.Job) string {
	to := "Fax to " + j.To
	switch ev {
	case job.EventFaxDelivered:
		s := fmt.Sprintf("%s delivered, %s", to, plural(j.Pages, "page"))
		if a := j.LastAttempt(); a != nil && a.DurationMS >= 500 {
			s += fmt.Sprintf(", %d s", (a.DurationMS+500)/1000)
		} else if a != nil && a.DurationMS > 0 {
			s += ", under 1 s"
		}
		return s
	case job.EventFaxCancelled:
		if j.PagesConfirmed > 0 {
			return fmt.Sprintf("%s cancelled after %d of %s", to, j.PagesConfirmed, plural(j.Pages, "page"))
		}
		return to + " cancelled"
	}
	return to + " failed: " + cause(j)
}

// callText is the first line for a call job.
func callText(ev job.Event, j *job.Job) string {
	what := "Call to " + j.To
	if j.Call != nil && j.Call.Kind == job.CallClick2Call {
		what = fmt.Sprintf("Click-to-call from %s to %s", j.Call.Agent, j.To)
	}
	a := j.LastAttempt()
	switch ev {
	case job.EventCallAcknowledged:
		s := what + " acknowledged"
		if a != nil && a.Digit != "" {
			s += " with " + a.Digit
		}
		if a != nil && a.Number != "" && a.Number != j.To {
			s += " at " + a.Number
		}
		return s
	case job.EventCallCompleted:
		s := what + " completed"
		if a != nil && a.TalkSeconds > 0 {
			s += fmt.Sprintf(", %d s talk", a.TalkSeconds)
		}
		return s
	case job.EventCallCancelled:
		return what + " cancelled"
	}
	return what + " failed: " + cause(j)
}

// cause says why j failed in plain words: the error's description, "on all
// N attempts" when every attempt failed the same way, "after N attempts"
// otherwise.
func cause(j *job.Job) string {
	if j.Error == nil {
		return "unknown error"
	}
	msg := failure.Lookup(j.Error.Code).Message
	if j.Error.Code == failure.JobExpired {
		if a := j.LastAttempt(); a != nil && a.Error != nil {
			msg += " (last attempt: " + failure.Lookup(a.Error.Code).Message + ")"
		}
		return msg
	}
	n, same := 0, true
	for _, a := range j.Attempts {
		if a.Result == job.AttemptFailed {
			n++
			same = same && a.Error != nil && a.Error.Code == j.Error.Code
		}
	}
	switch {
	case n > 1 && same:
		return fmt.Sprintf("%s on all %d attempts", msg, n)
	case n > 1:
		return fmt.Sprintf("%s (after %d attempts)", msg, n)
	}
	return msg
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// clean drops control characters but the line break, replaces invalid
// UTF-8 and cuts s to MaxText bytes.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r != '\n' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029') {
			return -1
		}
		return r
	}, s)
	if len(s) <= MaxText {
		return s
	}
	cut := MaxText - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
