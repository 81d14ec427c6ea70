package config

import (
	"strings"
	"testing"
	"time"
)

func TestCalendarsValidate(t *testing.T) {
	ok := Default()
	ok.Tokens = []string{"token-123456"}
	ok.Calendars = []Calendar{{URL: "https://cal.example.com/office/work/", Username: "u", Password: "p"}, {URL: "http://intranet/holidays.ics", Interval: Duration(time.Hour)}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if ok.Calendars[0].Every() != DefaultCalendarInterval || ok.Calendars[1].Every() != time.Hour {
		t.Error("intervals")
	}
	for name, c := range map[string]Calendar{
		"scheme":      {URL: "ftp://cal.example.com/x.ics"},
		"relative":    {URL: "/x.ics"},
		"credentials": {URL: "https://u:p@cal.example.com/x.ics"},
		"interval":    {URL: "https://cal.example.com/x.ics", Interval: Duration(time.Second)},
		"password":    {URL: "https://cal.example.com/x.ics", Password: "p"},
	} {
		bad := ok
		bad.Calendars = []Calendar{c}
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "calendars[0]") {
			t.Errorf("%s: %v", name, err)
		}
	}
	twice := ok
	twice.Calendars = []Calendar{ok.Calendars[0], ok.Calendars[0]}
	if err := twice.Validate(); err == nil {
		t.Error("a calendar listed twice was accepted")
	}
}
