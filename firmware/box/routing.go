package box

import (
	"net"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/receiving"
	"github.com/faxbox/faxbox/firmware/routing"
	"github.com/faxbox/faxbox/firmware/store"
)

// openRouting makes the key of the inbox's signed download URLs and, with
// inbox.routes, the router that applies them to received faxes (package
// routing): webhooks and XMPP messages go through the box's deliver, mails
// through the mail outbox, folder writes stay with the router.
func (b *Box) openRouting() error {
	key, err := routing.LinkKey(b.Cfg.WebhookSecret, b.Store)
	if err != nil {
		return err
	}
	b.linkKey = key
	if len(b.Cfg.Inbox.Routes) == 0 {
		return nil
	}
	var m routing.Mailer
	if b.Mail != nil {
		m = b.Mail
	}
	r, err := routing.New(routing.Config{Routes: b.Cfg.Inbox.Routes, Store: b.Store, Mail: m, Dispatch: b.deliver,
		LinkBase: linkBase(b.Cfg), LinkKey: key, LinkTTL: b.Cfg.Inbox.LinkTTL.D(), Retry: b.Cfg.Webhook, Clock: b.Clock, Log: b.Log})
	if err != nil {
		return err
	}
	b.router = r
	return nil
}

// rxRouter is the router received faxes go through: the injected one, else
// the rules' (nil: the inbox and inbox.webhook_url only).
func (b *Box) rxRouter(injected receiving.Router) receiving.Router {
	if injected != nil || b.router == nil {
		return injected
	}
	return b.router
}

// linkBase is inbox.link_base_url, else http://<listen> with an
// unspecified host replaced by the box's address.
func linkBase(cfg config.Config) string {
	if cfg.Inbox.LinkBaseURL != "" {
		return cfg.Inbox.LinkBaseURL
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "http://" + cfg.Listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = localIP()
	}
	return "http://" + net.JoinHostPort(host, port)
}

// takeFolders hands the folder writes among ds to the router and returns
// the others. Without a router (no rules any more) they stay in the
// store's outbox, never reach the webhook sender.
func (b *Box) takeFolders(ds []*store.Delivery) []*store.Delivery {
	if b.router != nil {
		return b.router.Take(ds)
	}
	var rest []*store.Delivery
	kept := 0
	for _, d := range ds {
		if d.Method == routing.MethodFolder {
			kept++
			continue
		}
		rest = append(rest, d)
	}
	if kept > 0 {
		b.Log.Warn("routing: folder writes kept in the outbox: no inbox.routes configured", "component", "routing", "writes", kept)
	}
	return rest
}

// routingAlarm reports whether routed faxes cannot be delivered.
func (b *Box) routingAlarm() bool {
	return b.router != nil && b.router.Problem() != ""
}

// routingStatus is /v1/status's extra.routing: how many rules there are
// and, while the alarm is on, why.
func (b *Box) routingStatus() map[string]any {
	return map[string]any{"rules": len(b.Cfg.Inbox.Routes), "problem": b.router.Problem()}
}

// closeRouting stops the folder writes (queued ones stay in the outbox).
func (b *Box) closeRouting() {
	if b.router != nil {
		b.router.Close()
	}
}
