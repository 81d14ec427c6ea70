package xmpp_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/xmpp"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

// closedPort is a local port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func xmppConfig(server string) func(*config.Config) {
	return func(c *config.Config) {
		c.XMPP.JID, c.XMPP.Password, c.XMPP.Server = "faxbox@example.org", "pw", server
		c.XMPP.Rooms, c.XMPP.Notify = []string{"office@conference.example.org"}, []string{"boss@example.org"}
		c.XMPP.FirstRetry, c.XMPP.MaxBackoff = job.Duration(time.Hour), job.Duration(time.Hour)
	}
}

// TestNotifyXMPPField: notify_xmpp is checked on faxes and calls, kept in
// canonical form, and refused (422) on a box without an account.
func TestNotifyXMPPField(t *testing.T) {
	env := testbox.Start(t, xmppConfig(closedPort(t)))
	pdf := testkit.PDF(t, 1)
	post := func(notify string) (int, job.Job) {
		body, ctype := testkit.Multipart(testkit.Field("to", "99990001"), testkit.Field("notify_xmpp", notify), testkit.File("file", "a.pdf", pdf))
		var j job.Job
		resp := env.C.Do(t, "POST", "/v1/faxes", body, ctype, &j)
		return resp.StatusCode, j
	}
	for _, bad := range []string{"a@example.org\r\nX: y", "a@example.org/res", "<a>@example.org", "example.org", strings.Repeat("a", 1000) + "@example.org", "a b@example.org"} {
		if code, _ := post(bad); code != http.StatusBadRequest {
			t.Errorf("fax notify_xmpp %q: HTTP %d, want 400", bad, code)
		}
	}
	if code, j := post("Clerk@Example.ORG"); code != http.StatusAccepted || j.NotifyXMPP != "clerk@example.org" {
		t.Errorf("fax: HTTP %d, notify_xmpp %q", code, j.NotifyXMPP)
	}
	call := func(notify string) int {
		body := `{"kind":"message","to":"99990001","say":"hello","notify_xmpp":` + strconv.Quote(notify) + `}`
		return env.C.Do(t, "POST", "/v1/calls", strings.NewReader(body), "application/json", nil).StatusCode
	}
	if code := call("clerk@example.org\n"); code != http.StatusBadRequest {
		t.Errorf("call with a bad notify_xmpp: HTTP %d, want 400", code)
	}
	if code := call("clerk@example.org"); code != http.StatusAccepted {
		t.Errorf("call: HTTP %d, want 202", code)
	}

	plain := testbox.Start(t, nil)
	body, ctype := testkit.Multipart(testkit.Field("to", "99990001"), testkit.Field("notify_xmpp", "clerk@example.org"), testkit.File("file", "a.pdf", pdf))
	if resp := plain.C.Do(t, "POST", "/v1/faxes", body, ctype, nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("box without an account: HTTP %d, want 422", resp.StatusCode)
	}
}

// TestXMPPOutboxSurvivesRestart: with the server unreachable, a fax's
// outcome waits in the store's outbox (room, configured recipient, the
// job's own); /v1/status shows it queued and the error; the webhook sender
// never takes it; a restarted box queues it again.
func TestXMPPOutboxSurvivesRestart(t *testing.T) {
	testkit.Require(t, "gs")
	cfg := config.Default()
	cfg.DataDir, cfg.Tokens = t.TempDir(), []string{testbox.Token}
	cfg.TestLine.PageTime = job.Duration(50 * time.Millisecond)
	xmppConfig(closedPort(t))(&cfg)
	open := func() (*box.Box, *testkit.Client, func()) {
		b, err := box.Open(context.Background(), cfg, box.Options{Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { b.Serve(ctx, ln); close(done) }()
		return b, &testkit.Client{Base: "http://" + ln.Addr().String(), Token: testbox.Token}, func() { cancel(); <-done; b.Close() }
	}
	_, c, stop := open()
	body, ctype := testkit.Multipart(testkit.Field("to", "99990001"), testkit.Field("notify_xmpp", "clerk@example.org"), testkit.File("file", "a.pdf", testkit.PDF(t, 1)))
	var j job.Job
	if resp := c.Do(t, "POST", "/v1/faxes", body, ctype, &j); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	waitStatus := func(c *testkit.Client, what string, ok func(xmpp.Status, int) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var s struct {
				Extra struct {
					XMPP    xmpp.Status `json:"xmpp"`
					Webhook int         `json:"webhooks_pending"`
				} `json:"extra"`
			}
			c.Do(t, "GET", "/v1/status", nil, "", &s)
			if ok(s.Extra.XMPP, s.Extra.Webhook) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status never showed %s: %+v", what, s.Extra)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	unsent := func(s xmpp.Status, webhooks int) bool {
		return s.Queued == 3 && !s.Connected && strings.Contains(s.LastError, "connection refused") && s.NextConnect != nil && webhooks == 0
	}
	waitStatus(c, "3 queued, not connected", unsent)
	stop()

	st, err := store.Open(cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := st.Outbox()
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, d := range ds {
		if d.Method != xmpp.Method || d.JobID != j.ID || !strings.HasPrefix(string(d.Body), "Fax to 99990001 delivered, 1 page") {
			t.Errorf("outbox holds %+v", d)
		}
		urls = append(urls, d.URL)
	}
	if strings.Join(urls, " ") != "xmpp:office@conference.example.org?join xmpp:boss@example.org xmpp:clerk@example.org" {
		t.Fatalf("outbox after the stop: %v", urls)
	}
	_, c2, stop2 := open()
	defer stop2()
	waitStatus(c2, "3 queued again after the restart", unsent)
}
