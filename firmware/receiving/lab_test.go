//go:build lab

package receiving_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/receiving"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/webhook"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

const (
	token  = "rx-lab-token"
	secret = "rx-lab-webhook-secret"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// rxEnv is the Asterisk lab, a faxbox wired to it and the receivers of
// what it announces.
type rxEnv struct {
	l    *lab.Lab
	cfg  config.Config
	hook *testkit.Receiver
	doc  string // a 3-page PDF the remote sends
}

// startLab starts a lab of its own (name, base port) for one test.
func startLab(t *testing.T, name string, base int) *rxEnv {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf", "debootstrap")
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Name: name, BasePort: base, Share: []string{data}, Log: testWriter{t}})
	if err != nil {
		t.Fatalf("the Asterisk lab did not come up: %v", err)
	}
	t.Cleanup(l.Down)
	e := &rxEnv{l: l, hook: testkit.NewReceiver(t)}
	e.cfg = l.FaxboxConfig(config.Default())
	e.cfg.DataDir = data
	e.cfg.Tokens = []string{token}
	e.cfg.WebhookSecret = secret
	e.cfg.Inbox.WebhookURL = e.hook.URL + "/received"
	e.doc = filepath.Join(t.TempDir(), "doc.pdf")
	os.WriteFile(e.doc, testkit.PDF(t, 3), 0o644)
	return e
}

// running is one faxbox process's worth of box, served on 127.0.0.1.
type running struct {
	b    *box.Box
	c    *testkit.Client
	stop func()
}

func (e *rxEnv) open(t *testing.T) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := box.Open(ctx, e.cfg, box.Options{Version: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(sctx, ln); close(done) }()
	var once sync.Once
	r := &running{b: b, c: &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}}
	r.stop = func() { once.Do(func() { scancel(); <-done; b.Close() }) }
	t.Cleanup(r.stop)
	return r
}

// waitFax polls the inbox until a fax with did is there.
func (r *running) waitFax(t *testing.T, did string, d time.Duration) *inbox.Fax {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var l struct{ Items []*inbox.Fax }
		r.c.Do(t, "GET", "/v1/inbox?did="+did, nil, "", &l)
		if len(l.Items) > 0 {
			return l.Items[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no received fax on %s after %s", did, d)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// sse collects the names of the server-sent events of the box.
type sse struct {
	mu     sync.Mutex
	events map[string][]string // event name → data lines
}

func (r *running) watchEvents(t *testing.T) *sse {
	req, _ := http.NewRequest("GET", r.c.Base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	s := &sse{events: map[string][]string{}}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		name := ""
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				s.mu.Lock()
				s.events[name] = append(s.events[name], v)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *sse) has(name, substr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.events[name] {
		if strings.Contains(d, substr) {
			return true
		}
	}
	return false
}

// checkPDF fetches the fax's PDF through the API and counts its pages
// with ghostscript.
func (r *running) checkPDF(t *testing.T, f *inbox.Fax, pages int) {
	t.Helper()
	resp := r.c.Do(t, "GET", "/v1/inbox/"+string(f.ID)+"/document", nil, "", nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("PDF of %s: HTTP %d %s", f.ID, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := filepath.Join(t.TempDir(), "got.pdf")
	os.WriteFile(p, b, 0o600)
	if n, err := receiving.PDFPages(context.Background(), p); err != nil || n != pages {
		t.Errorf("the served PDF of %s has %d pages (%v), want %d", f.ID, n, err, pages)
	}
	resp = r.c.Do(t, "GET", "/v1/inbox/"+string(f.ID)+"/document?format=tiff", nil, "", nil)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !strings.HasPrefix(string(b), "II*") && !strings.HasPrefix(string(b), "MM") {
		t.Errorf("TIFF of %s: HTTP %d, %d bytes", f.ID, resp.StatusCode, len(b))
	}
}

// signedHook waits for the signed fax.received webhook of fax id.
func (e *rxEnv) signedHook(t *testing.T, id inbox.ID) receiving.Payload {
	t.Helper()
	var p receiving.Payload
	e.hook.Wait(t, 60*time.Second, "fax.received for "+string(id), func(hs []testkit.Hook) bool {
		for _, h := range hs {
			var x receiving.Payload
			if json.Unmarshal(h.Body, &x) != nil || x.Data == nil || x.Data.ID != id {
				continue
			}
			if !webhook.Verify(secret, h.Body, h.Header.Get("X-Faxbox-Signature")) || h.Header.Get("X-Faxbox-Event") != "fax.received" {
				t.Errorf("webhook of %s: bad signature or event header: %v", id, h.Header)
			}
			p = x
			return true
		}
		return false
	})
	return p
}

// TestReceiveRealFaxes: the lab's remote sends real faxes to the box over
// the SIP trunk — T.38, G.711, and one it hangs up on after page 1 — and
// each becomes a record with the right fields, a PDF with the right page
// count, served by the inbox API, announced on the events stream and by
// a signed webhook.
func TestReceiveRealFaxes(t *testing.T) {
	e := startLab(t, "rxlab", 43060)
	r := e.open(t)
	ev := r.watchEvents(t)
	send := func(t *testing.T, o lab.SendOptions) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		o.File = e.doc
		if _, err := e.l.Send(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("group", func(t *testing.T) {
		t.Run("t38", func(t *testing.T) {
			t.Parallel()
			send(t, lab.SendOptions{To: "501", CallerID: "0301110001", StationID: "LAB T38"})
			f := r.waitFax(t, "501", time.Minute)
			if f.Status != inbox.Received || f.Pages != 3 || f.Transport != inbox.T38 || f.CallerID != "0301110001" ||
				f.RemoteStationID != "LAB T38" || f.BitRate == 0 || f.DurationSeconds <= 0 || !f.PDF || !f.TIFF || f.Error != nil ||
				f.Resolution != "204x98" || f.Recovered {
				t.Errorf("T.38 fax: %+v", f)
			}
			r.checkPDF(t, f, 3)
			if p := e.signedHook(t, f.ID); p.Event != "fax.received" || p.Data.Pages != 3 || p.Data.DID != "501" {
				t.Errorf("webhook: %+v", p)
			}
		})
		t.Run("g711", func(t *testing.T) {
			t.Parallel()
			send(t, lab.SendOptions{To: "502", G711: true, CallerID: "0301110002"})
			f := r.waitFax(t, "502", time.Minute)
			if f.Status != inbox.Received || f.Pages != 3 || f.Transport != inbox.G711 || f.CallerID != "0301110002" || !f.PDF {
				t.Errorf("G.711 fax: %+v", f)
			}
			r.checkPDF(t, f, 3)
			e.signedHook(t, f.ID)
		})
		t.Run("partial", func(t *testing.T) {
			t.Parallel()
			send(t, lab.SendOptions{To: "503", HangupAfter: 1})
			f := r.waitFax(t, "503", time.Minute)
			if f.Status != inbox.Partial || f.Pages != 1 || f.Error == nil || f.Error.Code != failure.FaxRemoteHangup || !f.PDF {
				t.Errorf("partial fax: %+v %+v", f, f.Error)
			}
			r.checkPDF(t, f, 1)
			e.signedHook(t, f.ID)
		})
	})
	var l struct{ Items []*inbox.Fax }
	r.c.Do(t, "GET", "/v1/inbox", nil, "", &l)
	if len(l.Items) != 3 {
		t.Fatalf("inbox: %d faxes, want 3", len(l.Items))
	}
	for _, f := range l.Items {
		if !ev.has("fax.received", string(f.ID)) {
			t.Errorf("no fax.received event for %s", f.ID)
		}
	}
	// A number outside inbox.dids is refused unanswered: no record.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.l.Send(ctx, lab.SendOptions{To: "700", File: e.doc}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if r.c.Do(t, "GET", "/v1/inbox", nil, "", &l); len(l.Items) != 3 {
		t.Errorf("a call to 700 was recorded: %d faxes", len(l.Items))
	}
	e.noneKept(t)
}

// noneKept waits until the box's AstDB keeps no reception result: faxbox
// has forgotten every reception it recorded (through its faxbox-forget
// context).
func (e *rxEnv) noneKept(t *testing.T) {
	t.Helper()
	var out string
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		var err error
		if out, err = e.l.Box.CLI("database show faxbox-rx"); err != nil {
			t.Fatalf("database show: %v", err)
		}
		if !strings.Contains(out, "/faxbox-rx/") {
			return
		}
	}
	t.Errorf("AstDB still keeps results of recorded receptions:\n%s", out)
}

// faxboxProc is faxbox running as its own process (cmd/faxbox serve).
type faxboxProc struct {
	bin, conf, addr string
	cmd             *exec.Cmd
	c               *testkit.Client
}

// buildFaxbox builds cmd/faxbox and writes e's configuration for it.
func (e *rxEnv) buildFaxbox(t *testing.T) *faxboxProc {
	t.Helper()
	testkit.Require(t, "go")
	dir := t.TempDir()
	p := &faxboxProc{bin: filepath.Join(dir, "faxbox"), conf: filepath.Join(dir, "faxbox.json")}
	if out, err := exec.Command("go", "build", "-o", p.bin, "github.com/faxbox/faxbox/cmd/faxbox").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	p.addr = ln.Addr().String()
	ln.Close()
	cfg := e.cfg
	cfg.Listen = p.addr
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p.conf, b, 0o600)
	p.c = &testkit.Client{Base: "http://" + p.addr, Token: token}
	t.Cleanup(func() { p.kill() })
	return p
}

// start runs faxbox and waits until it answers.
func (p *faxboxProc) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.bin, "serve", "-config", p.conf)
	p.cmd.Stdout, p.cmd.Stderr = testWriter{t}, testWriter{t}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get(p.c.Base + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("faxbox did not come up")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill sends SIGKILL: nothing of faxbox's memory survives.
func (p *faxboxProc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
	}
}

// waitFax polls the inbox until a fax with did is there.
func (p *faxboxProc) waitFax(t *testing.T, did string, d time.Duration) *inbox.Fax {
	t.Helper()
	return (&running{c: p.c}).waitFax(t, did, d)
}

// sendAndKill starts sending the 3-page document to did, waits until
// page 1 arrives in the box's receive directory and kills faxbox (kill
// -9). It returns a channel that reports the end of the call.
func (e *rxEnv) sendAndKill(t *testing.T, p *faxboxProc, did string) <-chan error {
	t.Helper()
	sent := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, err := e.l.Send(ctx, lab.SendOptions{To: did, File: e.doc})
		sent <- err
	}()
	rxDir := e.cfg.Asterisk.ReceiveDir
	for deadline := time.Now().Add(time.Minute); ; {
		if m, _ := filepath.Glob(filepath.Join(rxDir, "rx-*.tif")); len(m) > 0 {
			break // page 1 is arriving
		}
		if time.Now().After(deadline) {
			t.Fatal("the reception never started")
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.kill()
	return sent
}

// TestReceptionSurvivesKill: faxbox is killed (kill -9) while a fax is
// being received. Started again while the call goes on, it records the
// fax from the call's own event; started only after the call ended, it
// records it from what Asterisk left (the TIFF and the result kept in
// AstDB). Either way the fax is whole and announced, and a further start
// records nothing twice.
func TestReceptionSurvivesKill(t *testing.T) {
	e := startLab(t, "rxkill", 45060)
	p := e.buildFaxbox(t)
	rxDir := e.cfg.Asterisk.ReceiveDir

	p.start(t)
	sent := e.sendAndKill(t, p, "505")
	p.start(t) // during the call
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	f := p.waitFax(t, "505", time.Minute)
	if f.Status != inbox.Received || f.Pages != 3 || f.Recovered || !f.PDF || f.Transport != inbox.T38 {
		t.Errorf("fax received across a restart: %+v", f)
	}
	(&running{c: p.c}).checkPDF(t, f, 3)
	e.signedHook(t, f.ID)

	sent = e.sendAndKill(t, p, "506")
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(rxDir, "rx-*.tif")); len(m) != 1 {
		t.Fatalf("the receive directory holds %v", m)
	}
	p.start(t) // after the call
	f = p.waitFax(t, "506", time.Minute)
	if f.Status != inbox.Received || f.Pages != 3 || !f.Recovered || !f.PDF || f.Transport != inbox.T38 || f.CallerID == "" {
		t.Errorf("fax recovered after a restart: %+v", f)
	}
	(&running{c: p.c}).checkPDF(t, f, 3)
	e.signedHook(t, f.ID)
	if m, _ := filepath.Glob(filepath.Join(rxDir, "rx-*.tif")); len(m) != 0 {
		t.Errorf("the recorded TIFF is still in the receive directory: %v", m)
	}

	// Another start records nothing twice.
	p.kill()
	p.start(t)
	time.Sleep(3 * time.Second)
	var l struct{ Items []*inbox.Fax }
	p.c.Do(t, "GET", "/v1/inbox", nil, "", &l)
	if len(l.Items) != 2 {
		t.Errorf("after a third start: %d faxes, want 2", len(l.Items))
	}
	e.noneKept(t)
	p.kill()
	if err := store.CheckDir(e.cfg.DataDir); err != nil {
		t.Error(err)
	}
}
