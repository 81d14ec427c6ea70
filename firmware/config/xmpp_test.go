package config

import (
	"strings"
	"testing"
)

func TestXMPPValidate(t *testing.T) {
	ok := defaultXMPP()
	ok.JID, ok.Password, ok.Server = "faxbox@example.org", "pw", "xmpp.example.org:5222"
	ok.Rooms, ok.Notify = []string{"office@conference.example.org"}, []string{"boss@example.org"}
	if err := ok.validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if err := defaultXMPP().validate(); err != nil {
		t.Fatalf("no account: %v", err)
	}
	bad := map[string]func(*XMPP){
		"xmpp.jid":       func(x *XMPP) { x.JID = "faxbox@example.org/res" },
		"password":       func(x *XMPP) { x.Password = "" },
		"xmpp.server":    func(x *XMPP) { x.Server = "example.org" },
		"xmpp.rooms[0]":  func(x *XMPP) { x.Rooms = []string{"office@conference.example.org\r\n<x/>"} },
		"xmpp.notify[0]": func(x *XMPP) { x.Notify = []string{"<b>@example.org"} },
		"xmpp.nick":      func(x *XMPP) { x.Nick = "a\nb" },
		"max_backoff":    func(x *XMPP) { x.MaxBackoff = 0 },
		"need xmpp.jid":  func(x *XMPP) { x.JID = "" },
	}
	for want, mod := range bad {
		x := ok
		mod(&x)
		if err := x.validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}
