package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/faxbox/faxbox/firmware/rules"
)

// Inbox configures the reception of faxes.
type Inbox struct {
	// DIDs are the dialled numbers the box answers as fax on the SIP trunk
	// (and E1): single numbers ("500") or ranges of numbers of one length
	// ("500-599"). Empty: every number that is not the callback number.
	// Calls to other numbers are refused (unallocated number) unanswered.
	DIDs []string `json:"dids"`
	// WebhookURL, when set, receives a signed fax.received webhook for
	// every received fax (webhook_secret signs it, webhook.* retries it).
	WebhookURL string `json:"webhook_url"`
	// Routes are the routing rules (first match wins; see Route).
	Routes []Route `json:"routes"`
	// LinkBaseURL is the box's address as webhook receivers reach it
	// ("http://192.0.2.10:8080"), put in front of the signed download
	// URLs; default: http:// and listen (an unspecified host replaced by
	// the box's first non-loopback IPv4 address).
	LinkBaseURL string `json:"link_base_url"`
	// LinkTTL is how long a signed download URL is valid (default 1h).
	LinkTTL Duration `json:"link_ttl"`
}

// DIDRange is one entry of Inbox.DIDs: From and To of equal length, From
// <= To (equal for a single number).
type DIDRange struct{ From, To string }

// Ranges parses DIDs (validate has accepted them).
func (i Inbox) Ranges() []DIDRange {
	var out []DIDRange
	for _, d := range i.DIDs {
		from, to, ok := strings.Cut(d, "-")
		if !ok {
			to = from
		}
		out = append(out, DIDRange{From: from, To: to})
	}
	return out
}

func didDigits(s string) bool {
	return s != "" && len(s) <= 20 && strings.Trim(s, "0123456789") == ""
}

// validate reports the problems of the inbox section (nil when none).
func (i Inbox) validate(allowLoopback bool) error {
	var errs []error
	for _, d := range i.DIDs {
		from, to, ok := strings.Cut(d, "-")
		if !ok {
			to = from
		}
		if !didDigits(from) || !didDigits(to) || len(from) != len(to) || from > to {
			errs = append(errs, fmt.Errorf("inbox.dids: %q is neither a number nor a range of numbers of one length (500-599)", d))
		}
	}
	if i.WebhookURL != "" {
		if err := rules.ResultURL(i.WebhookURL, allowLoopback); err != nil {
			errs = append(errs, fmt.Errorf("inbox.webhook_url: %w", err))
		}
	}
	return errors.Join(errs...)
}
