// Package xmpp sends job outcomes over XMPP: to the box's configured
// recipients and rooms (config xmpp.notify, xmpp.rooms) and to a job's own
// notify_xmpp, one plain-words message each (Text).
//
// The messages are deliveries in the store's durable outbox, committed with
// the job's final state like its webhooks (Outbox, Method), so neither a
// restart of the box nor of the XMPP server loses one. Client logs in with
// the box's account (STARTTLS, SASL), joins the rooms (XEP-0045), sends the
// outbox in order and removes a message only once the server has answered
// a ping sent after it (the server handles a stream's stanzas in order). A
// lost connection is made again with exponential backoff; a message that
// fails is tried again with backoff until GiveUpAfter, then kept as a dead
// letter.
package xmpp

import (
	"fmt"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/xmpp/addr"
	"github.com/oklog/ulid/v2"
	"mellium.im/xmpp/jid"
)

// Method marks an XMPP message among the store's deliveries. Its URL is an
// XMPP URI (RFC 5122): "xmpp:name@example.org" for a chat message,
// "xmpp:room@conference.example.org?join" for a room; its Body the text.
const Method = "XMPP"

const (
	uriScheme = "xmpp:"
	joinQuery = "?join"
)

// Target is where one message goes.
type Target struct {
	JID  jid.JID // bare
	Room bool    // a multi-user chat room: joined, then a groupchat message
}

// URI is the target as the delivery's URL.
func (t Target) URI() string {
	if t.Room {
		return uriScheme + t.JID.String() + joinQuery
	}
	return uriScheme + t.JID.String()
}

// ParseTarget reads a delivery's URL back (see Method); the address is
// checked again, so a tampered outbox sends nowhere unexpected.
func ParseTarget(uri string) (Target, error) {
	rest, ok := strings.CutPrefix(uri, uriScheme)
	if !ok {
		return Target{}, fmt.Errorf("xmpp: delivery URL is not an xmpp: URI")
	}
	rest, room := strings.CutSuffix(rest, joinQuery)
	j, err := addr.Check(rest)
	if err != nil {
		return Target{}, fmt.Errorf("xmpp: delivery URL: %w", err)
	}
	return Target{JID: j, Room: room}, nil
}

// Targets are the recipients of every job's outcome under cfg plus the
// job's own notify (a bare JID already checked, or ""), each once.
func Targets(cfg config.XMPP, notify string) []Target {
	var out []Target
	seen := map[string]bool{}
	add := func(s string, room bool) {
		j, err := addr.Check(s)
		if err != nil {
			return
		}
		t := Target{JID: j, Room: room}
		if !seen[t.URI()] {
			seen[t.URI()] = true
			out = append(out, t)
		}
	}
	for _, r := range cfg.Rooms {
		add(r, true)
	}
	for _, n := range cfg.Notify {
		add(n, false)
	}
	if notify != "" {
		add(notify, false)
	}
	return out
}

// Outbox builds the XMPP deliveries of a job change: one per target for
// each final event (engine.Outbox; chain it with the webhooks'). Without an
// account configured there are none.
func Outbox(cfg config.XMPP, now func() time.Time) func(j *job.Job, events []job.Event) []*store.Delivery {
	return func(j *job.Job, events []job.Event) []*store.Delivery {
		if !cfg.Enabled() {
			return nil
		}
		var out []*store.Delivery
		t := now()
		for _, ev := range events {
			if !ev.Final() {
				continue
			}
			text := Text(ev, j)
			for _, tg := range Targets(cfg, j.NotifyXMPP) {
				out = append(out, &store.Delivery{ID: NewID(), JobID: j.ID, Event: ev, Method: Method, URL: tg.URI(),
					Body: []byte(text), CreatedAt: t, NextAt: t})
			}
		}
		return out
	}
}

// NewID returns a new delivery id; ids sort by creation time.
func NewID() string { return "xm_" + strings.ToLower(ulid.Make().String()) }
