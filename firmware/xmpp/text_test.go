package xmpp

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
)

func failedAttempt(code failure.Code) job.Attempt {
	return job.Attempt{Result: job.AttemptFailed, Error: job.NewError(code, "raw text")}
}

func TestText(t *testing.T) {
	fax := func(mod func(*job.Job)) *job.Job {
		j := &job.Job{ID: "fx_1", Kind: job.KindFax, To: "100", Pages: 2}
		mod(j)
		return j
	}
	busy := []job.Attempt{failedAttempt(failure.LineBusy), failedAttempt(failure.LineBusy), failedAttempt(failure.LineBusy)}
	cases := []struct {
		name string
		ev   job.Event
		j    *job.Job
		want string
	}{
		{"delivered", job.EventFaxDelivered, fax(func(j *job.Job) {
			j.Attempts = []job.Attempt{{Result: job.AttemptDelivered, DurationMS: 40_600}}
		}), "Fax to 100 delivered, 2 pages, 41 s\njob fx_1"},
		{"delivered one page with ref", job.EventFaxDelivered, fax(func(j *job.Job) {
			j.Pages, j.ClientRef = 1, "inv-7"
		}), "Fax to 100 delivered, 1 page\njob fx_1, ref inv-7"},
		{"delivered quickly", job.EventFaxDelivered, fax(func(j *job.Job) {
			j.Attempts = []job.Attempt{{Result: job.AttemptDelivered, DurationMS: 120}}
		}), "Fax to 100 delivered, 2 pages, under 1 s\njob fx_1"},
		{"busy on all attempts", job.EventFaxFailed, fax(func(j *job.Job) {
			j.To, j.Attempts, j.Error = "102", busy, job.NewError(failure.LineBusy, "")
		}), "Fax to 102 failed: the line was busy on all 3 attempts\njob fx_1"},
		{"one attempt", job.EventFaxFailed, fax(func(j *job.Job) {
			j.Attempts, j.Error = []job.Attempt{failedAttempt(failure.LineInvalidNumber)}, job.NewError(failure.LineInvalidNumber, "")
		}), "Fax to 100 failed: the number is invalid or unallocated\njob fx_1"},
		{"mixed causes", job.EventFaxFailed, fax(func(j *job.Job) {
			j.Attempts = []job.Attempt{failedAttempt(failure.LineBusy), failedAttempt(failure.LineNoAnswer)}
			j.Error = job.NewError(failure.LineNoAnswer, "")
		}), "Fax to 100 failed: nobody answered (after 2 attempts)\njob fx_1"},
		{"expired", job.EventFaxFailed, fax(func(j *job.Job) {
			j.Attempts, j.Error = busy[:1], job.NewError(failure.JobExpired, "line.busy")
		}), "Fax to 100 failed: the job expired before it could be sent (last attempt: the line was busy)\njob fx_1"},
		{"cancelled mid-way", job.EventFaxCancelled, fax(func(j *job.Job) { j.PagesConfirmed = 1 }),
			"Fax to 100 cancelled after 1 of 2 pages\njob fx_1"},
		{"message acknowledged", job.EventCallAcknowledged, &job.Job{ID: "ca_1", Kind: job.KindCall, To: "200",
			Call: &job.CallSpec{Kind: job.CallMessage}, Attempts: []job.Attempt{{Digit: "1", Number: "201"}}},
			"Call to 200 acknowledged with 1 at 201\njob ca_1"},
		{"click2call completed", job.EventCallCompleted, &job.Job{ID: "ca_2", Kind: job.KindCall, To: "300",
			Call: &job.CallSpec{Kind: job.CallClick2Call, Agent: "20"}, Attempts: []job.Attempt{{TalkSeconds: 35}}},
			"Click-to-call from 20 to 300 completed, 35 s talk\njob ca_2"},
		{"call failed", job.EventCallFailed, &job.Job{ID: "ca_3", Kind: job.KindCall, To: "300",
			Call: &job.CallSpec{Kind: job.CallMessage}, Attempts: []job.Attempt{failedAttempt(failure.CallCustomerNoAnswer)},
			Error: job.NewError(failure.CallCustomerNoAnswer, "")},
			"Call to 300 failed: the customer did not answer\njob ca_3"},
	}
	for _, c := range cases {
		if got := Text(c.ev, c.j); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// TestTextHostile: whatever a job holds, the text has no control
// characters but line breaks, is valid UTF-8 and at most MaxText bytes.
func TestTextHostile(t *testing.T) {
	j := &job.Job{ID: "fx_1\r\n<iq type='set'>", Kind: job.KindFax, To: "100\x00\x1b[31m", ClientRef: strings.Repeat("é\u2028", 5000) + "\xff",
		CompletedAt: new(time.Time)}
	got := Text(job.EventFaxDelivered, j)
	if len(got) > MaxText || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Fatalf("len %d valid %v: %q…", len(got), utf8.ValidString(got), got[:80])
	}
	if strings.ContainsAny(got, "\r\x00\x1b\u2028") || strings.Count(got, "\n") != 1 {
		t.Fatalf("control characters left: %q", got[:80])
	}
}
