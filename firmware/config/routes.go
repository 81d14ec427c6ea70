package config

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/rules"
	"github.com/faxbox/faxbox/firmware/xmpp/addr"
)

// Route is one routing rule for received faxes (inbox.routes; package
// routing applies them): the first rule whose Match matches a received fax
// sends it to every destination the rule names. The inbox keeps every fax
// whatever the rules say.
type Route struct {
	// Name names the rule in logs, alarms, webhooks and errors (default
	// "routes[i]").
	Name  string     `json:"name"`
	Match RouteMatch `json:"match"`
	// Webhook receives fax.received (signed with webhook_secret, retried
	// like every webhook) with a signed download URL of the PDF valid for
	// inbox.link_ttl; Attach puts the PDF itself in the body (base64).
	Webhook string `json:"webhook"`
	Attach  bool   `json:"attach"`
	// Email: addresses the fax is mailed to with its PDF (needs smtp.host).
	Email []string `json:"email"`
	// XMPP: bare JIDs told of the fax; XMPPRooms: rooms (needs xmpp.jid).
	XMPP      []string `json:"xmpp"`
	XMPPRooms []string `json:"xmpp_rooms"`
	// Folder: an absolute directory the PDF is written to (atomically,
	// under a unique name).
	Folder string `json:"folder"`
}

// RouteMatch is what a rule matches; every field given must match (none
// given: every fax). DID and Port match the whole value; CallerID and
// RemoteStationID match a prefix. A value starting with "^" is a regular
// expression (RE2) instead, anchored at the start; end it with "$" to
// anchor the end too.
type RouteMatch struct {
	DID             string `json:"did"`
	Port            string `json:"port"`
	CallerID        string `json:"caller_id"`
	RemoteStationID string `json:"remote_station_id"`
}

// RoutePattern compiles one RouteMatch value: a regular expression when it
// starts with "^", else the value itself, whole (exact) or as a prefix.
// An empty value matches everything.
func RoutePattern(v string, exact bool) (*regexp.Regexp, error) {
	switch {
	case v == "":
		return regexp.MustCompile(``), nil
	case strings.HasPrefix(v, "^"):
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, fmt.Errorf("bad regular expression %q: %w", v, err)
		}
		return re, nil
	case exact:
		return regexp.MustCompile("^" + regexp.QuoteMeta(v) + "$"), nil
	}
	return regexp.MustCompile("^" + regexp.QuoteMeta(v)), nil
}

// RouteName is rule i's name in messages.
func (r Route) RouteName(i int) string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("routes[%d]", i)
}

// DefaultLinkTTL is how long a download URL in a fax.received webhook is
// valid without inbox.link_ttl.
const DefaultLinkTTL = time.Hour

// validateRoutes checks inbox.routes against the rest of the config; each
// problem names its rule.
func (c *Config) validateRoutes() error {
	var errs []error
	names := map[string]bool{}
	for i, r := range c.Inbox.Routes {
		name := r.RouteName(i)
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("inbox.routes: rule %q: %s", name, fmt.Sprintf(format, a...)))
		}
		if names[name] {
			bad("the name is used twice")
		}
		names[name] = true
		for field, v := range map[string]string{"did": r.Match.DID, "port": r.Match.Port, "caller_id": r.Match.CallerID, "remote_station_id": r.Match.RemoteStationID} {
			if _, err := RoutePattern(v, false); err != nil {
				bad("match.%s: %v", field, err)
			}
		}
		if r.Webhook == "" && len(r.Email) == 0 && len(r.XMPP) == 0 && len(r.XMPPRooms) == 0 && r.Folder == "" {
			bad("no destination (webhook, email, xmpp, xmpp_rooms or folder); a fax always stays in the inbox anyway")
		}
		if r.Webhook != "" {
			if err := rules.ResultURL(r.Webhook, c.Webhook.AllowLoopback); err != nil {
				bad("webhook: %v", err)
			}
		}
		if r.Attach && r.Webhook == "" {
			bad("attach needs a webhook")
		}
		for _, a := range r.Email {
			if p, err := mail.ParseAddress(a); err != nil || p.Address != a || p.Name != "" {
				bad("email %q is not a plain address", a)
			}
		}
		if len(r.Email) > 0 && c.SMTP.Host == "" {
			bad("email needs smtp.host (the relay the mails go through)")
		}
		for _, j := range append(append([]string(nil), r.XMPP...), r.XMPPRooms...) {
			if _, err := addr.Check(j); err != nil {
				bad("xmpp %q: %v", j, err)
			}
		}
		if (len(r.XMPP) > 0 || len(r.XMPPRooms) > 0) && !c.XMPP.Enabled() {
			bad("xmpp needs xmpp.jid (the account the messages come from)")
		}
		if r.Folder != "" && (!filepath.IsAbs(r.Folder) || filepath.Clean(r.Folder) != r.Folder) {
			bad("folder %q must be a clean absolute path", r.Folder)
		}
	}
	if v := c.Inbox.LinkBaseURL; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("inbox.link_base_url %q: want http(s)://host[:port][/path]", v))
		}
	}
	if c.Inbox.LinkTTL < 0 || c.Inbox.LinkTTL.D() > 7*24*time.Hour {
		errs = append(errs, errors.New("inbox.link_ttl: 0 (default 1h) up to 168h"))
	}
	return errors.Join(errs...)
}
