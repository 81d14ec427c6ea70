package calendar

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // TZIDs resolve on a box without /usr/share/zoneinfo
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"

	"github.com/faxbox/faxbox/firmware/rules"
)

// Bounds on what one calendar may hold; a calendar beyond them is refused
// whole (its last good copy stays in use).
const (
	// MaxBytes bounds a calendar's data: the .ics file, or all of a CalDAV
	// calendar's objects together.
	MaxBytes = 4 << 20
	// MaxEvents bounds the VEVENTs (overrides included) of a calendar.
	MaxEvents = 5000
	// MaxDepth bounds the nesting of components (VCALENDAR, VEVENT,
	// VALARM: 3 deep; a hostile file nests thousands).
	MaxDepth = 16
	// MaxCalls bounds the calls one calendar plans within the horizon.
	MaxCalls = 2000
	// maxSteps bounds the occurrences computed for one recurring event.
	maxSteps = 100000
	// maxOffset bounds an alarm's distance from its event's start or end.
	maxOffset = 7 * 24 * time.Hour
	// MaxSay is the longest text a message call speaks (as POST /v1/calls).
	MaxSay = 500
)

// Call is one call a calendar asks for: one occurrence of an event that
// names a number.
type Call struct {
	// Key identifies the call for good: the event's UID, its recurrence id
	// and the time of the call. A call with a key already placed is never
	// placed again.
	Key string `json:"key"`
	UID string `json:"uid"`
	// RecurrenceID is the occurrence's original start (zero for an event
	// that does not recur).
	RecurrenceID time.Time `json:"recurrence_id,omitzero"`
	// Start is the occurrence's start; At the call's time: the earliest
	// VALARM trigger, else Start.
	Start time.Time `json:"start"`
	At    time.Time `json:"at"`
	// To is the number, Say the SUMMARY, cleaned of control characters.
	To  string `json:"to"`
	Say string `json:"say"`
}

// Ref is the call's client_ref: stable for its key, so a box that stops
// between placing a call and noting it finds the stored job again.
func (c Call) Ref() string {
	h := sha256.Sum256([]byte(c.Key))
	return "calendar-" + hex.EncodeToString(h[:16])
}

// Problem is an event that names a number but cannot become a call.
type Problem struct {
	UID    string `json:"uid"`
	Reason string `json:"reason"`
}

// Plan is what one calendar asks for within a window of time.
type Plan struct {
	Calls    []Call    // sorted by At
	Problems []Problem // events refused
	Events   int       // VEVENTs seen
}

// Expander turns iCalendar data into calls.
type Expander struct {
	// Loc is the box's time zone: floating times, dates and unknown TZIDs
	// are read in it.
	Loc *time.Location
	// Deny are calls.deny_prefixes: events to such numbers are refused.
	Deny []string
	// From and To bound the calls' times (From inclusive, To exclusive).
	From, To time.Time
}

// Decode reads one iCalendar object of data, which must lie within the
// bounds (MaxBytes, MaxDepth) and be well formed.
func Decode(data []byte) (*ical.Calendar, error) {
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("calendar: %d bytes, more than %d", len(data), MaxBytes)
	}
	if err := checkDepth(data); err != nil {
		return nil, err
	}
	if !utf8.Valid(data) {
		return nil, errors.New("calendar: not UTF-8")
	}
	cal, err := ical.NewDecoder(bytes.NewReader(data)).Decode()
	if err != nil {
		return nil, fmt.Errorf("calendar: malformed iCalendar: %w", err)
	}
	if cal.Name != ical.CompCalendar {
		return nil, fmt.Errorf("calendar: a %s, not a VCALENDAR", cal.Name)
	}
	return cal, nil
}

// checkDepth refuses data whose components nest deeper than MaxDepth (the
// decoder recurses once per level).
func checkDepth(data []byte) error {
	depth := 0
	for line := range bytes.Lines(data) {
		switch {
		case hasPrefixFold(line, "BEGIN:"):
			if depth++; depth > MaxDepth {
				return fmt.Errorf("calendar: components nested deeper than %d", MaxDepth)
			}
		case hasPrefixFold(line, "END:"):
			depth--
		}
	}
	return nil
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && strings.EqualFold(string(b[:len(p)]), p)
}

// Expand plans the calls of the VEVENTs in cals (one calendar's objects).
// Events with neither LOCATION:tel: nor X-FAXBOX-CALL are not calls and
// are skipped quietly; those that name a number but cannot be called are
// Problems. It fails when the calendar holds more than MaxEvents events or
// plans more than MaxCalls calls.
func (x Expander) Expand(cals []*ical.Calendar) (Plan, error) {
	var p Plan
	byUID := map[string][]*ical.Component{}
	var uids []string
	for _, cal := range cals {
		for _, c := range cal.Children {
			if c.Name != ical.CompEvent {
				continue
			}
			if p.Events++; p.Events > MaxEvents {
				return Plan{}, fmt.Errorf("calendar: more than %d events", MaxEvents)
			}
			uid := propText(c, ical.PropUID)
			if uid == "" {
				uid = fmt.Sprintf("(no UID, event %d)", p.Events)
			}
			if byUID[uid] == nil {
				uids = append(uids, uid)
			}
			byUID[uid] = append(byUID[uid], c)
		}
	}
	for _, uid := range uids {
		calls, err := x.event(uid, byUID[uid])
		if err != nil {
			p.Problems = append(p.Problems, Problem{UID: clean(uid, 200), Reason: err.Error()})
		}
		p.Calls = append(p.Calls, calls...)
		if len(p.Calls) > MaxCalls {
			return Plan{}, fmt.Errorf("calendar: more than %d calls planned", MaxCalls)
		}
	}
	sort.Slice(p.Calls, func(i, j int) bool {
		if !p.Calls[i].At.Equal(p.Calls[j].At) {
			return p.Calls[i].At.Before(p.Calls[j].At)
		}
		return p.Calls[i].Key < p.Calls[j].Key
	})
	return p, nil
}

// event plans one UID's calls: the master's occurrences (its RRULE and
// RDATEs less its EXDATEs), each replaced by the override whose
// RECURRENCE-ID names it, and the overrides themselves. Cancelled ones
// (STATUS:CANCELLED) are not called.
func (x Expander) event(uid string, comps []*ical.Component) ([]Call, error) {
	var master *ical.Component
	overrides := map[int64]*ical.Component{}
	var calls []Call
	var errs []error
	for _, c := range comps {
		rid := c.Props.Get(ical.PropRecurrenceID)
		if rid == nil {
			if master == nil {
				master = c
			}
			continue
		}
		t, err := x.parseTime(*rid)
		if err != nil {
			errs = append(errs, fmt.Errorf("RECURRENCE-ID: %w", err))
			continue
		}
		overrides[t.Unix()] = c
		call, ok, err := x.occurrence(uid, c, t)
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			calls = append(calls, call)
		}
	}
	if master != nil {
		mc, err := x.master(uid, master, overrides)
		if err != nil {
			errs = append(errs, err)
		}
		calls = append(calls, mc...)
	}
	return calls, errors.Join(errs...)
}

// master plans the occurrences of the master component m that no override
// replaces.
func (x Expander) master(uid string, m *ical.Component, overrides map[int64]*ical.Component) ([]Call, error) {
	if number(m) == "" {
		return nil, nil
	}
	dp := m.Props.Get(ical.PropDateTimeStart)
	if dp == nil {
		return nil, errors.New("no DTSTART")
	}
	start, err := x.parseTime(*dp)
	if err != nil {
		return nil, fmt.Errorf("DTSTART: %w", err)
	}
	dur := x.duration(m, start)
	set, err := x.recurrence(m, start)
	if err != nil {
		return nil, err
	}
	if set == nil {
		call, ok, err := x.occurrence(uid, m, time.Time{})
		if !ok {
			return nil, err
		}
		return []Call{call}, err
	}
	var calls []Call
	next := set.Iterator()
	for steps := 0; ; steps++ {
		if steps > maxSteps {
			return calls, fmt.Errorf("RRULE: more than %d occurrences before %s", maxSteps, x.To.Format(time.RFC3339))
		}
		t, ok := next()
		if !ok || !t.Before(x.To.Add(maxOffset)) {
			break
		}
		if t.Before(x.From.Add(-maxOffset)) || overrides[t.Unix()] != nil {
			continue
		}
		call, ok, err := x.instance(uid, m, t, dur)
		if err != nil {
			return calls, err
		}
		if ok {
			calls = append(calls, call)
			if len(calls) > MaxCalls {
				return calls, fmt.Errorf("RRULE: more than %d calls", MaxCalls)
			}
		}
	}
	return calls, nil
}

// recurrence builds the master's recurrence set, nil when it has neither
// RRULE nor RDATE. DTSTART's zone carries the occurrences, so a daily
// 09:00 stays 09:00 local time across daylight-saving changes.
func (x Expander) recurrence(m *ical.Component, start time.Time) (*rrule.Set, error) {
	rp := m.Props.Get(ical.PropRecurrenceRule)
	rdates := m.Props.Values(ical.PropRecurrenceDates)
	if rp == nil && len(rdates) == 0 {
		return nil, nil
	}
	set := &rrule.Set{}
	if rp != nil {
		opt, err := rrule.StrToROptionInLocation(rp.Value, start.Location())
		if err != nil {
			return nil, fmt.Errorf("RRULE: %w", err)
		}
		if opt.Freq == rrule.SECONDLY || opt.Freq == rrule.MINUTELY {
			return nil, errors.New("RRULE: more often than hourly, too often to call")
		}
		opt.Dtstart = start
		r, err := rrule.NewRRule(*opt)
		if err != nil {
			return nil, fmt.Errorf("RRULE: %w", err)
		}
		set.RRule(r)
	}
	set.RDate(start) // DTSTART is always the first occurrence
	for _, p := range rdates {
		ts, err := x.parseTimes(p)
		if err != nil {
			return nil, fmt.Errorf("RDATE: %w", err)
		}
		for _, t := range ts {
			set.RDate(t)
		}
	}
	for _, p := range m.Props.Values(ical.PropExceptionDates) {
		ts, err := x.parseTimes(p)
		if err != nil {
			return nil, fmt.Errorf("EXDATE: %w", err)
		}
		for _, t := range ts {
			set.ExDate(t)
		}
	}
	return set, nil
}

// instance is the master's occurrence starting at t.
func (x Expander) instance(uid string, m *ical.Component, t time.Time, dur time.Duration) (Call, bool, error) {
	return x.callAt(uid, m, t, t, dur, false)
}

// occurrence is a one-off event (rid zero) or an override (rid its
// RECURRENCE-ID), starting at its own DTSTART; absolute alarm triggers
// count for a one-off event only.
func (x Expander) occurrence(uid string, c *ical.Component, rid time.Time) (Call, bool, error) {
	if number(c) == "" || cancelled(c) {
		return Call{}, false, nil
	}
	dp := c.Props.Get(ical.PropDateTimeStart)
	if dp == nil {
		return Call{}, false, errors.New("no DTSTART")
	}
	start, err := x.parseTime(*dp)
	if err != nil {
		return Call{}, false, fmt.Errorf("DTSTART: %w", err)
	}
	return x.callAt(uid, c, rid, start, x.duration(c, start), rid.IsZero())
}

// callAt builds the call of component c for the occurrence starting at
// start (recurrence id rid); absolute alarm triggers count only when
// absolute (an event that does not recur). It reports false for a
// cancelled occurrence or one whose call lies outside the window.
func (x Expander) callAt(uid string, c *ical.Component, rid, start time.Time, dur time.Duration, absolute bool) (Call, bool, error) {
	if cancelled(c) {
		return Call{}, false, nil
	}
	at, err := x.trigger(c, start, dur, absolute)
	if err != nil {
		return Call{}, false, err
	}
	if at.Before(x.From) || !at.Before(x.To) {
		return Call{}, false, nil
	}
	to, err := callNumber(number(c), x.Deny)
	if err != nil {
		return Call{}, false, err
	}
	say := clean(propText(c, ical.PropSummary), MaxSay)
	if say == "" {
		return Call{}, false, errors.New("no SUMMARY to say")
	}
	call := Call{UID: uid, RecurrenceID: rid.UTC(), Start: start, At: at, To: to, Say: say}
	if rid.IsZero() {
		call.RecurrenceID = time.Time{}
	}
	call.Key = uid + "\x00" + stamp(call.RecurrenceID) + "\x00" + stamp(at)
	return call, true, nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// trigger is the earliest VALARM trigger of c for the occurrence starting
// at start and lasting dur, or start when c has no alarm.
func (x Expander) trigger(c *ical.Component, start time.Time, dur time.Duration, absolute bool) (time.Time, error) {
	var at time.Time
	for _, a := range c.Children {
		if a.Name != ical.CompAlarm {
			continue
		}
		tp := a.Props.Get(ical.PropTrigger)
		if tp == nil {
			continue
		}
		var t time.Time
		if tp.ValueType() == ical.ValueDateTime || tp.Params.Get(ical.ParamValue) == string(ical.ValueDateTime) {
			if !absolute {
				continue // an absolute trigger names one time, not one per occurrence
			}
			abs, err := x.parseTime(*tp)
			if err != nil {
				return at, fmt.Errorf("VALARM TRIGGER: %w", err)
			}
			t = abs
		} else {
			d, err := tp.Duration()
			if err != nil {
				return at, fmt.Errorf("VALARM TRIGGER: %w", err)
			}
			if d > maxOffset || d < -maxOffset {
				return at, fmt.Errorf("VALARM TRIGGER %s: more than %s from the event", d, maxOffset)
			}
			t = start.Add(d)
			if strings.EqualFold(tp.Params.Get(ical.ParamRelated), "END") {
				t = start.Add(dur).Add(d)
			}
		}
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	if at.IsZero() {
		at = start
	}
	return at, nil
}

// duration is how long c lasts (DTEND or DURATION; a day for an all-day
// event without either, else nothing).
func (x Expander) duration(c *ical.Component, start time.Time) time.Duration {
	if ep := c.Props.Get(ical.PropDateTimeEnd); ep != nil {
		if end, err := x.parseTime(*ep); err == nil && end.After(start) && end.Sub(start) <= maxOffset {
			return end.Sub(start)
		}
	}
	if dp := c.Props.Get(ical.PropDuration); dp != nil {
		if d, err := dp.Duration(); err == nil && d > 0 && d <= maxOffset {
			return d
		}
	}
	if dp := c.Props.Get(ical.PropDateTimeStart); dp != nil && isDate(*dp) {
		return 24 * time.Hour
	}
	return 0
}

func isDate(p ical.Prop) bool {
	return p.ValueType() == ical.ValueDate || (p.ValueType() == ical.ValueDefault && len(p.Value) == len("20060102"))
}

// parseTime reads a DATE or DATE-TIME value: UTC when it ends in Z, in its
// TZID's zone when the box knows that name, else (floating times, dates,
// zones named only by a VTIMEZONE) in the box's zone.
func (x Expander) parseTime(p ical.Prop) (time.Time, error) {
	ts, err := x.parseTimes(p)
	if err != nil {
		return time.Time{}, err
	}
	if len(ts) != 1 {
		return time.Time{}, fmt.Errorf("%d values, want one", len(ts))
	}
	return ts[0], nil
}

// parseTimes reads a comma-separated list of DATE or DATE-TIME values
// (EXDATE, RDATE) as parseTime does.
func (x Expander) parseTimes(p ical.Prop) ([]time.Time, error) {
	loc := x.Loc
	if loc == nil {
		loc = time.Local
	}
	if tz := p.Params.Get(ical.ParamTimezoneID); tz != "" {
		if l, err := time.LoadLocation(tz); err == nil {
			loc = l
		}
	}
	var ts []time.Time
	for _, v := range strings.Split(p.Value, ",") {
		if len(ts) > 1000 {
			return nil, errors.New("more than 1000 values")
		}
		var t time.Time
		var err error
		switch {
		case len(v) == len("20060102"):
			t, err = time.ParseInLocation("20060102", v, loc)
		case len(v) == len("20060102T150405Z") && strings.HasSuffix(v, "Z"):
			t, err = time.Parse("20060102T150405Z", v)
		case len(v) == len("20060102T150405"):
			t, err = time.ParseInLocation("20060102T150405", v, loc)
		default:
			err = fmt.Errorf("%q is not a DATE or DATE-TIME", clean(v, 40))
		}
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// number is the raw number c names: X-FAXBOX-CALL, else a LOCATION that is
// a tel: URI; "" when it names none.
func number(c *ical.Component) string {
	if v := strings.TrimSpace(propText(c, "X-FAXBOX-CALL")); v != "" {
		return v
	}
	loc := strings.TrimSpace(propText(c, ical.PropLocation))
	if len(loc) > 4 && strings.EqualFold(loc[:4], "tel:") {
		return loc
	}
	return ""
}

// callNumber turns a tel: URI or a written number into the digits the box
// dials (visual separators - . ( ) and spaces dropped), refusing anything
// else, numbers that are not 3 to 20 digits and numbers on deny.
func callNumber(raw string, deny []string) (string, error) {
	n := raw
	if len(n) > 4 && strings.EqualFold(n[:4], "tel:") {
		n = n[4:]
	}
	n = strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -.()", r) {
			return -1
		}
		return r
	}, n)
	if err := rules.Dialable(n, deny); err != nil {
		return "", fmt.Errorf("number %q: %w", clean(raw, 40), err)
	}
	return n, nil
}

func cancelled(c *ical.Component) bool {
	return strings.EqualFold(propText(c, ical.PropStatus), "CANCELLED")
}

func propText(c *ical.Component, name string) string {
	p := c.Props.Get(name)
	if p == nil {
		return ""
	}
	return unescape(p.Value)
}

// unescape reads an iCalendar TEXT value leniently: \n and \N are line
// breaks, any other escaped character stands for itself.
func unescape(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	esc := false
	for _, r := range v {
		switch {
		case esc && (r == 'n' || r == 'N'):
			b.WriteByte('\n')
		case esc:
			b.WriteRune(r)
		case r == '\\':
			esc = true
			continue
		default:
			b.WriteRune(r)
		}
		esc = false
	}
	return b.String()
}

// clean makes s safe to speak, log and show: control characters (CR, LF,
// tabs, ...) and invalid UTF-8 become spaces, runs of spaces one, and it
// is cut to at most n runes.
func clean(s string, n int) string {
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > n {
		s = strings.TrimSpace(string([]rune(s)[:n]))
	}
	return s
}
