package routing

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/mail"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/xmpp"
)

// fakeMailer records what is queued, by id (queueing an id again does
// nothing, as the mail outbox does).
type fakeMailer struct {
	mu   sync.Mutex
	msgs map[string]mail.Message
	errs int // the next errs EnqueueID calls fail
}

func (m *fakeMailer) EnqueueID(id string, msg mail.Message) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.errs > 0 {
		m.errs--
		return "", os.ErrPermission
	}
	if _, ok := m.msgs[id]; !ok {
		m.msgs[id] = msg
	}
	return id, nil
}

func (m *fakeMailer) Get(id string) (*mail.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &mail.Record{ID: id, Message: m.msgs[id], State: mail.Queued}, nil
}

type env struct {
	st   *store.DB
	clk  *clock.Fake
	mail *fakeMailer
	r    *Router

	mu   sync.Mutex
	sent []*store.Delivery // dispatched to the box
}

func newEnv(t *testing.T, routes []config.Route) *env {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{st: st, clk: clock.NewFake(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)), mail: &fakeMailer{msgs: map[string]mail.Message{}}}
	e.r, err = New(Config{Routes: routes, Store: st, Mail: e.mail, LinkBase: "http://192.0.2.10:8080", LinkKey: []byte("k"),
		Retry: config.Webhook{FirstRetry: job.Duration(5 * time.Second), MaxBackoff: job.Duration(time.Minute)}, Clock: e.clk,
		Dispatch: func(ds []*store.Delivery) { e.mu.Lock(); e.sent = append(e.sent, ds...); e.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.r.Close)
	return e
}

// put records a received fax of pages pages (fake documents) waiting for
// its routing.
func (e *env) put(t *testing.T, did, caller string, pages int) *inbox.Fax {
	t.Helper()
	f := &inbox.Fax{ID: inbox.NewID(), Source: "u" + string(inbox.NewID()), DID: did, CallerID: caller, Status: inbox.Received,
		Pages: pages, CreatedAt: e.clk.Now(), EndedAt: e.clk.Now()}
	if pages > 0 {
		dir := e.st.DocDir(string(f.ID))
		os.MkdirAll(dir, 0o750)
		os.WriteFile(filepath.Join(dir, inbox.PDFFile), []byte("%PDF of "+string(f.ID)), 0o640)
		f.PDF, f.TIFF = true, true
	} else {
		f.Status = inbox.Failed
	}
	if _, err := e.st.PutReceived(f, true); err != nil {
		t.Fatal(err)
	}
	return f
}

func (e *env) route(t *testing.T, f *inbox.Fax) {
	t.Helper()
	if err := e.r.Route(context.Background(), f, e.st.DocDir(string(f.ID))); err != nil {
		t.Fatal(err)
	}
}

func TestRulesFirstMatchWins(t *testing.T) {
	routes := []config.Route{
		{Name: "sales", Match: config.RouteMatch{DID: "500"}, Folder: "/x"},
		{Name: "vip", Match: config.RouteMatch{CallerID: "0301"}, Folder: "/x"},
		{Name: "regex", Match: config.RouteMatch{DID: "^5[1-2][0-9]$", RemoteStationID: "^ACME"}, Folder: "/x"},
		{Name: "port3", Match: config.RouteMatch{Port: "3"}, Folder: "/x"},
		{Name: "rest", Match: config.RouteMatch{DID: "^6"}, Folder: "/x"},
	}
	e := newEnv(t, routes)
	for _, c := range []struct {
		f    inbox.Fax
		want string
	}{
		{inbox.Fax{DID: "500", CallerID: "0301999"}, "sales"}, // first match wins over vip
		{inbox.Fax{DID: "5000", CallerID: "0301999"}, "vip"},  // did matches whole
		{inbox.Fax{DID: "501", CallerID: "0401"}, ""},
		{inbox.Fax{DID: "512", RemoteStationID: "ACME Ltd"}, "regex"},
		{inbox.Fax{DID: "512", RemoteStationID: "Other"}, ""},
		{inbox.Fax{DID: "530", RemoteStationID: "ACME"}, ""},
		{inbox.Fax{Port: "3", CallerID: "089"}, "port3"},
		{inbox.Fax{Port: "31"}, ""},
		{inbox.Fax{DID: "600"}, "rest"},
	} {
		if got := e.r.Rule(&c.f); got != c.want {
			t.Errorf("%+v: rule %q, want %q", c.f, got, c.want)
		}
	}
}

func TestRulesValidated(t *testing.T) {
	cfg := config.Default()
	cfg.Tokens = []string{"a-long-token"}
	cfg.DataDir = t.TempDir()
	cfg.Inbox.Routes = []config.Route{
		{Name: "broken", Match: config.RouteMatch{CallerID: "^(030"}, Folder: "/srv/fax"},
		{Match: config.RouteMatch{DID: "500"}, Email: []string{"office@example.test"}},
		{Name: "nowhere", Match: config.RouteMatch{DID: "501"}},
		{Name: "relative", Folder: "fax/in", Webhook: "ftp://x"},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("bad rules accepted")
	}
	for _, want := range []string{`rule "broken": match.caller_id: bad regular expression "^(030"`, `rule "routes[1]": email needs smtp.host`,
		`rule "nowhere": no destination`, `rule "relative": folder "fax/in" must be a clean absolute path`, `rule "relative": webhook:`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := New(Config{Routes: cfg.Inbox.Routes[:1]}); err == nil || !strings.Contains(err.Error(), `rule "broken"`) {
		t.Errorf("New with a bad regex: %v", err)
	}
}

// TestRouteDeliversOnce: a rule's webhook, XMPP messages, mail and folder
// write are queued once, however often the fax is routed; the webhook
// carries a download URL signed for the fax, the mail the PDF.
func TestRouteDeliversOnce(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, []config.Route{{Name: "all", Match: config.RouteMatch{DID: "500"}, Webhook: "http://hooks.example/rx",
		Email: []string{"office@example.test"}, XMPP: []string{"boss@example.test"}, XMPPRooms: []string{"office@conference.example.test"}, Folder: dir}})
	f := e.put(t, "500", "0301234567", 2)
	e.route(t, f)
	e.route(t, f) // again, as after a crash before MarkRouted
	e.mu.Lock()
	sent := append([]*store.Delivery(nil), e.sent...)
	e.mu.Unlock()
	if len(sent) != 3 {
		t.Fatalf("dispatched %d deliveries, want a webhook and 2 XMPP messages: %+v", len(sent), sent)
	}
	var p Payload
	if err := json.Unmarshal(sent[0].Body, &p); err != nil || sent[0].Method != "POST" || sent[0].URL != "http://hooks.example/rx" ||
		p.Event != inbox.Event || p.Rule != "all" || p.Data.ID != f.ID || p.PDF != nil || p.DocumentExpiresAt == nil {
		t.Fatalf("webhook: %+v %+v (%v)", sent[0], p, err)
	}
	u, err := url.Parse(p.DocumentURL)
	if err != nil || u.Host != "192.0.2.10:8080" || u.Path != "/v1/inbox/"+string(f.ID)+"/document" {
		t.Fatalf("document URL %q", p.DocumentURL)
	}
	if err := VerifyLink([]byte("k"), f.ID, u.Query(), e.clk.Now()); err != nil {
		t.Errorf("the download URL does not verify: %v", err)
	}
	if err := VerifyLink([]byte("k"), f.ID, u.Query(), e.clk.Now().Add(time.Hour)); err != ErrLinkExpired {
		t.Errorf("the download URL an hour later: %v", err)
	}
	for _, d := range sent[1:] {
		if d.Method != xmpp.Method || !strings.Contains(string(d.Body), "Fax from 0301234567 to 500: 2 pages") {
			t.Errorf("XMPP delivery: %+v %s", d, d.Body)
		}
	}
	if len(e.mail.msgs) != 1 {
		t.Fatalf("mails: %+v", e.mail.msgs)
	}
	for _, m := range e.mail.msgs {
		if m.To[0] != "office@example.test" || len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/pdf" || m.Ref != string(f.ID) {
			t.Errorf("mail: %+v", m)
		}
	}
	waitFor(t, e.clk, func() bool { m, _ := filepath.Glob(filepath.Join(dir, "*.pdf")); return len(m) == 1 })
	m, _ := filepath.Glob(filepath.Join(dir, "*.pdf"))
	if b, _ := os.ReadFile(m[0]); filepath.Base(m[0]) != FileName(f)+".pdf" || string(b) != "%PDF of "+string(f.ID) {
		t.Errorf("folder file %s: %q", m[0], b)
	}
	waitFor(t, e.clk, func() bool { ds, _ := e.st.Outbox(); return len(ds) == 3 }) // the folder write is done; the webhook and XMPP wait for the box
	if why := e.r.Problem(); why != "" {
		t.Errorf("alarm: %s", why)
	}
}

// TestFailuresRaiseTheAlarm: a folder that is not there is retried with
// backoff, the alarm on, until it appears; a mail that cannot be queued
// fails the routing (the fax stays waiting for it), alarm on, and the next
// routing queues it.
func TestFailuresRaiseTheAlarm(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "share")
	e := newEnv(t, []config.Route{{Name: "share", Match: config.RouteMatch{DID: "501"}, Folder: dir},
		{Name: "mail", Match: config.RouteMatch{DID: "502"}, Email: []string{"office@example.test"}}})
	f := e.put(t, "501", "", 1)
	e.route(t, f)
	waitFor(t, e.clk, func() bool { return e.r.Problem() != "" })
	if why := e.r.Problem(); !strings.Contains(why, dir) {
		t.Errorf("alarm: %q", why)
	}
	ds, _ := e.st.Outbox()
	if len(ds) != 1 || ds[0].Attempts == 0 || ds[0].NextAt.Sub(e.clk.Now()) != 5*time.Second {
		t.Fatalf("the failed folder write: %+v", ds)
	}
	os.Mkdir(dir, 0o750)
	e.clk.Advance(5 * time.Second)
	waitFor(t, e.clk, func() bool { ds, _ := e.st.Outbox(); return len(ds) == 0 })
	if m, _ := filepath.Glob(filepath.Join(dir, "*_unknown_"+string(f.ID)+".pdf")); len(m) != 1 {
		t.Errorf("folder after the retry: %v", m)
	}
	e.clk.Advance(3 * time.Second) // past the alarm's cache
	if why := e.r.Problem(); why != "" {
		t.Errorf("alarm after the write: %q", why)
	}

	g := e.put(t, "502", "089", 1)
	e.mail.errs = 1
	if err := e.r.Route(context.Background(), g, e.st.DocDir(string(g.ID))); err == nil {
		t.Fatal("routing with the mail refused succeeded")
	}
	if why := e.r.Problem(); !strings.Contains(why, string(g.ID)) {
		t.Errorf("alarm: %q", why)
	}
	if ids, _ := e.st.Unrouted(); len(ids) != 1 || ids[0] != g.ID {
		t.Errorf("unrouted: %v", ids)
	}
	e.route(t, g)
	if ids, _ := e.st.Unrouted(); len(ids) != 0 || len(e.mail.msgs) != 1 {
		t.Errorf("after routing again: unrouted %v, mails %d", ids, len(e.mail.msgs))
	}
	e.clk.Advance(3 * time.Second)
	if why := e.r.Problem(); why != "" {
		t.Errorf("alarm after the mail was queued: %q", why)
	}
}

func waitFor(t *testing.T, _ *clock.Fake, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWebhookFailuresRaiseTheAlarm: a webhook of a received fax that failed
// and waits for its retry, or was given up in the last 24 hours, raises the
// alarm; the job webhooks do not.
func TestWebhookFailuresRaiseTheAlarm(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clk.Now()
	f := &inbox.Fax{ID: inbox.NewID(), Source: "w1", Status: inbox.Received, CreatedAt: now}
	d := &store.Delivery{ID: "dl_1", JobID: string(f.ID), Event: inbox.Event, Method: "POST", URL: "http://hooks.example/rx?k=secret",
		CreatedAt: now, NextAt: now.Add(time.Minute), Attempts: 1, LastError: "HTTP 503"}
	if _, err := e.st.PutReceived(f, false, d); err != nil {
		t.Fatal(err)
	}
	if why := e.r.Problem(); !strings.Contains(why, "HTTP 503") || strings.Contains(why, "secret") {
		t.Errorf("alarm of a failing webhook: %q", why)
	}
	e.st.Delivered(d, true) // given up
	e.clk.Advance(3 * time.Second)
	if why := e.r.Problem(); !strings.Contains(why, "given up") {
		t.Errorf("alarm of a webhook given up: %q", why)
	}
	e.clk.Advance(alarmWindow)
	if why := e.r.Problem(); why != "" {
		t.Errorf("alarm a day after: %q", why)
	}
}
