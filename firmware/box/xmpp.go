package box

import (
	"time"

	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/xmpp"
)

// openXMPP starts the XMPP client of the xmpp account (none without
// xmpp.jid: XMPP deliveries an earlier configuration queued then stay in
// the outbox).
func (b *Box) openXMPP() error {
	if !b.Cfg.XMPP.Enabled() {
		return nil
	}
	dial, err := xmpp.Dial(b.Cfg.XMPP)
	if err != nil {
		return err
	}
	b.XMPP = xmpp.New(b.Cfg.XMPP, b.Store, b.Clock, dial, b.Log)
	b.XMPP.Start()
	return nil
}

// xmppOutbox adds to inner's deliveries the XMPP messages of a job's final
// event (package xmpp: the configured rooms and recipients, the job's
// notify_xmpp).
func xmppOutbox(now func() time.Time, b *Box, inner engine.Outbox) engine.Outbox {
	return func(j *job.Job, evs []job.Event) []*store.Delivery {
		return append(inner(j, evs), xmpp.Outbox(b.Cfg.XMPP, now)(j, evs)...)
	}
}

// takeXMPP hands the XMPP deliveries among ds to the XMPP client and
// returns the others. Without a client they are left in the store's outbox
// (for a later start with an account), never handed to the webhook sender.
func (b *Box) takeXMPP(ds []*store.Delivery) []*store.Delivery {
	var rest, mine []*store.Delivery
	for _, d := range ds {
		if d.Method == xmpp.Method {
			mine = append(mine, d)
		} else {
			rest = append(rest, d)
		}
	}
	if len(mine) > 0 && b.XMPP != nil {
		b.XMPP.Enqueue(mine)
	} else if len(mine) > 0 {
		b.Log.Warn("xmpp: messages kept in the outbox: no xmpp account configured", "component", "xmpp", "messages", len(mine))
	}
	return rest
}

// closeXMPP ends the XMPP session; unsent messages stay in the outbox.
func (b *Box) closeXMPP() {
	if b.XMPP != nil {
		b.XMPP.Close()
	}
}
