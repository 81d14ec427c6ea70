package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// The rules every entry point shares: result URLs, numbers a call may go to
// and job times. /v1/faxes, /v1/calls, /faxservice/ and /callback all check
// through these.

// lookupTimeout bounds the name lookup of a result URL's host.
const lookupTimeout = 2 * time.Second

// checkURL accepts an absolute http(s) URL without credentials for field
// (callback_url, returnUrl) whose host is not the box itself: a loopback,
// link-local or unspecified address, or a name that resolves to one, is
// refused unless webhook.allow_loopback. A name that does not resolve now is
// accepted (the receiver may come up later). Hosts in numeric forms other
// than a canonical IP address (127.1, 0x7f000001) are refused.
func (s *Server) checkURL(field, v string) *Error {
	bad := func(why string) *Error {
		return errf(http.StatusBadRequest, "invalid_url", field, field+" must be an absolute http:// or https:// URL without credentials"+why)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" || u.User != nil {
		return bad("")
	}
	if s.Cfg.Webhook.AllowLoopback {
		return nil
	}
	local := ", not to the box itself (loopback or link-local; webhook.allow_loopback)"
	host := strings.ToLower(u.Hostname())
	if a, err := netip.ParseAddr(host); err == nil {
		if localAddr(a) {
			return bad(local)
		}
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") {
		return bad(", with a host name or a canonical IP address")
	}
	if last == "localhost" {
		return bad(local)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	addrs, _ := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	for _, a := range addrs {
		if localAddr(a) {
			return bad(local)
		}
	}
	return nil
}

// localAddr reports addresses that reach the box itself or its link:
// loopback, link-local, unspecified (0.0.0.0/8, ::).
func localAddr(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	return a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsUnspecified() || a.Is4() && a.As4()[0] == 0
}

// dialable checks a number a call may go to: digits, and not a denied
// (international or premium-rate) prefix.
func (s *Server) dialable(field, n string) *Error {
	if !reNumber.MatchString(n) {
		return errf(http.StatusBadRequest, "invalid_number", field, field+" must be 3 to 20 digits, optionally with a leading +")
	}
	return s.denied(field, n)
}

// denied refuses a number or extension that starts with one of
// calls.deny_prefixes, whatever its length.
func (s *Server) denied(field, n string) *Error {
	for _, p := range s.Cfg.Calls.DenyPrefixes {
		if p != "" && strings.HasPrefix(n, p) {
			return errf(http.StatusUnprocessableEntity, "destination_not_allowed", field, field+" "+n+" is an international or premium-rate number ("+p+"…), which this box does not call")
		}
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
