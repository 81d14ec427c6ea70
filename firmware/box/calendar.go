package box

import (
	"github.com/faxbox/faxbox/firmware/api"
	"github.com/faxbox/faxbox/firmware/calendar"
	"github.com/faxbox/faxbox/firmware/job"
)

// startCalendars subscribes to the config's calendars (none: nothing):
// their calls go through the API's submission path, their state to the
// store and /v1/status.
func (b *Box) startCalendars(o Options) error {
	if len(b.Cfg.Calendars) == 0 {
		return nil
	}
	b.calendars = calendar.New(calendar.Config{
		Calendars: b.Cfg.Calendars, Loc: o.TimeZone, Deny: b.Cfg.Calls.DenyPrefixes,
		Clock: b.Clock, State: b.Store, Submit: b.calendarCall, Log: b.Log,
	})
	if err := b.calendars.Start(); err != nil {
		return err
	}
	cals := b.calendars
	b.API.Calendars = func() any { return cals.Statuses() }
	return nil
}

// calendarCall places a calendar's message call as POST /v1/calls would.
func (b *Box) calendarCall(r calendar.Request) (string, bool, error) {
	j, dup, err := b.API.SubmitCall(api.CallRequest{Kind: job.CallMessage, To: r.To, Say: r.Say, ClientRef: r.ClientRef})
	if err != nil {
		return "", false, err
	}
	return j.ID, dup, nil
}
