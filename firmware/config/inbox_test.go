package config

import (
	"strings"
	"testing"
)

func TestInboxValidate(t *testing.T) {
	for _, c := range []struct {
		dids     []string
		url      string
		loopback bool
		bad      string
	}{
		{dids: []string{"500-599", "42", "0300-0399"}},
		{dids: []string{"599-500"}, bad: "599-500"},
		{dids: []string{"50-599"}, bad: "50-599"},
		{dids: []string{"5x0"}, bad: "5x0"},
		{dids: []string{"500-"}, bad: "500-"},
		{dids: []string{""}, bad: `""`},
		{url: "http://127.0.0.1:9/hook", loopback: true},
		{url: "http://127.0.0.1:9/hook", bad: "inbox.webhook_url"},
		{url: "ftp://example.com/x", loopback: true, bad: "inbox.webhook_url"},
	} {
		err := Inbox{DIDs: c.dids, WebhookURL: c.url}.validate(c.loopback)
		if c.bad == "" && err != nil || c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)) {
			t.Errorf("%v %q: %v, want an error naming %q", c.dids, c.url, err, c.bad)
		}
	}
	if r := (Inbox{DIDs: []string{"500-599", "42"}}).Ranges(); len(r) != 2 || r[0] != (DIDRange{"500", "599"}) || r[1] != (DIDRange{"42", "42"}) {
		t.Errorf("Ranges = %v", r)
	}
}
