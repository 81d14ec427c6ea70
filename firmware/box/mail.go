package box

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/mail"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/webhook"
)

// methodMail marks a delivery in the store's outbox that is a result mail,
// not an HTTP callback: it is committed with the job's final state like a
// webhook, then handed to the mail outbox (package mail) and removed.
const methodMail = "MAIL"

// openMail opens the mail outbox in the data directory (it queues nothing
// without smtp.host, but keeps what an earlier configuration queued).
func (b *Box) openMail() error {
	o, err := mail.OpenOutbox(mail.OutboxConfig{SMTP: b.Cfg.SMTP, Dir: b.Cfg.DataDir, Clock: b.Clock, Log: b.Log})
	if err != nil {
		return err
	}
	b.Mail = o
	o.Start()
	return nil
}

// mailOutbox adds to web's deliveries one result mail for a job's final
// event when the job has a notify_email.
func mailOutbox(web engine.Outbox) engine.Outbox {
	return func(j *job.Job, evs []job.Event) []*store.Delivery {
		ds := web(j, evs)
		if j.NotifyEmail == "" {
			return ds
		}
		for _, ev := range evs {
			if !ev.Final() {
				continue
			}
			body, err := json.Marshal(webhook.Payload{Event: ev, Data: j})
			if err != nil {
				continue
			}
			id := mail.NewID()
			ds = append(ds, &store.Delivery{ID: id, JobID: j.ID, Event: ev, Method: methodMail, URL: "mailto:" + j.NotifyEmail, Body: body,
				CreatedAt: j.UpdatedAt, NextAt: j.UpdatedAt})
		}
		return ds
	}
}

// deliver hands durable deliveries on: webhooks to the sender, result mails
// to the mail outbox.
func (b *Box) deliver(ds []*store.Delivery) {
	ds = b.takeXMPP(ds)    // XMPP messages to their client (box/xmpp.go)
	ds = b.takeFolders(ds) // routed folder writes to the router (box/routing.go)
	var web []*store.Delivery
	for _, d := range ds {
		if d.Method == methodMail {
			b.queueResultMail(d)
			continue
		}
		web = append(web, d)
	}
	if len(web) > 0 {
		b.Sender.Enqueue(web)
	}
}

// queueResultMail moves a result-mail delivery to the mail outbox, under
// the delivery's id (so doing it twice, after a crash, queues one mail).
func (b *Box) queueResultMail(d *store.Delivery) {
	var p webhook.Payload
	if err := json.Unmarshal(d.Body, &p); err != nil || p.Data == nil {
		b.Log.Error("mail: result mail delivery unreadable; dropped", "component", "mail", "delivery", d.ID, "job", d.JobID, "err", err)
		b.Store.Delivered(d, true)
		return
	}
	_, err := b.Mail.EnqueueID(d.ID, mail.ResultMessage(p.Event, p.Data))
	if err != nil {
		// No relay (any more), or an address the outbox refuses: kept as a
		// dead letter, beside the webhooks given up.
		b.Log.Error("mail: result mail not queued", "component", "mail", "delivery", d.ID, "job", d.JobID, "to", strings.TrimPrefix(d.URL, "mailto:"), "err", err)
		d.LastError = err.Error()
		b.Store.Delivered(d, true)
		return
	}
	if err := b.Store.Delivered(d, false); err != nil {
		b.Log.Error("mail: remove result mail delivery", "component", "mail", "delivery", d.ID, "err", err)
	}
}

// startSender starts webhook delivery of what the store's outbox holds,
// after handing its result mails to the mail outbox (the webhook sender
// never sees them).
func (b *Box) startSender() error {
	ds, err := b.Store.Outbox()
	if err != nil {
		return fmt.Errorf("box: load outbox: %w", err)
	}
	b.deliver(ds)
	return nil
}

// serveSMTP starts the SMTP listener (e-mail to fax) on ln, or on
// smtp_listen.addr when ln is nil; without either there is none.
func (b *Box) serveSMTP(ln net.Listener) error {
	lc := b.Cfg.SMTPListen
	if ln == nil && lc.Addr == "" {
		return nil
	}
	tlsCfg, err := mail.ListenerTLS(lc, b.Cfg.DataDir)
	if err != nil {
		return err
	}
	l, err := mail.NewListener(mail.ListenerConfig{SMTPListen: lc, Tokens: b.Cfg.Tokens, TLS: tlsCfg, Submit: b.API, Log: b.Log})
	if err != nil {
		return err
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", lc.Addr); err != nil {
			return fmt.Errorf("box: smtp listen %s: %w", lc.Addr, err)
		}
	}
	b.smtp.Store(&smtpServer{l: l, ln: ln})
	go func() {
		if err := l.Serve(ln); err != nil {
			b.Log.Error("smtp listener stopped", "component", "smtp", "err", err)
		}
	}()
	return nil
}

// smtpServer is the SMTP listener and the socket it serves.
type smtpServer struct {
	l  *mail.Listener
	ln net.Listener
}

// SMTPAddr returns the SMTP listener's address ("" without one).
func (b *Box) SMTPAddr() string {
	if s := b.smtp.Load(); s != nil {
		return s.ln.Addr().String()
	}
	return ""
}

// closeSMTP stops the SMTP listener.
func (b *Box) closeSMTP() {
	if s := b.smtp.Load(); s != nil {
		s.l.Close()
	}
}
