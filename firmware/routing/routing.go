// Package routing applies the routing rules (inbox.routes) to received
// faxes: the first rule whose match fits a fax sends it to the rule's
// webhook (fax.received with a signed download URL, or the PDF itself),
// e-mail addresses (PDF attached), XMPP recipients and rooms, and folder.
// Router satisfies receiving.Router; the inbox keeps every fax whatever
// the rules do.
//
// Contracts:
//   - Route is idempotent and durable: mails are queued in the mail outbox
//     under ids made from the fax and rule (queueing one twice sends one);
//     webhooks, XMPP messages and folder writes are queued in the store's
//     outbox in the same transaction that marks the fax routed
//     (store.RouteReceived), so a routing repeated after a crash delivers
//     each once. Route returns nil only once everything is queued; a fax
//     whose Route failed is routed again by the receiving service.
//   - Webhooks go out through the webhook sender (signed, retried with
//     backoff); XMPP messages through the XMPP client; folder writes are
//     retried here with the webhooks' backoff and never given up.
//   - A destination that cannot be reached raises the alarm (Alarm) until
//     its delivery succeeds; the fax is never lost (it stays in the inbox
//     and its delivery stays queued).
package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/mail"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/xmpp"
	"github.com/faxbox/faxbox/firmware/xmpp/addr"
	"github.com/oklog/ulid/v2"
)

// Mailer queues mails durably and idempotently by id (mail.Outbox).
type Mailer interface {
	EnqueueID(id string, m mail.Message) (string, error)
	Get(id string) (*mail.Record, error)
}

// Config of a Router.
type Config struct {
	Routes []config.Route
	Store  *store.DB
	// Mail queues the e-mails (nil: rules with email cannot deliver).
	Mail Mailer
	// Dispatch hands committed webhook and XMPP deliveries on (the box's
	// deliver); folder deliveries stay here.
	Dispatch func([]*store.Delivery)
	// LinkBase is put in front of the signed download paths
	// ("http://192.0.2.10:8080"); LinkKey signs them, valid for LinkTTL.
	LinkBase string
	LinkKey  []byte
	LinkTTL  time.Duration
	// Retry paces the folder writes' retries (webhook.* settings).
	Retry config.Webhook
	Clock clock.Clock
	Log   *slog.Logger
}

// rule is a compiled config.Route.
type rule struct {
	config.Route
	name                    string
	did, port, caller, tsid *regexp.Regexp
}

// Router routes received faxes by the rules.
type Router struct {
	cfg   Config
	rules []rule
	log   *slog.Logger

	folders *folders

	mu        sync.Mutex
	failing   map[inbox.ID]string // faxes whose Route failed → why
	mails     map[string]time.Time
	lastCheck time.Time
	lastAlarm string
}

// New compiles the rules (config.Validate has checked them; an error names
// the rule).
func New(cfg Config) (*Router, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = config.DefaultLinkTTL
	}
	if cfg.Dispatch == nil {
		cfg.Dispatch = func([]*store.Delivery) {}
	}
	r := &Router{cfg: cfg, log: cfg.Log.With("component", "routing"), failing: map[inbox.ID]string{}, mails: map[string]time.Time{}}
	for i, c := range cfg.Routes {
		ru := rule{Route: c, name: c.RouteName(i)}
		var err error
		for _, p := range []struct {
			dst   **regexp.Regexp
			v     string
			exact bool
		}{{&ru.did, c.Match.DID, true}, {&ru.port, c.Match.Port, true}, {&ru.caller, c.Match.CallerID, false}, {&ru.tsid, c.Match.RemoteStationID, false}} {
			if *p.dst, err = config.RoutePattern(p.v, p.exact); err != nil {
				return nil, fmt.Errorf("routing: rule %q: %w", ru.name, err)
			}
		}
		r.rules = append(r.rules, ru)
	}
	r.folders = newFolders(r)
	return r, nil
}

// Rule returns the name of the first rule matching f ("" when none does).
func (r *Router) Rule(f *inbox.Fax) string {
	if ru := r.match(f); ru != nil {
		return ru.name
	}
	return ""
}

func (r *Router) match(f *inbox.Fax) *rule {
	for i := range r.rules {
		ru := &r.rules[i]
		if ru.did.MatchString(f.DID) && ru.port.MatchString(f.Port) && ru.caller.MatchString(f.CallerID) &&
			ru.tsid.MatchString(f.RemoteStationID) {
			return ru
		}
	}
	return nil
}

// Route sends f (its documents in docDir) to the destinations of the first
// matching rule (receiving.Router).
func (r *Router) Route(ctx context.Context, f *inbox.Fax, docDir string) error {
	err := r.route(f, docDir)
	r.mu.Lock()
	if err != nil {
		r.failing[f.ID] = err.Error()
	} else {
		delete(r.failing, f.ID)
	}
	r.mu.Unlock()
	return err
}

func (r *Router) route(f *inbox.Fax, docDir string) error {
	ru := r.match(f)
	var ds []*store.Delivery
	if ru != nil {
		if err := r.queueMail(ru, f, docDir); err != nil {
			return err
		}
		var err error
		if ds, err = r.deliveries(ru, f, docDir); err != nil {
			return err
		}
	}
	queued, err := r.cfg.Store.RouteReceived(f.ID, ds...)
	if err != nil {
		return fmt.Errorf("routing: %s: %w", f.ID, err)
	}
	if !queued {
		return nil // routed before (its deliveries were queued then)
	}
	if ru == nil {
		r.log.Info("routing: no rule matches; the fax stays in the inbox", "id", f.ID, "did", f.DID, "port", f.Port, "caller", f.CallerID)
		return nil
	}
	r.log.Info("routing: fax routed", "id", f.ID, "rule", ru.name, "deliveries", len(ds), "mails", len(ru.Email) > 0)
	r.cfg.Dispatch(r.Take(ds))
	return nil
}

// Payload is the body of a routing rule's fax.received webhook.
type Payload struct {
	Event job.Event  `json:"event"`
	Data  *inbox.Fax `json:"data"`
	// Rule is the name of the rule that sent it.
	Rule string `json:"rule"`
	// DocumentURL fetches the PDF (the TIFF when there is no PDF) without a
	// token until DocumentExpiresAt; absent when no page arrived.
	DocumentURL       string     `json:"document_url,omitempty"`
	DocumentExpiresAt *time.Time `json:"document_expires_at,omitempty"`
	// PDF is the document itself (base64 in JSON), with the rule's attach.
	PDF []byte `json:"pdf,omitempty"`
}

// deliveries builds the store-outbox deliveries of rule ru for f.
func (r *Router) deliveries(ru *rule, f *inbox.Fax, docDir string) ([]*store.Delivery, error) {
	now := r.cfg.Clock.Now()
	var ds []*store.Delivery
	if ru.Webhook != "" {
		p := Payload{Event: inbox.Event, Data: f, Rule: ru.name}
		if file, format := document(f, docDir); file != "" {
			exp := now.Add(r.cfg.LinkTTL).Truncate(time.Second)
			p.DocumentURL = strings.TrimSuffix(r.cfg.LinkBase, "/") + LinkPath(r.cfg.LinkKey, f.ID, format, exp)
			p.DocumentExpiresAt = &exp
			if ru.Attach {
				b, err := os.ReadFile(file)
				if err != nil {
					return nil, fmt.Errorf("routing: %s: read the document to attach: %w", f.ID, err)
				}
				p.PDF = b
			}
		}
		body, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("routing: %s: webhook body: %w", f.ID, err)
		}
		ds = append(ds, &store.Delivery{ID: "dl_" + newULID(), JobID: string(f.ID), Event: inbox.Event, Method: "POST",
			URL: ru.Webhook, Body: body, CreatedAt: now, NextAt: now})
	}
	text := Text(f)
	for _, j := range ru.XMPP {
		if a, err := addr.Check(j); err == nil {
			ds = append(ds, &store.Delivery{ID: xmpp.NewID(), JobID: string(f.ID), Event: inbox.Event, Method: xmpp.Method,
				URL: xmpp.Target{JID: a}.URI(), Body: []byte(text), CreatedAt: now, NextAt: now})
		}
	}
	for _, j := range ru.XMPPRooms {
		if a, err := addr.Check(j); err == nil {
			ds = append(ds, &store.Delivery{ID: xmpp.NewID(), JobID: string(f.ID), Event: inbox.Event, Method: xmpp.Method,
				URL: xmpp.Target{JID: a, Room: true}.URI(), Body: []byte(text), CreatedAt: now, NextAt: now})
		}
	}
	if ru.Folder != "" {
		ds = append(ds, &store.Delivery{ID: "fd_" + newULID(), JobID: string(f.ID), Event: inbox.Event, Method: MethodFolder,
			URL: ru.Folder, CreatedAt: now, NextAt: now})
	}
	return ds, nil
}

func newULID() string { return strings.ToLower(ulid.Make().String()) }

// document returns f's document to hand on (the PDF, else the TIFF) and
// its format, or "" when no page arrived.
func document(f *inbox.Fax, docDir string) (string, string) {
	switch {
	case f.PDF:
		return filepath.Join(docDir, inbox.PDFFile), "pdf"
	case f.TIFF:
		return filepath.Join(docDir, inbox.TIFFFile), "tiff"
	}
	return "", ""
}

// Text is the fax in one line (XMPP messages, mail subjects).
func Text(f *inbox.Fax) string {
	from := f.CallerID
	if from == "" {
		from = "an unknown number"
	}
	if f.RemoteStationID != "" {
		from += " (" + f.RemoteStationID + ")"
	}
	on := f.DID
	if on == "" && f.Port != "" {
		on = "port " + f.Port
	}
	s := fmt.Sprintf("Fax from %s", from)
	if on != "" {
		s += " to " + on
	}
	switch f.Status {
	case inbox.Received:
		s += fmt.Sprintf(": %d page%s", f.Pages, plural(f.Pages))
	case inbox.Partial:
		s += fmt.Sprintf(": %d page%s, cut short", f.Pages, plural(f.Pages))
	default:
		s += ": failed, no page arrived"
	}
	return s + " [" + string(f.ID) + "]"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// MailID is the mail outbox id of fax id's routed mail: one rule routes a
// fax, so the id is the same on every routing of it.
func MailID(id inbox.ID) string {
	return "ml_" + strings.TrimPrefix(string(id), inbox.Prefix) + "-routed"
}

// queueMail queues rule ru's mail of f with its document attached.
func (r *Router) queueMail(ru *rule, f *inbox.Fax, docDir string) error {
	if len(ru.Email) == 0 {
		return nil
	}
	if r.cfg.Mail == nil {
		return fmt.Errorf("routing: rule %q: e-mail to %s: %w", ru.name, strings.Join(ru.Email, ", "), mail.ErrNoRelay)
	}
	m := mail.Message{To: ru.Email, Subject: Text(f), Ref: string(f.ID)}
	m.Text = mailText(f)
	if file, format := document(f, docDir); file != "" {
		a := mail.Attachment{Name: string(f.ID) + ".pdf", ContentType: "application/pdf", Path: file}
		if format == "tiff" {
			a = mail.Attachment{Name: string(f.ID) + ".tif", ContentType: "image/tiff", Path: file}
		}
		m.Attachments = []mail.Attachment{a}
	}
	id := MailID(f.ID)
	if _, err := r.cfg.Mail.EnqueueID(id, m); err != nil {
		return fmt.Errorf("routing: rule %q: queue the mail of %s: %w", ru.name, f.ID, err)
	}
	r.mu.Lock()
	r.mails[id] = r.cfg.Clock.Now()
	r.mu.Unlock()
	return nil
}

func mailText(f *inbox.Fax) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s.\n\n", Text(f))
	fmt.Fprintf(&b, "Calling number: %s\nRemote station: %s\n", orDash(f.CallerID), orDash(f.RemoteStationID))
	if f.DID != "" {
		fmt.Fprintf(&b, "Dialled number: %s\n", f.DID)
	}
	if f.Port != "" {
		fmt.Fprintf(&b, "Line: port %s\n", f.Port)
	}
	fmt.Fprintf(&b, "Pages: %d\nReceived: %s\nStatus: %s\n", f.Pages, f.EndedAt.UTC().Format("2006-01-02 15:04:05 UTC"), f.Status)
	if f.Error != nil {
		fmt.Fprintf(&b, "Error: %s\n", f.Error.Code)
	}
	if !f.PDF && !f.TIFF {
		b.WriteString("\nNo page arrived, so nothing is attached.\n")
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
