package box

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/api"
	"github.com/faxbox/faxbox/firmware/calendar"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
)

// TestCalendarCallThroughTheAPIPath: an event of a subscribed .ics file
// becomes a message call job (client_ref calendar-…) on the test line at
// its time, /v1/status shows the calendar, and what the calendar submits
// is checked like POST /v1/calls (deny prefixes, control characters).
func TestCalendarCallThroughTheAPIPath(t *testing.T) {
	testkit.Require(t, "espeak-ng", "sox")
	at := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:box-1\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:" +
		at.Format("20060102T150405Z") + "\r\nSUMMARY:Box reminder\r\nLOCATION:tel:9999-0001\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.Write([]byte(ics))
	}))
	defer srv.Close()
	e := startBox(t, func(c *config.Config) {
		c.Calendars = []config.Calendar{{URL: srv.URL + "/office.ics", Interval: job.Duration(time.Minute)}}
	})
	var j job.Job
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !j.Status.Terminal() {
		var list struct{ Items []job.Job }
		e.c.Do(t, http.MethodGet, "/v1/calls", nil, "", &list)
		if len(list.Items) > 0 {
			j = list.Items[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	if j.Status != job.Delivered || j.To != "99990001" || j.Call == nil || j.Call.Say != "Box reminder" || !strings.HasPrefix(j.ClientRef, "calendar-") {
		t.Fatalf("the calendar's call: %+v (call %+v)", j, j.Call)
	}
	if j.CreatedAt.Before(at) {
		t.Errorf("called at %s, before the event's %s", j.CreatedAt, at)
	}
	var st struct{ Calendars []calendar.Status }
	e.c.Do(t, http.MethodGet, "/v1/status", nil, "", &st)
	if len(st.Calendars) != 1 || st.Calendars[0].Kind != calendar.KindICS || st.Calendars[0].Placed != 1 || st.Calendars[0].LastSync == nil {
		t.Errorf("/v1/status calendars: %+v", st.Calendars)
	}

	for _, c := range []struct {
		r    calendar.Request
		code string
	}{
		{calendar.Request{To: "09001234567", Say: "premium"}, "destination_not_allowed"},
		{calendar.Request{To: "+4930123456", Say: "abroad"}, "destination_not_allowed"},
		{calendar.Request{To: "99990001", Say: "line\r\nAction: Originate"}, "invalid_field"},
		{calendar.Request{To: "99990001", Say: ""}, "invalid_field"},
	} {
		_, _, err := e.box.calendarCall(c.r)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != c.code {
			t.Errorf("%+v: %v, want %s", c.r, err, c.code)
		}
	}
	id, dup, err := e.box.calendarCall(calendar.Request{To: "99990001", Say: "again", ClientRef: j.ClientRef})
	if err != nil || !dup || id != j.ID {
		t.Errorf("a call with a stored client_ref: %s %v %v, want the stored job %s", id, dup, err, j.ID)
	}
}
