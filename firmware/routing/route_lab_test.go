//go:build lab

package routing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/receiving"
	"github.com/faxbox/faxbox/firmware/routing"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/webhook"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/postfix"
	"github.com/faxbox/faxbox/tools/lab"
)

const (
	token  = "route-lab-token"
	secret = "route-lab-webhook-secret"
	office = "office@example.test"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// routeEnv is an Asterisk lab of its own, a private postfix, a webhook
// receiver, a folder and a faxbox wired to them with routing rules.
type routeEnv struct {
	l      *lab.Lab
	pf     *postfix.Server
	hook   *testkit.Receiver
	folder string
	doc    string // the 3-page PDF the remote sends
	b      *box.Box
	c      *testkit.Client
	base   string // the box's URL
}

// startRouteEnv starts everything; routes makes the rules from the
// webhook receiver's URL and the folder.
func startRouteEnv(t testing.TB, name string, port int, routes func(hook, folder string) []config.Route) *routeEnv {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf", "debootstrap")
	return finishEnv(t, name, port, postfix.Start(t), routes)
}

func finishEnv(t testing.TB, name string, port int, pf *postfix.Server, routes func(hook, folder string) []config.Route) *routeEnv {
	t.Helper()
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Name: name, BasePort: port, Share: []string{data}, Log: testWriter{t}})
	if err != nil {
		t.Fatalf("the Asterisk lab did not come up: %v", err)
	}
	t.Cleanup(l.Down)
	e := &routeEnv{l: l, pf: pf, hook: testkit.NewReceiver(t), folder: t.TempDir()}
	e.doc = filepath.Join(t.TempDir(), "doc.pdf")
	os.WriteFile(e.doc, testkit.PDF(t, 3), 0o644)
	cfg := l.FaxboxConfig(config.Default())
	cfg.DataDir = data
	cfg.Tokens = []string{token}
	cfg.WebhookSecret = secret
	pf.Configure(&cfg.SMTP)
	cfg.Inbox.Routes = routes(e.hook.URL, e.folder)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.base = "http://" + ln.Addr().String()
	cfg.Inbox.LinkBaseURL = e.base
	octx, ocancel := context.WithTimeout(context.Background(), time.Minute)
	defer ocancel()
	b, err := box.Open(octx, cfg, box.Options{Version: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(sctx, ln); close(done) }()
	t.Cleanup(func() {
		scancel()
		<-done
		b.Close()
		if err := store.CheckDir(data); err != nil {
			t.Errorf("after the test: %v", err)
		}
	})
	e.b, e.c = b, &testkit.Client{Base: e.base, Token: token}
	return e
}

// sendFrom makes the remote fax the 3-page document to did from caller
// ("": the lab's default) and returns when the call has ended.
func (e *routeEnv) sendFrom(t testing.TB, did, caller string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := e.l.Send(ctx, lab.SendOptions{To: did, File: e.doc, CallerID: caller}); err != nil {
		t.Fatal(err)
	}
}

// waitCaller polls the inbox until a fax from caller is there.
func (e *routeEnv) waitCaller(t testing.TB, caller string, d time.Duration) *inbox.Fax {
	t.Helper()
	for deadline := time.Now().Add(d); ; {
		var l struct{ Items []*inbox.Fax }
		e.c.Do(t, "GET", "/v1/inbox?caller_id="+caller, nil, "", &l)
		if len(l.Items) > 0 {
			return l.Items[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no received fax from %s after %s", caller, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// routedHook waits for the signed fax.received webhook of fax id at path.
func (e *routeEnv) routedHook(t testing.TB, path string, id inbox.ID, d time.Duration) (routing.Payload, testkit.Hook) {
	t.Helper()
	var p routing.Payload
	var got testkit.Hook
	e.hook.Wait(t, d, "fax.received for "+string(id), func(hs []testkit.Hook) bool {
		for _, h := range hs {
			var x routing.Payload
			if h.URL != path || json.Unmarshal(h.Body, &x) != nil || x.Data == nil || x.Data.ID != id {
				continue
			}
			if !webhook.Verify(secret, h.Body, h.Header.Get("X-Faxbox-Signature")) || h.Header.Get("X-Faxbox-Event") != "fax.received" {
				t.Errorf("webhook of %s: bad signature or event header: %v", id, h.Header)
			}
			p, got = x, h
			return true
		}
		return false
	})
	return p, got
}

// pdfPages counts the pages of PDF bytes b with ghostscript.
func pdfPages(t testing.TB, b []byte) int {
	t.Helper()
	p := filepath.Join(t.TempDir(), "got.pdf")
	os.WriteFile(p, b, 0o600)
	n, err := receiving.PDFPages(context.Background(), p)
	if err != nil {
		t.Errorf("the PDF does not read: %v", err)
	}
	return n
}

// get fetches url without a token.
func get(t testing.TB, url string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// TestLabRoutesByDID: real T.38 faxes from the lab's remote to three of the
// box's numbers, each routed by its DID: 510 to a signed webhook whose
// download URL serves the PDF without a token (and not with a tampered
// signature), 511 by e-mail through a real postfix into its Maildir with
// the PDF attached, 512 into a folder. The rule matching every caller
// comes last and never fires: the first match wins. Each fax goes only
// where its rule says, every PDF has the 3 pages sent, and nothing is left
// in the outbox or in alarm.
func TestLabRoutesByDID(t *testing.T) {
	e := startRouteEnv(t, "routelab", 44060, func(hook, folder string) []config.Route {
		return []config.Route{
			{Name: "accounts", Match: config.RouteMatch{DID: "510"}, Webhook: hook + "/accounts"},
			{Name: "office", Match: config.RouteMatch{DID: "511"}, Email: []string{office}},
			{Name: "archive", Match: config.RouteMatch{DID: "^51[2-4]$"}, Folder: folder},
			{Name: "everyone", Match: config.RouteMatch{CallerID: "0"}, Webhook: hook + "/everyone", Email: []string{"all@example.test"}},
		}
	})
	// Caller ids of this run: a lab reused within a minute may hand the
	// box the last run's receptions, which are routed too.
	run := time.Now().Unix() % 10000
	caller := func(did string) string { return fmt.Sprintf("07%04d%s", run, did) }
	var wg sync.WaitGroup
	for _, did := range []string{"510", "511", "512"} {
		wg.Add(1)
		go func() { defer wg.Done(); e.sendFrom(t, did, caller(did)) }()
	}
	wg.Wait()
	hooked, mailed, filed := e.waitCaller(t, caller("510"), time.Minute), e.waitCaller(t, caller("511"), time.Minute), e.waitCaller(t, caller("512"), time.Minute)
	ours := map[inbox.ID]bool{hooked.ID: true, mailed.ID: true, filed.ID: true}
	for _, f := range []*inbox.Fax{hooked, mailed, filed} {
		if f.Status != inbox.Received || f.Pages != 3 || !f.PDF {
			t.Fatalf("received fax: %+v", f)
		}
	}

	p, _ := e.routedHook(t, "/accounts", hooked.ID, time.Minute)
	if p.Rule != "accounts" || p.Data.DID != "510" || p.Data.Pages != 3 || p.PDF != nil || p.DocumentExpiresAt == nil ||
		!strings.HasPrefix(p.DocumentURL, e.base+"/v1/inbox/"+string(hooked.ID)+"/document?") {
		t.Errorf("webhook: %+v", p)
	}
	code, ct, b := get(t, p.DocumentURL)
	if code != 200 || ct != "application/pdf" || pdfPages(t, b) != 3 {
		t.Errorf("the download URL: HTTP %d %s, %d bytes", code, ct, len(b))
	}
	bad := p.DocumentURL[:len(p.DocumentURL)-1] + map[bool]string{true: "1", false: "0"}[strings.HasSuffix(p.DocumentURL, "0")]
	if code, _, _ := get(t, bad); code != 403 {
		t.Errorf("the download URL with a tampered signature: HTTP %d", code)
	}

	m := e.pf.WaitMail(t, office, string(mailed.ID), time.Minute)
	att := m.Attachments[string(mailed.ID)+".pdf"]
	if len(m.Attachments) != 1 || pdfPages(t, att) != 3 || !strings.Contains(m.Text, "Pages: 3") || !strings.Contains(m.Subject, "to 511") {
		t.Errorf("mail: subject %q, attachments %d, text %q", m.Subject, len(m.Attachments), m.Text)
	}

	want := filepath.Join(e.folder, routing.FileName(filed)+".pdf")
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := os.Stat(want); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not written", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b, _ := os.ReadFile(want); pdfPages(t, b) != 3 {
		t.Errorf("the folder's PDF")
	}

	// Each fax went only where its rule says.
	time.Sleep(2 * time.Second)
	ents, _ := os.ReadDir(e.folder)
	for _, f := range ents {
		if strings.HasPrefix(f.Name(), ".") || (strings.Contains(f.Name(), string(hooked.ID)) || strings.Contains(f.Name(), string(mailed.ID))) {
			t.Errorf("the folder holds %s", f.Name())
		}
	}
	for _, h := range e.hook.Hooks() {
		var x routing.Payload
		if json.Unmarshal(h.Body, &x) != nil || x.Data == nil {
			t.Errorf("an unexpected webhook: %s %.120s", h.URL, h.Body)
		} else if ours[x.Data.ID] && (h.URL != "/accounts" || x.Data.ID != hooked.ID) {
			t.Errorf("fax %s (DID %s) went to webhook %s", x.Data.ID, x.Data.DID, h.URL)
		}
	}
	mails := map[inbox.ID]int{}
	for _, m := range e.pf.Mails(t) {
		for id := range ours {
			if strings.Contains(m.Subject, string(id)) {
				mails[id]++
			}
		}
	}
	if len(mails) != 1 || mails[mailed.ID] != 1 {
		t.Errorf("mails of this run's faxes: %v, want one of %s", mails, mailed.ID)
	}
	var st struct {
		Extra struct{ Alarms []string } `json:"extra"`
	}
	e.c.Do(t, "GET", "/v1/status", nil, "", &st)
	for _, a := range st.Extra.Alarms {
		if a == routing.Alarm {
			t.Errorf("alarm raised: %v", st.Extra.Alarms)
		}
	}
	if ds, _ := e.b.Store.Outbox(); len(ds) != 0 {
		t.Errorf("the outbox still holds %d deliveries", len(ds))
	}
}
