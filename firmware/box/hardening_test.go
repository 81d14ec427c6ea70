package box

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/linecard/linecardtest"
	"github.com/faxbox/faxbox/firmware/panel"
	"github.com/faxbox/faxbox/firmware/selftest"
	"github.com/faxbox/faxbox/firmware/speech"
	"github.com/faxbox/faxbox/internal/testkit"
)

// A line index that strconv.Atoi accepts but that is not the line's one
// text form ("01", "+1") is refused before anything changes; the panic it
// caused in SetLineBusy is gone, and /v1/lines and the scheduler agree.
func TestLineBusyRefusesOtherSpellings(t *testing.T) {
	e := startBox(t, nil)
	for _, n := range []string{"01", "+1", "0", "-1", "1x", "99"} {
		resp := e.c.Do(t, http.MethodPost, "/v1/lines/test/"+n+"/busy", nil, "", nil)
		want := http.StatusBadRequest
		if n == "99" {
			want = http.StatusNotFound
		}
		if resp.StatusCode != want {
			t.Errorf("POST /v1/lines/test/%s/busy: %d, want %d", n, resp.StatusCode, want)
		}
	}
	var lines struct{ Lines []struct{ State string } }
	e.c.Do(t, http.MethodGet, "/v1/lines", nil, "", &lines)
	for i, l := range lines.Lines {
		if l.State != "idle" {
			t.Fatalf("line %d is %q after refused requests, want idle", i+1, l.State)
		}
	}
	// The scheduler agrees: a fax still goes out on line 1.
	var j job.Job
	if r := e.c.Submit(t, "/v1/faxes", &j, testkit.Field("to", "99990001"), testkit.File("file", "a.pdf", testkit.PDF(t, 1))); r.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d", r.StatusCode)
	}
	got := e.waitStatus(t, j.ID, job.Delivered, 30*time.Second)
	if got.LastAttempt().Line.String() != "test/1" {
		t.Fatalf("delivered on %s, want test/1", got.LastAttempt().Line)
	}
	// The one true spelling works.
	if r := e.c.Do(t, http.MethodPost, "/v1/lines/test/1/busy", nil, "", &lines); r.StatusCode != http.StatusOK || lines.Lines[0].State != "busied_out" {
		t.Fatalf("POST /v1/lines/test/1/busy: %d %s", r.StatusCode, fmt.Sprint(lines.Lines))
	}
}

// blockScreen holds the panel in its first Draw until released.
type blockScreen struct {
	first   chan struct{}
	release chan struct{}
	once    bool
}

func (s *blockScreen) Draw([]string) error {
	if !s.once {
		s.once = true
		close(s.first)
		<-s.release
	}
	return nil
}
func (s *blockScreen) Keys() <-chan string { return nil }

// The panel's event subscription is replaced when it falls behind; when the
// panel stops, the replacement is closed too (no subscription left behind).
func TestPanelClosesReplacedSubscription(t *testing.T) {
	e := startBox(t, nil)
	before := e.box.Bus.Subscribers()
	scr := &blockScreen{first: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.box.RunPanel(ctx, panel.New(2, 16), nil, scr, PanelHooks{}); close(done) }()
	<-scr.first
	for i := 0; i < 1100; i++ { // more than the panel's buffer: it is dropped
		e.box.Bus.Publish(events.Status, i)
	}
	close(scr.release)
	deadline := time.Now().Add(5 * time.Second)
	for e.box.Bus.Subscribers() != before+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the panel subscribes again
	}
	if n := e.box.Bus.Subscribers(); n != before+1 {
		t.Fatalf("%d subscribers while the panel runs after a drop; want %d", n, before+1)
	}
	cancel()
	<-done
	if n := e.box.Bus.Subscribers(); n != before {
		t.Fatalf("%d subscribers after the panel stopped; want %d", n, before)
	}
}

// A box that fails to open after connecting to the manager interface closes
// that connection (every error exit of Open closes what it opened).
func TestOpenErrorClosesManagerConnection(t *testing.T) {
	f := linecardtest.NewAMI(t, linecardtest.Options{})
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Tokens = []string{token}
	cfg.Asterisk = &config.Asterisk{AMIAddr: f.Addr(), AMIUser: "faxbox", AMISecret: "s3cretpass", SpoolDir: t.TempDir()}
	// A line group may not take the test line's name: found after the
	// manager connection is up.
	cfg.LineGroups = []config.LineGroup{{Name: TestGroup, Channels: 1, Dial: "PJSIP/%s@trunk"}}
	if _, err := Open(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "reserved for the test line") {
		t.Fatalf("Open: %v; want the reserved group name refused", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for f.Live() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.Live(); n != 0 {
		t.Fatalf("%d manager connections left open after Open failed", n)
	}
	// The data directory is free again: a second Open gets its lock.
	cfg.LineGroups[0].Name = "sip"
	b, err := Open(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatalf("Open after a failed Open: %v", err)
	}
	b.Close()
}

// An inbound-callback call that Asterisk reports the moment faxbox logs in
// (before the rest of the box was built) is served: the box calls back.
func TestInboundCallbackAtLogin(t *testing.T) {
	f := linecardtest.NewAMI(t, linecardtest.Options{OnLogin: "Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: FaxboxInbound\r\nCallerID: 300\r\n"})
	e := startBox(t, func(c *config.Config) {
		c.Asterisk = &config.Asterisk{AMIAddr: f.Addr(), AMIUser: "faxbox", AMISecret: "s3cretpass", SpoolDir: t.TempDir()}
		c.LineGroups = []config.LineGroup{{Name: "sip", Channels: 1, Dial: "PJSIP/%s@trunk"}}
		c.Calls.Callback = config.Callback{Number: "5000", AllowCallers: []string{"300"}, PIN: "1234", Delay: job.Duration(time.Hour), PerHour: 3}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		var list struct{ Items []job.Job }
		e.c.Do(t, http.MethodGet, "/v1/calls", nil, "", &list)
		if len(list.Items) == 1 && list.Items[0].To == "300" && list.Items[0].Call.Kind == "callback" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no callback job for the call at login: %+v", list.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The panel's reset and self-test do something in a box built as the
// command builds it (no hooks injected): the reset runs
// panel.reset_command, or says it is not configured; the self-test sends a
// fax through the box's own engine.
func TestPanelResetAndSelfTestWired(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "reset-done")
	e := startBox(t, func(c *config.Config) {
		c.Panel.ResetCommand = []string{"sh", "-c", "echo reset > " + marker}
	})
	sub := e.box.Bus.Subscribe(64)
	defer sub.Close()
	e.box.panelAction(panel.Action{Kind: "reset_network"}, PanelHooks{})
	if b, err := os.ReadFile(marker); err != nil || string(b) != "reset\n" {
		t.Fatalf("reset command did not run: %q %v", b, err)
	}
	e.box.Cfg.Panel.ResetCommand = nil
	e.box.panelAction(panel.Action{Kind: "reset_network"}, PanelHooks{})
	seen := map[string]bool{}
	deadline := time.After(5 * time.Second)
	for !seen["network reset not configured"] {
		select {
		case ev := <-sub.C:
			var m map[string]string
			if json.Unmarshal(ev.Data, &m) == nil {
				seen[m["panel_result"]] = true
			}
		case <-deadline:
			t.Fatalf("panel results seen: %v", seen)
		}
	}
	if !seen["network reset done"] {
		t.Fatalf("panel results seen: %v; want the configured reset reported done", seen)
	}
	e.box.panelAction(panel.Action{Kind: "self_test"}, PanelHooks{})
	end := time.Now().Add(30 * time.Second)
	for {
		var run selftest.Run
		e.c.Do(t, http.MethodGet, "/v1/selftest", nil, "", &run)
		if run.Status == selftest.Passed {
			if run.Path != "test_line" || run.PagesSent != 2 || run.Attempt == nil || run.Attempt.PagesSent != 2 {
				t.Fatalf("self-test run: %+v", run)
			}
			break
		}
		if run.Status == selftest.Failed || time.Now().After(end) {
			t.Fatalf("self-test did not pass: %+v", run)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var list struct{ Items []job.Job }
	e.c.Do(t, http.MethodGet, "/v1/faxes", nil, "", &list)
	if len(list.Items) != 0 {
		t.Fatalf("the self-test's job is listed as a customer's: %+v", list.Items)
	}
}

// A message call's text becomes the WAV Asterisk plays, in the job's
// document directory (the engine's documents reach package speech): here
// on the test line, which delivers the call.
func TestMessageCallRendersAudio(t *testing.T) {
	testkit.Require(t, "espeak-ng", "sox", "soxi")
	e := startBox(t, nil)
	var j job.Job
	body := strings.NewReader(`{"kind": "message", "to": "99990001", "say": "The backup failed.", "max_attempts": 1}`)
	if resp := e.c.Do(t, http.MethodPost, "/v1/calls", body, "application/json", &j); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/calls: %d", resp.StatusCode)
	}
	e.c.WaitJob(t, "/v1/calls/"+j.ID, job.Delivered, 30*time.Second, true)
	wav := filepath.Join(e.box.Store.DocDir(j.ID), speech.MessageFile)
	var got []string
	for _, flag := range []string{"-t", "-r", "-c", "-b"} {
		out, err := exec.Command("soxi", flag, wav).CombinedOutput()
		if err != nil {
			t.Fatalf("soxi %s %s: %v %s", flag, wav, err, out)
		}
		got = append(got, strings.TrimSpace(string(out)))
	}
	if strings.Join(got, " ") != "wav 8000 1 16" {
		t.Fatalf("%s: %v; want wav, 8000 Hz, 1 channel, 16 bit", wav, got)
	}
}
