package box

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	rx "github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/routing"
	"github.com/faxbox/faxbox/firmware/webhook"
	"github.com/faxbox/faxbox/internal/testkit"
)

// TestRoutingThroughTheBox: the box builds the router of inbox.routes. A
// routed fax's webhook goes out through the webhook sender, signed, with a
// download URL the API serves without a token; its folder write fails while
// the folder is missing, which raises the alarm in /v1/status, and is kept
// in the outbox across a restart of the box, which writes it once the folder
// is there and clears the alarm.
func TestRoutingThroughTheBox(t *testing.T) {
	rcv := testkit.NewReceiver(t)
	share := filepath.Join(t.TempDir(), "share")
	routes := func(c *config.Config) {
		c.Inbox.Routes = []config.Route{{Name: "desk", Match: config.RouteMatch{DID: "500"}, Webhook: rcv.URL + "/desk", Folder: share}}
	}
	e := startBox(t, func(c *config.Config) { routes(c); c.Listen = "127.0.0.1:1" })
	f := &rx.Fax{ID: rx.NewID(), Source: "u1", DID: "500", CallerID: "0301", Status: rx.Received, Pages: 1, PDF: true, TIFF: true,
		CreatedAt: time.Now(), EndedAt: time.Now()}
	dir := e.box.Store.DocDir(string(f.ID))
	os.MkdirAll(dir, 0o750)
	os.WriteFile(filepath.Join(dir, rx.PDFFile), []byte("%PDF-1.4 one page"), 0o640)
	os.WriteFile(filepath.Join(dir, rx.TIFFFile), []byte("II*\x00"), 0o640)
	if _, err := e.box.Store.PutReceived(f, true); err != nil {
		t.Fatal(err)
	}
	if err := e.box.router.Route(context.Background(), f, dir); err != nil {
		t.Fatal(err)
	}
	hs := rcv.Wait(t, 10*time.Second, "the routed webhook", func(hs []testkit.Hook) bool { return len(hs) > 0 })
	var p routing.Payload
	if err := json.Unmarshal(hs[0].Body, &p); err != nil || hs[0].URL != "/desk" || p.Rule != "desk" || p.Data.ID != f.ID ||
		!webhook.Verify("s3cret", hs[0].Body, hs[0].Header.Get("X-Faxbox-Signature")) {
		t.Fatalf("webhook %s: %+v (%v)", hs[0].URL, p, err)
	}
	path, ok := strings.CutPrefix(p.DocumentURL, "http://127.0.0.1:1") // link_base_url defaults to listen
	if !ok {
		t.Fatalf("document URL %q", p.DocumentURL)
	}
	if r := (&testkit.Client{Base: e.c.Base}).Do(t, "GET", path, nil, "", nil); r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("the signed download URL: HTTP %d", r.StatusCode)
	}

	var st struct {
		Extra struct {
			Alarms  []string
			Routing struct{ Problem string }
		} `json:"extra"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		e.c.Do(t, "GET", "/v1/status", nil, "", &st)
		if len(st.Extra.Alarms) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no alarm for the missing folder")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Extra.Alarms[0] != routing.Alarm || !strings.Contains(st.Extra.Routing.Problem, share) {
		t.Errorf("status: %+v", st.Extra)
	}

	// A restart keeps the folder write; with the folder there it is done.
	e.box.Close()
	os.Mkdir(share, 0o750)
	e2 := startBox(t, func(c *config.Config) { routes(c); c.DataDir = e.dir })
	want := filepath.Join(share, routing.FileName(f)+".pdf")
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b, err := os.ReadFile(want); err == nil && string(b) == "%PDF-1.4 one page" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not written after the restart", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		e2.c.Do(t, "GET", "/v1/status", nil, "", &st)
		if len(st.Extra.Alarms) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alarms after the write: %v", st.Extra.Alarms)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(rcv.Hooks()) != 1 {
		t.Errorf("%d webhooks, want 1 (a restart sends none again)", len(rcv.Hooks()))
	}
}
