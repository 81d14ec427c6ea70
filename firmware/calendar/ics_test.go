package calendar

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
)

var deny = []string{"00", "+", "0900", "0190", "0137", "0180", "118"}

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatalf("tzdata: %v", err)
	}
	return loc
}

func load(t *testing.T, name string) *ical.Calendar {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	cal, err := Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cal
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

type want struct{ uid, at, to, say string }

func check(t *testing.T, got []Call, ws []want) {
	t.Helper()
	if len(got) != len(ws) {
		t.Fatalf("%d calls, want %d: %+v", len(got), len(ws), got)
	}
	for i, w := range ws {
		g := got[i]
		if g.UID != w.uid || !g.At.Equal(utc(w.at)) || g.To != w.to || g.Say != w.say {
			t.Errorf("call %d = %s at %s to %s saying %q, want %s at %s to %s saying %q", i, g.UID, g.At.UTC().Format(time.RFC3339), g.To, g.Say, w.uid, w.at, w.to, w.say)
		}
	}
}

func TestExpandOneOff(t *testing.T) {
	x := Expander{Loc: berlin(t), Deny: deny, From: utc("2026-12-01T00:00:00Z"), To: utc("2026-12-10T00:00:00Z")}
	p, err := x.Expand([]*ical.Calendar{load(t, "oneoff.ics")})
	if err != nil {
		t.Fatal(err)
	}
	check(t, p.Calls, []want{
		{"oneoff-1", "2026-12-03T08:45:00Z", "0301234567", "Call the printer service about the toner"}, // earliest alarm, CET
		{"prop-number", "2026-12-03T13:00:00Z", "99990001", "On call handover"},
		{"floating", "2026-12-03T15:30:00Z", "99990001", "Floating time"}, // box zone, alarm at the end
	})
	if p.Events != 7 {
		t.Errorf("events = %d, want 7", p.Events)
	}
	refused := map[string]string{}
	for _, pr := range p.Problems {
		refused[pr.UID] = pr.Reason
	}
	if len(refused) != 2 || !strings.Contains(refused["denied"], "premium") || !strings.Contains(refused["international"], "international") {
		t.Errorf("refused = %v, want denied and international (deny prefixes)", refused)
	}
	// The window bounds the calls.
	x.From = utc("2026-12-03T12:00:00Z")
	x.To = utc("2026-12-03T15:30:00Z")
	p, _ = x.Expand([]*ical.Calendar{load(t, "oneoff.ics")})
	check(t, p.Calls, []want{{"prop-number", "2026-12-03T13:00:00Z", "99990001", "On call handover"}})
}

func TestExpandRecurring(t *testing.T) {
	x := Expander{Loc: time.UTC, Deny: deny, From: utc("2026-10-01T00:00:00Z"), To: utc("2026-12-31T00:00:00Z")}
	p, err := x.Expand([]*ical.Calendar{load(t, "recurring.ics")})
	if err != nil {
		t.Fatal(err)
	}
	// Weekly at 09:00 Berlin from 15 Oct, 6 times: 29 Oct excluded, 5 Nov
	// moved to 14:00 (no alarm there), 12 Nov cancelled. Summer time ends
	// on 25 Oct: 09:00 is 07:00Z before, 08:00Z after.
	check(t, p.Calls, []want{
		{"weekly-1", "2026-10-15T06:50:00Z", "99990001", "Weekly check"},
		{"weekly-1", "2026-10-22T06:50:00Z", "99990001", "Weekly check"},
		{"weekly-1", "2026-11-05T13:00:00Z", "99990001", "Weekly check (moved)"},
		{"weekly-1", "2026-11-19T07:50:00Z", "99990001", "Weekly check"},
	})
	if rid := p.Calls[2].RecurrenceID; !rid.Equal(utc("2026-11-05T08:00:00Z")) {
		t.Errorf("override's recurrence id = %s", rid)
	}
	keys := map[string]bool{}
	for _, c := range p.Calls {
		if keys[c.Key] || keys[c.Ref()] {
			t.Errorf("key %q twice", c.Key)
		}
		keys[c.Key], keys[c.Ref()] = true, true
	}
}

// TestGoICalRecurrenceSet shows why the expander builds its own set with
// rrule-go: go-ical's RecurrenceSet fails on an EXDATE list.
func TestGoICalRecurrenceSet(t *testing.T) {
	cal := mustDecode(t, event("list", "DTSTART:20261201T090000Z\r\nRRULE:FREQ=DAILY;COUNT=5\r\nEXDATE:20261202T090000Z,20261203T090000Z\r\n"))
	if _, err := cal.Events()[0].RecurrenceSet(time.UTC); err == nil {
		t.Log("go-ical's RecurrenceSet now reads EXDATE lists")
	}
	x := Expander{Loc: time.UTC, From: utc("2026-12-01T00:00:00Z"), To: utc("2026-12-31T00:00:00Z")}
	p, err := x.Expand([]*ical.Calendar{cal})
	if err != nil || len(p.Problems) > 0 {
		t.Fatal(err, p.Problems)
	}
	var days []int
	for _, c := range p.Calls {
		days = append(days, c.At.Day())
	}
	if len(days) != 3 || days[0] != 1 || days[1] != 4 || days[2] != 5 {
		t.Errorf("days %v, want [1 4 5]", days)
	}
}

func event(uid, body string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20261201T000000Z\r\nSUMMARY:Say this\r\nX-FAXBOX-CALL:99990001\r\n" + body + "END:VEVENT\r\nEND:VCALENDAR\r\n"
}

func mustDecode(t *testing.T, s string) *ical.Calendar {
	t.Helper()
	cal, err := Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

func TestHostileCalendars(t *testing.T) {
	deep := "BEGIN:VCALENDAR\r\n" + strings.Repeat("BEGIN:X\r\n", 100000)
	if _, err := Decode([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("deep nesting: %v", err)
	}
	if _, err := Decode(make([]byte, MaxBytes+1)); err == nil {
		t.Error("a calendar over MaxBytes was read")
	}
	for name, s := range map[string]string{
		"no END":   "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n",
		"garbage":  "<html>not a calendar</html>",
		"bad line": "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nno colon here\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		"not UTF8": "BEGIN:VCALENDAR\r\nX:\xff\xfe\r\nEND:VCALENDAR\r\n",
	} {
		if _, err := Decode([]byte(s)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	var many strings.Builder
	many.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n")
	for i := 0; i <= MaxEvents; i++ {
		many.WriteString("BEGIN:VEVENT\r\nUID:e\r\nDTSTART:20261201T090000Z\r\nEND:VEVENT\r\n")
	}
	many.WriteString("END:VCALENDAR\r\n")
	x := Expander{Loc: time.UTC, Deny: deny, From: utc("2026-12-01T00:00:00Z"), To: utc("2026-12-31T00:00:00Z")}
	if _, err := x.Expand([]*ical.Calendar{mustDecode(t, many.String())}); err == nil || !strings.Contains(err.Error(), "events") {
		t.Errorf("more than MaxEvents events: %v", err)
	}
	for name, c := range map[string]struct{ body, reason string }{
		"minutely":  {"DTSTART:20261201T090000Z\r\nRRULE:FREQ=MINUTELY\r\n", "hourly"},
		"hourly":    {"DTSTART:19000101T090000Z\r\nRRULE:FREQ=HOURLY\r\n", "occurrences"},
		"bad rrule": {"DTSTART:20261201T090000Z\r\nRRULE:FREQ=NEVER\r\n", "RRULE"},
		"no start":  {"", "DTSTART"},
		"far alarm": {"DTSTART:20261201T090000Z\r\nBEGIN:VALARM\r\nTRIGGER:-P30D\r\nEND:VALARM\r\n", "TRIGGER"},
		"letters":   {"DTSTART:20261201T090000Z\r\nLOCATION:tel:0301234;ext=1\r\n", "number"},
	} {
		body := c.body
		if name == "letters" {
			body = strings.Replace(event(name, body), "X-FAXBOX-CALL:99990001\r\n", "", 1)
		} else {
			body = event(name, body)
		}
		p, err := x.Expand([]*ical.Calendar{mustDecode(t, body)})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(p.Problems) != 1 || !strings.Contains(p.Problems[0].Reason, c.reason) {
			t.Errorf("%s: problems %+v, want one naming %q", name, p.Problems, c.reason)
		}
	}
}

func TestSummaryIsCleaned(t *testing.T) {
	body := "DTSTART:20261201T090000Z\r\n"
	s := strings.Replace(event("crlf", body), "SUMMARY:Say this", "SUMMARY:Line one\\nLine two\\r\r\n \x01Channel: SIP/evil\\n\\nAction: Originate "+strings.Repeat("x", 600), 1)
	x := Expander{Loc: time.UTC, Deny: deny, From: utc("2026-12-01T00:00:00Z"), To: utc("2026-12-31T00:00:00Z")}
	p, err := x.Expand([]*ical.Calendar{mustDecode(t, s)})
	if err != nil || len(p.Calls) != 1 {
		t.Fatal(err, p)
	}
	say := p.Calls[0].Say
	if strings.ContainsAny(say, "\r\n\x01") || len([]rune(say)) > MaxSay || !strings.HasPrefix(say, "Line one Line twor Channel: SIP/evil Action: Originate x") {
		t.Errorf("say = %q", say)
	}
}
