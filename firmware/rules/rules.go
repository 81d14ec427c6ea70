// Package rules holds the checks every entry point shares — the HTTP API,
// the classic /faxservice/ and /callback URLs, the inbound callback's
// keyed-in destination, and later e-mail and IPP — so that a number, a
// callback URL or a denied prefix means the same wherever it comes in.
// Each check returns nil or an error wrapping one of the sentinels below;
// callers turn those into their own answers (an HTTP status, an SMTP reply).
package rules

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Sentinel errors.
var (
	ErrNumber = errors.New("rules: not a phone number (3 to 20 digits, optionally with a leading +)")
	ErrDenied = errors.New("rules: an international or premium-rate number, which this box does not call")
	ErrURL    = errors.New("rules: not an absolute http:// or https:// URL without credentials")
	ErrLocal  = errors.New("rules: the URL points at the box itself (loopback or link-local)")
	ErrHost   = errors.New("rules: the URL's host is neither a name nor a canonical IP address")
)

var reNumber = regexp.MustCompile(`^\+?[0-9]{3,20}$`)

// Number checks a number the box dials: 3 to 20 digits, optionally with a
// leading +.
func Number(n string) error {
	if !reNumber.MatchString(n) {
		return ErrNumber
	}
	return nil
}

// Denied checks n (a number, an agent's extension, a destination keyed in,
// whatever its length) against the deny prefixes; the error names the
// prefix.
func Denied(n string, deny []string) error {
	for _, p := range deny {
		if p != "" && strings.HasPrefix(n, p) {
			return fmt.Errorf("%w (%s…)", ErrDenied, p)
		}
	}
	return nil
}

// Dialable is Number and then Denied.
func Dialable(n string, deny []string) error {
	if err := Number(n); err != nil {
		return err
	}
	return Denied(n, deny)
}

// LookupTimeout bounds the name lookup of a result URL's host.
const LookupTimeout = 2 * time.Second

// ResultURL checks a URL the box will call with a job's result
// (callback_url, returnUrl): absolute http(s), no credentials, and — unless
// allowLocal — not the box itself: no loopback, link-local or unspecified
// address, no name that resolves to one now (a name that does not resolve
// is accepted: the receiver may come up later), and no numeric host other
// than a canonical IP address (127.1, 0x7f000001).
func ResultURL(v string, allowLocal bool) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" || u.User != nil {
		return ErrURL
	}
	if allowLocal {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	if a, err := netip.ParseAddr(host); err == nil {
		if LocalAddr(a) {
			return ErrLocal
		}
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") {
		return ErrHost
	}
	if last == "localhost" {
		return ErrLocal
	}
	ctx, cancel := context.WithTimeout(context.Background(), LookupTimeout)
	defer cancel()
	addrs, _ := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	for _, a := range addrs {
		if LocalAddr(a) {
			return ErrLocal
		}
	}
	return nil
}

// LocalAddr reports addresses that reach the box itself or its link:
// loopback, link-local, unspecified (0.0.0.0/8, ::).
func LocalAddr(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	return a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsUnspecified() || a.Is4() && a.As4()[0] == 0
}
