package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// DefaultCalendarInterval is how often a calendar is polled when its
// interval is left out.
const DefaultCalendarInterval = 5 * time.Minute

// MaxCalendars bounds the calendars key.
const MaxCalendars = 32

// Calendar is one subscribed calendar: a CalDAV calendar collection (or a
// collection holding calendars: each is subscribed) or a plain iCalendar
// (.ics) URL. Its events with LOCATION:tel:<number> or an X-FAXBOX-CALL
// property become message calls (package calendar).
type Calendar struct {
	// URL is http:// or https://, without credentials in it.
	URL string `json:"url"`
	// Username and Password, when set, authenticate with HTTP Basic.
	Username string `json:"username"`
	Password string `json:"password"`
	// Interval is the wait between two polls (default 5m, 10s to 24h).
	Interval Duration `json:"interval"`
}

// Every returns the calendar's poll interval, the default when unset.
func (c Calendar) Every() time.Duration {
	if c.Interval <= 0 {
		return DefaultCalendarInterval
	}
	return c.Interval.D()
}

// validateCalendars checks the calendars key: at most MaxCalendars, each an
// absolute http(s) URL without credentials, given once, with an interval
// of 10s to 24h when set.
func validateCalendars(cs []Calendar) error {
	var errs []error
	if len(cs) > MaxCalendars {
		errs = append(errs, fmt.Errorf("calendars: at most %d", MaxCalendars))
	}
	seen := map[string]bool{}
	for i, c := range cs {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			errs = append(errs, fmt.Errorf("calendars[%d].url: an absolute http:// or https:// URL without credentials (username and password are keys of their own)", i))
		}
		if seen[c.URL] {
			errs = append(errs, fmt.Errorf("calendars[%d].url: listed twice", i))
		}
		seen[c.URL] = true
		if c.Interval != 0 && (c.Interval.D() < 10*time.Second || c.Interval.D() > 24*time.Hour) {
			errs = append(errs, fmt.Errorf("calendars[%d].interval: 10s to 24h", i))
		}
		if c.Password != "" && c.Username == "" {
			errs = append(errs, fmt.Errorf("calendars[%d]: a password needs a username", i))
		}
	}
	return errors.Join(errs...)
}
