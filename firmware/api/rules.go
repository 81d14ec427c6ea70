package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/rules"
)

// The rules every entry point shares: result URLs, numbers a call may go to
// and job times. /v1/faxes, /v1/calls, /faxservice/ and /callback all check
// through these.

// checkURL checks a result URL given in field (callback_url, returnUrl) by
// rules.ResultURL; loopback and link-local targets only with
// webhook.allow_loopback.
func (s *Server) checkURL(field, v string) *Error {
	err := rules.ResultURL(v, s.Cfg.Webhook.AllowLoopback)
	msg := field + " must be an absolute http:// or https:// URL without credentials"
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rules.ErrLocal):
		msg += ", not to the box itself (loopback or link-local; webhook.allow_loopback)"
	case errors.Is(err, rules.ErrHost):
		msg += ", with a host name or a canonical IP address"
	}
	return errf(http.StatusBadRequest, "invalid_url", field, msg)
}

// dialable checks a number a call may go to: digits, and not a denied
// (international or premium-rate) prefix.
func (s *Server) dialable(field, n string) *Error {
	if rules.Number(n) != nil {
		return errf(http.StatusBadRequest, "invalid_number", field, field+" must be 3 to 20 digits, optionally with a leading +")
	}
	return s.denied(field, n)
}

// denied refuses a number or extension that starts with one of
// calls.deny_prefixes, whatever its length.
func (s *Server) denied(field, n string) *Error {
	if err := rules.Denied(n, s.Cfg.Calls.DenyPrefixes); err != nil {
		return errf(http.StatusUnprocessableEntity, "destination_not_allowed", field, field+" "+n+" is an international or premium-rate number, which this box does not call: "+strings.TrimPrefix(err.Error(), "rules: "))
	}
	return nil
}

// maxAhead is how far ahead of now send_at and expire_at may lie; it keeps
// every time of a job (expire_at is send_at plus defaults.expire) storable.
const maxAhead = 366 * 24 * time.Hour

// parseWhen reads field as an RFC 3339 time no later than maxAhead from now;
// with future, it must also lie after now.
func parseWhen(field, v string, now time.Time, future bool) (time.Time, *Error) {
	t, err := time.Parse(time.RFC3339, v)
	switch {
	case err != nil:
		return t, errf(http.StatusBadRequest, "invalid_field", field, field+" must be an RFC 3339 time, e.g. 2026-11-22T17:00:00+01:00")
	case future && !t.After(now):
		return t, errf(http.StatusBadRequest, "invalid_field", field, field+" must be an RFC 3339 time in the future")
	case t.After(now.Add(maxAhead)):
		return t, errf(http.StatusBadRequest, "invalid_field", field, fmt.Sprintf("%s must be at most %d days ahead", field, maxAhead/(24*time.Hour)))
	}
	return t, nil
}
