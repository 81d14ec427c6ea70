// Package box assembles a running faxbox from its configuration: store,
// engine with its diallers, webhook sender, the HTTP API and the front
// panel, and connects the Asterisk manager interface's events to what
// follows them (package linecard for the DAHDI line cards, trunk for the
// SIP trunk's qualify, the Asterisk diallers; inbound callbacks through
// package inbound, message audio through package speech). It is wiring
// only: the features live in those packages. cmd/faxbox and the end-to-end
// tests both start the box through Open and Serve.
package box

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/user"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faxbox/faxbox/board"
	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/api"
	"github.com/faxbox/faxbox/firmware/asterisk"
	"github.com/faxbox/faxbox/firmware/calendar"
	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/convert"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/directory"
	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/gpio"
	"github.com/faxbox/faxbox/firmware/inbound"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/lcd"
	"github.com/faxbox/faxbox/firmware/lifecycle"
	"github.com/faxbox/faxbox/firmware/linecard"
	"github.com/faxbox/faxbox/firmware/mail"
	"github.com/faxbox/faxbox/firmware/media"
	"github.com/faxbox/faxbox/firmware/media/health"
	"github.com/faxbox/faxbox/firmware/panel"
	"github.com/faxbox/faxbox/firmware/receiving"
	"github.com/faxbox/faxbox/firmware/routing"
	"github.com/faxbox/faxbox/firmware/scheduler"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/testline"
	"github.com/faxbox/faxbox/firmware/trunk"
	"github.com/faxbox/faxbox/firmware/webhook"
	"github.com/faxbox/faxbox/firmware/xmpp"
)

// TestGroup is the name of the simulated test line's group.
const TestGroup = "test"

// Box is a running faxbox.
type Box struct {
	Cfg     config.Config
	Store   *store.DB
	Engine  *engine.Engine
	Sender  *webhook.Sender
	Bus     *events.Bus
	API     *api.Server
	Log     *slog.Logger
	Clock   clock.Clock
	Version string
	// Mail is the durable outgoing mail queue (result mails; received
	// faxes mailed on). Enqueue answers mail.ErrNoRelay without smtp.host.
	Mail *mail.Outbox
	// XMPP sends job outcomes over XMPP (nil without xmpp.jid).
	XMPP *xmpp.Client

	// selftests runs the self-test and trunk qualifications.
	selftests *selfTests

	ln        net.Listener
	smtp      atomic.Pointer[smtpServer] // the SMTP listener (e-mail to fax), once served
	smtpOpt   net.Listener               // Options.SMTPListener
	srv       *http.Server
	ami       *ami.Client
	asterisk  map[string]*asterisk.Dialler
	cards     *linecard.Cards // nil without DAHDI line groups
	trunk     *trunk.Watch    // nil without a qualified SIP trunk
	panelStop func()
	rx        *receiving.Service // records received faxes (nil without Asterisk)
	rxDir     string             // where Asterisk writes them
	rxStop    context.CancelFunc // ends the recovery watch
	// media makes the attempts' media reports (nil without Asterisk);
	// captureStop ends its capture.
	media       *media.Tracker
	captureStop func()
	learned     *health.Book // what the box learned of its fax paths (trunk alarms, metrics)
	started     time.Time
	// purge is the retention timer; purgeMu guards it (the timer's own
	// goroutine sets the next one) and purgeDone, set by Close.
	purgeMu     sync.Mutex
	purge       clock.Timer
	purgeDone   bool
	calendars   *calendar.Service    // nil without calendars
	directory   *directory.Directory // nil without ldap.url
	router      *routing.Router      // inbox.routes (nil without rules)
	linkKey     []byte               // signs the inbox's download URLs
	ippWithdraw func() error         // removes the printer's DNS-SD announcement (set by Serve)
}

// Options are the parts a caller may inject.
type Options struct {
	Clock   clock.Clock
	Log     *slog.Logger
	Version string
	// Diallers adds diallers for the config's line groups, by group name.
	Diallers map[string]dialler.Dialler
	// Listener, when set, is served instead of listening on cfg.Listen.
	Listener net.Listener
	// SMTPListener, when set, is the SMTP listener's (instead of
	// smtp_listen.addr).
	SMTPListener net.Listener
	// PanelHooks are the front panel's reset and self-test actions.
	PanelHooks PanelHooks

	// Router routes received faxes (routing rules) once they are
	// recorded; nil: the inbox and inbox.webhook_url only.
	Router receiving.Router

	// TimeZone is the box's zone for calendar events with floating times
	// and dates (nil: time.Local).
	TimeZone *time.Location

	// DirectorySource, when set, is read instead of the LDAP server of
	// ldap.url (tests).
	DirectorySource directory.Source
}

// Open builds the box (store open, engine recovered) without serving HTTP.
// On any error everything it opened is closed again (one cleanup path: Close
// copes with a box built half way).
func Open(ctx context.Context, cfg config.Config, o Options) (_ *Box, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	b := &Box{Cfg: cfg, Log: o.Log, Clock: o.Clock, Version: o.Version, Bus: events.NewBus(), started: time.Now()}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	st, err := store.Open(cfg.DataDir, store.Options{Retention: cfg.Retention.D()})
	if err != nil {
		return nil, err
	}
	b.Store = st
	b.Sender = webhook.NewSender(st, o.Clock, cfg.WebhookSecret, cfg.Webhook, o.Log)
	if err := b.openMail(); err != nil {
		return nil, err
	}
	if err := b.openXMPP(); err != nil {
		return nil, err
	}
	b.smtpOpt = o.SMTPListener
	if err := b.openRouting(); err != nil {
		return nil, err
	}
	if err := b.openDirectory(o); err != nil {
		return nil, err
	}

	sink := &sinkProxy{}
	if err := b.openAsterisk(ctx, cfg, o, sink); err != nil {
		return nil, err
	}
	groups, diallers, err := b.lineGroups(cfg, o)
	if err != nil {
		return nil, err
	}
	workers := cfg.Convert.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	conv := convert.New(convert.Config{
		Ghostscript: cfg.Convert.Ghostscript,
		Timeout:     cfg.Convert.Timeout.D(),
		MemoryMB:    cfg.Convert.MemoryMB,
		MaxPages:    cfg.Limits.MaxPages,
	})
	diallers[TestGroup] = testline.New(cfg.TestLine.Prefix, cfg.TestLine.PageTime.D(), o.Clock, sink)
	if groups, err = b.addSelfTestLine(groups, diallers, o, sink); err != nil {
		return nil, err
	}
	rules, err := cfg.DestControls()
	if err != nil {
		return nil, err
	}
	reporter := b.startMedia(cfg)
	learned, err := health.Open(st, healthConfig(cfg.MediaHealth, o.Log.With("component", "health")))
	if err != nil {
		return nil, err
	}
	b.learned = learned
	eng, err := engine.New(engine.Config{
		Store: st, Clock: o.Clock, Bus: b.Bus, Docs: documents{conv: conv, clk: o.Clock},
		Groups: groups, Diallers: diallers, Policy: lifecycle.Policy{Retry: cfg.Retry}, Rules: rules,
		Workers: workers, Outbox: internalOutbox(xmppOutbox(o.Clock.Now, b, mailOutbox(webhook.Outbox(o.Clock.Now)))), Deliver: b.deliver,
		Log: o.Log, StationID: cfg.StationID, Media: reporter, Health: learned,
	})
	if err != nil {
		return nil, err
	}
	sink.e = eng
	b.Engine = eng
	if b.cards != nil {
		b.cards.Attach(eng)
	}
	// Asterisk's events flow from here on: everything they reach exists
	// now. They must flow before the engine's Start, because the manager
	// connection carries both the events and the answer to Start's
	// Reconcile (an unread event stream would hold that answer back).
	b.startEvents()
	if err := eng.Start(ctx); err != nil {
		return nil, err
	}
	if err := b.startSender(); err != nil {
		return nil, err
	}
	b.API = &api.Server{Cfg: cfg, Store: st, Engine: eng, Bus: b.Bus, Renderer: renderer{}, Version: o.Version,
		Log: o.Log, Now: o.Clock.Now, Started: b.started, Extra: b.extra, Metrics: b.writeMetrics}
	b.attachDirectory()
	b.API.LinkKey = b.linkKey
	b.API.SelfTests = b
	b.selftests.load()
	b.bootSelfTest()
	b.schedulePurge()
	if err := b.startCalendars(o); err != nil {
		return nil, err
	}
	if cfg.Panel.Board != "" {
		if err := b.startPanel(cfg.Panel.Board, o.PanelHooks); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// lineGroups turns the config's line groups into the scheduler's, each with
// its dialler (injected, or the Asterisk one); the test line's group comes
// first, its dialler is added by the caller.
func (b *Box) lineGroups(cfg config.Config, o Options) ([]*scheduler.Group, map[string]dialler.Dialler, error) {
	groups := []*scheduler.Group{{Name: TestGroup, Channels: max(cfg.TestLine.Channels, 1), Prefixes: []string{cfg.TestLine.Prefix}, Test: true}}
	diallers := map[string]dialler.Dialler{}
	for _, g := range cfg.LineGroups {
		if g.Name == TestGroup {
			return nil, nil, fmt.Errorf("box: line group name %q is reserved for the test line", TestGroup)
		}
		d := o.Diallers[g.Name]
		if d == nil {
			if ad := b.asterisk[g.Name]; ad != nil {
				d = ad
			}
		}
		if d == nil {
			return nil, nil, fmt.Errorf("box: no dialler for line group %s (transport %q)", g.Name, g.Transport)
		}
		var ws []scheduler.Window
		for _, w := range g.Windows {
			pw, err := scheduler.ParseWindow(w)
			if err != nil {
				return nil, nil, err
			}
			ws = append(ws, pw)
		}
		groups = append(groups, &scheduler.Group{Name: g.Name, Channels: g.Channels, Prefixes: g.Prefixes, Windows: ws})
		diallers[g.Name] = d
	}
	return groups, diallers, nil
}

// startPanel opens the board's GPIO lines and LCD and runs the front panel.
// Missing hardware is logged and shown as an alarm, never fatal.
func (b *Box) startPanel(name string, hooks PanelHooks) error {
	prof, err := board.Load(name)
	if err != nil {
		return err
	}
	leds := gpio.Open(gpio.Config{LEDs: prof.LEDs, Buttons: prof.Buttons, Log: b.Log})
	rows, cols := 2, 16
	var screen Screen
	var disp *lcd.Display
	if prof.LCD != nil {
		rows, cols = prof.LCD.Rows, prof.LCD.Cols
		disp, err = lcd.Open(lcd.Config{Device: prof.LCD.Device, Baud: prof.LCD.Baud, Rows: rows, Cols: cols, KeyMap: prof.LCD.KeyMap(), Log: b.Log})
		if err != nil {
			leds.Close()
			return err
		}
		screen = disp
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.RunPanel(ctx, panel.New(rows, cols), leds, screen, hooks); close(done) }()
	b.panelStop = func() {
		cancel()
		<-done
		leds.Close()
		if disp != nil {
			disp.Close()
		}
	}
	return nil
}

// sinkProxy lets diallers be built before the engine they report to.
type sinkProxy struct{ e *engine.Engine }

func (s *sinkProxy) Progress(p dialler.Progress) { s.e.Progress(p) }
func (s *sinkProxy) Result(r dialler.Result)     { s.e.Result(r) }

func (b *Box) extra() map[string]any {
	sent, failed := b.Sender.Stats()
	m := map[string]any{"webhooks_pending": b.Sender.Pending(), "webhooks_sent_total": sent, "webhook_failures_total": failed}
	if b.Mail != nil {
		m["mail"] = b.Mail.Status() // outbox: pending, sent, refused for good (last refusal)
	}
	m["smtp_listen"] = b.SMTPAddr()
	if b.XMPP != nil {
		m["xmpp"] = b.XMPP.Status() // connected, queued, sent, dead letters, last error
	}
	if b.directory != nil {
		m["directory"] = b.directory.Status() // state, last_sync, error, users, entries, refused
	}
	if b.cards != nil {
		m["dahdi_alarms"] = b.cards.Alarms() // ["span 1: Red Alarm", "channel 3: Red Alarm"]
	}
	if b.trunk != nil {
		m["trunk"] = b.trunk.State() // unknown|reachable|unreachable
	}
	alarms := []string{}
	for _, a := range b.alarms(nil) {
		alarms = append(alarms, string(a))
	}
	m["alarms"] = alarms
	if b.learned != nil {
		m["media_health"] = b.mediaHealth() // alarm, trunks' pooled loss and jitter
	}
	if b.router != nil {
		m["routing"] = b.routingStatus() // rules, why routed faxes cannot be delivered
	}
	return m
}

func (b *Box) schedulePurge() {
	n, err := b.Store.Purge(b.Clock.Now())
	if err != nil {
		b.Log.Error("retention: purge", "err", err)
	} else if n > 0 {
		b.Log.Info("retention: purged documents", "jobs", n)
	}
	b.purgeReceived()
	b.purgeMu.Lock()
	defer b.purgeMu.Unlock()
	if !b.purgeDone {
		b.purge = b.Clock.AfterFunc(time.Hour, b.schedulePurge)
	}
}

// Serve listens (unless a listener was given) and serves the API until ctx
// ends or Close is called.
func (b *Box) Serve(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", b.Cfg.Listen)
		if err != nil {
			return fmt.Errorf("box: listen %s: %w", b.Cfg.Listen, err)
		}
	}
	b.ln = ln
	if err := b.serveSMTP(b.smtpOpt); err != nil {
		return err
	}
	h := b.API.Handler()
	b.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	stopIPP, err := b.serveIPP(h)
	if err != nil {
		return err
	}
	defer stopIPP()
	b.Log.Info("faxbox ready", "listen", ln.Addr().String(), "data", b.Cfg.DataDir, "version", b.Version,
		"startup", time.Since(b.started).Round(time.Millisecond).String())
	errc := make(chan error, 1)
	go func() { errc <- b.srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// Addr returns the address being served, once Serve has started.
func (b *Box) Addr() string {
	if b.ln == nil {
		return ""
	}
	return b.ln.Addr().String()
}

// Close stops everything and closes the store.
func (b *Box) Close() error {
	b.selftests.close()
	if b.calendars != nil {
		b.calendars.Close()
	}
	if b.directory != nil {
		b.directory.Close()
	}
	b.purgeMu.Lock()
	b.purgeDone = true
	if b.purge != nil {
		b.purge.Stop()
	}
	b.purgeMu.Unlock()
	if b.panelStop != nil {
		b.panelStop()
	}
	if b.srv != nil {
		b.srv.Close()
	}
	if b.ippWithdraw != nil {
		b.ippWithdraw()
	}
	b.closeSMTP()
	if b.Engine != nil {
		b.Engine.Close()
	}
	b.closeReceived()
	b.closeRouting()
	if b.Sender != nil {
		b.Sender.Close()
	}
	if b.Mail != nil {
		b.Mail.Close()
	}
	b.closeXMPP()
	if b.ami != nil {
		b.ami.Close()
	}
	if b.captureStop != nil {
		b.captureStop()
	}
	if b.Store == nil {
		return nil
	}
	return b.Store.Close()
}

// openAsterisk connects to Asterisk's manager interface and builds a dialler
// for every line group that has none injected.
func (b *Box) openAsterisk(ctx context.Context, cfg config.Config, o Options, sink dialler.Sink) error {
	var need []config.LineGroup
	for _, g := range cfg.LineGroups {
		if o.Diallers[g.Name] == nil {
			need = append(need, g)
		}
	}
	if len(need) == 0 || cfg.Asterisk == nil {
		return nil
	}
	a := cfg.Asterisk
	b.asterisk = map[string]*asterisk.Dialler{}
	var ds []*asterisk.Dialler
	cards := linecard.New(cfg, need, o.Log)
	b.cards = cards
	if t := a.Trunk; t != nil && t.Qualify > 0 {
		b.trunk = trunk.New(t.Name)
	}
	var callbacks *inbound.Service
	if cfg.Calls.Callback.Number != "" {
		callbacks = inbound.New(inbound.Config{Callback: cfg.Calls.Callback, Clock: o.Clock, Submit: b.submit, Log: o.Log,
			Allowed: b.directoryCaller})
	}
	// Background: the box starts (queue, API, panel alarm "asterisk
	// unreachable") while its Asterisk is still starting or down.
	client, err := ami.Dial(ctx, ami.Config{Addr: a.AMIAddr, Username: a.AMIUser, Secret: a.AMISecret, Log: o.Log, Background: true,
		OnConnect: func(ctx context.Context, c *ami.Client) {
			if cards != nil {
				cards.Load(ctx, c)
			}
			if c.Reconnects() == 0 {
				return
			}
			for _, d := range ds {
				d.Resync(ctx)
			}
		}})
	if err != nil {
		return fmt.Errorf("box: asterisk manager at %s: %w", a.AMIAddr, err)
	}
	b.ami = client
	b.openReceiving(cfg, client, b.rxRouter(o.Router))
	for _, g := range need {
		ac := asterisk.Config{Group: g.Name, Dial: g.Dial, Transport: g.Transport, SpoolDir: a.SpoolDir, RingTimeout: g.RingTimeout.D(), Log: o.Log,
			PIN: cfg.Calls.Callback.PIN, AllowDest: inbound.AllowDest(cfg.Calls), UID: -1, GID: -1, Documents: b.Store.DocDir("")}
		if a.User != "" {
			u, err := user.Lookup(a.User)
			if err != nil {
				return fmt.Errorf("box: asterisk.user %q: %w", a.User, err)
			}
			ac.UID, _ = strconv.Atoi(u.Uid)
			ac.GID, _ = strconv.Atoi(u.Gid)
		}
		if callbacks != nil && len(ds) == 0 {
			ac.OnInbound = callbacks.Handle // one group takes the callback number's calls
		}
		d, err := asterisk.New(ac, client, sink)
		if err != nil {
			return err
		}
		b.asterisk[g.Name] = d
		ds = append(ds, d)
	}
	return nil
}

// submit stores a new job and hands it to the engine (the inbound
// callbacks' jobs). The engine exists by the time it is called: manager
// events flow only once it does (startEvents).
func (b *Box) submit(j *job.Job) error {
	rec, err := b.Store.Create(&store.Record{Job: j})
	if err != nil {
		return err
	}
	b.Engine.Submit(rec)
	return nil
}

// startEvents hands the manager interface's events to the line cards, the
// trunk watch and the diallers, in that order, until the client closes.
func (b *Box) startEvents() {
	if b.ami == nil {
		return
	}
	client, cards, tw, mt := b.ami, b.cards, b.trunk, b.media
	var ds []*asterisk.Dialler
	for _, d := range b.asterisk {
		ds = append(ds, d)
	}
	rx := b.rx
	defer b.startReceived()
	go func() {
		for m := range client.Events() {
			if rx != nil && rx.Handle(m) {
				continue
			}
			if mt != nil {
				mt.Handle(m) // reads, never consumes
			}
			if cards != nil && cards.Handle(m) {
				continue
			}
			if tw != nil && tw.Handle(m) {
				continue
			}
			for _, d := range ds {
				d.Handle(m)
			}
		}
	}()
}
