//go:build lab

package xmpp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/stanza"
)

const (
	domain   = "localhost"
	mucHost  = "conference.localhost"
	room     = "office@" + mucHost
	password = "s3cret-pw"
)

// prosody is a private Prosody server: its own config, data, certificate,
// log and pid file in a temporary directory, c2s on a free port of
// 127.0.0.1, a multi-user chat component, no s2s.
type prosody struct {
	t    *testing.T
	dir  string
	cfg  string
	port int
	ca   string // the server's self-signed certificate, PEM
	cmd  *exec.Cmd
	done chan struct{}
}

func startProsody(t *testing.T, users ...string) *prosody {
	t.Helper()
	testkit.Require(t, "prosody", "prosodyctl")
	p := &prosody{t: t, dir: t.TempDir(), port: freePort(t)}
	p.ca = filepath.Join(p.dir, "localhost.crt")
	writeCert(t, p.ca, filepath.Join(p.dir, "localhost.key"))
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	p.cfg = filepath.Join(p.dir, "prosody.cfg.lua")
	conf := fmt.Sprintf(`-- faxbox xmpp lab test
prosody_user = %[3]q
run_as_root = true
pidfile = "%[1]s/prosody.pid"
data_path = "%[1]s/data"
certificates = "%[1]s"
interfaces = { "127.0.0.1" }
c2s_ports = { %[2]d }
c2s_direct_tls_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "offline"; "posix" }
modules_disabled = { "s2s" }
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
ssl = { certificate = "%[1]s/localhost.crt"; key = "%[1]s/localhost.key" }
log = { { levels = { min = "debug" }, to = "file", filename = "%[1]s/prosody.log" } }
VirtualHost "localhost"
Component "conference.localhost" "muc"
	muc_room_locking = false
	muc_room_default_history_length = 50
`, p.dir, p.port, me.Username)
	if err := os.MkdirAll(filepath.Join(p.dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		out, err := exec.Command("prosodyctl", "--config", p.cfg, "register", u, domain, password).CombinedOutput()
		if err != nil {
			t.Fatalf("prosodyctl register %s: %v\n%s", u, err, out)
		}
	}
	p.start()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(p.dir, "prosody.log"))
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("prosody.log (tail):\n%s", b)
		}
	})
	return p
}

// start runs prosody in the foreground (its own process group) and waits
// until it accepts connections.
func (p *prosody) start() {
	p.t.Helper()
	cmd := exec.Command("prosody", "-F", "--config", p.cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start prosody: %v", err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(p.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.done:
			p.t.Fatalf("prosody exited at start: %v", cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("prosody does not listen on %s: %v", p.addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends prosody (SIGTERM to its process group, SIGKILL after 10 s).
func (p *prosody) stop() {
	if p.cmd == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.cmd = nil
}

func (p *prosody) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeCert makes a self-signed certificate for the server's domains.
func writeCert(t *testing.T, certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: domain},
		DNSNames: []string{domain, mucHost}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// received is a message the reader got.
type received struct {
	From, Body string
	Type       stanza.MessageType
}

// reader is a second XMPP client (mellium) logged in as a test account,
// joined to the room, keeping every message with a body.
type reader struct {
	t  *testing.T
	p  *prosody
	me jid.JID

	mu   sync.Mutex
	msgs []received
	s    *xmpp.Session
}

func newReader(t *testing.T, p *prosody, local string) *reader {
	r := &reader{t: t, p: p, me: jid.MustParse(local + "@" + domain)}
	r.connect()
	t.Cleanup(r.close)
	return r
}

// connect logs in, sends presence (offline messages come then) and joins
// the room (its history comes then).
func (r *reader) connect() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(r.p.ca)
	if err != nil || !pool.AppendCertsFromPEM(b) {
		r.t.Fatalf("reader: CA %s: %v", r.p.ca, err)
	}
	conn, err := net.DialTimeout("tcp", r.p.addr(), 5*time.Second)
	if err != nil {
		r.t.Fatalf("reader: %v", err)
	}
	s, err := xmpp.NewClientSession(ctx, r.me, conn, xmpp.StartTLS(&tls.Config{ServerName: domain, RootCAs: pool}),
		xmpp.SASL("", password, sasl.ScramSha1, sasl.Plain), xmpp.BindResource())
	if err != nil {
		r.t.Fatalf("reader: log in: %v", err)
	}
	occupant := jid.MustParse(room + "/reader")
	in := make(chan struct{}, 1)
	go s.Serve(xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local == "presence" {
			if p, err := stanza.NewPresence(*start); err == nil && p.Type == "" && p.From.Equal(occupant) {
				select {
				case in <- struct{}{}:
				default:
				}
			}
			return nil
		}
		if start.Name.Local != "message" {
			return nil
		}
		var msg struct {
			stanza.Message
			Body string `xml:"body"`
		}
		// The decoder ends with an error on the stanza's end element,
		// which the handler's reader has already taken; the body is read.
		xml.NewTokenDecoder(t).DecodeElement(&msg, start)
		if msg.Body == "" {
			return nil
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, received{From: msg.From.String(), Body: msg.Body, Type: msg.Type})
		r.mu.Unlock()
		return nil
	}))
	if err := s.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		r.t.Fatalf("reader: presence: %v", err)
	}
	// Join the room (XEP-0045; its history comes then).
	x := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: muc.NS, Local: "x"}})
	if err := s.Send(ctx, stanza.Presence{To: occupant}.Wrap(x)); err != nil {
		r.t.Fatalf("reader: join %s: %v", room, err)
	}
	select {
	case <-in:
	case <-ctx.Done():
		r.t.Fatalf("reader: join %s: no answer", room)
	}
	r.mu.Lock()
	r.s = s
	r.mu.Unlock()
}

func (r *reader) close() {
	r.mu.Lock()
	s := r.s
	r.s = nil
	r.mu.Unlock()
	if s != nil {
		s.Close()
		s.Conn().Close()
	}
}

// await waits until the reader holds a message of typ containing every
// one of parts, and returns how many such messages it holds.
func (r *reader) await(typ stanza.MessageType, from string, parts ...string) int {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := 0
		r.mu.Lock()
		for _, m := range r.msgs {
			ok := m.Type == typ && strings.HasPrefix(m.From, from)
			for _, p := range parts {
				ok = ok && strings.Contains(m.Body, p)
			}
			if ok {
				n++
			}
		}
		got := append([]received(nil), r.msgs...)
		r.mu.Unlock()
		if n > 0 {
			return n
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %s message from %s with %q; got %+v", typ, from, parts, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sendFax submits a one-page fax to number with notify_xmpp and client_ref
// ref, and waits for
// it to end with status want.
func sendFax(t *testing.T, env *testbox.Env, pdf []byte, number, notify, ref string, want job.Status) job.Job {
	t.Helper()
	body, ctype := testkit.Multipart(testkit.Field("to", number), testkit.Field("notify_xmpp", notify), testkit.Field("client_ref", ref),
		testkit.Field("max_attempts", "2"), testkit.Field("retry_interval", "1s"), testkit.File("file", "a.pdf", pdf))
	var j job.Job
	if resp := env.C.Do(t, "POST", "/v1/faxes", body, ctype, &j); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/faxes to %s: %d", number, resp.StatusCode)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !j.Status.Terminal() {
		if time.Now().After(deadline) {
			t.Fatalf("fax %s to %s still %s", j.ID, number, j.Status)
		}
		time.Sleep(100 * time.Millisecond)
		env.C.Do(t, "GET", "/v1/faxes/"+j.ID, nil, "", &j)
	}
	if j.Status != want {
		t.Fatalf("fax %s to %s: %s, want %s (%+v)", j.ID, number, j.Status, want, j.Error)
	}
	return j
}

type xmppStatus struct {
	Extra struct {
		XMPP struct {
			Connected bool   `json:"connected"`
			Queued    int    `json:"queued"`
			Sent      int    `json:"sent_total"`
			LastError string `json:"last_error"`
		} `json:"xmpp"`
	} `json:"extra"`
}

func status(t *testing.T, env *testbox.Env) xmppStatus {
	t.Helper()
	var s xmppStatus
	if resp := env.C.Do(t, "GET", "/v1/status", nil, "", &s); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/status: %d", resp.StatusCode)
	}
	return s
}

func awaitStatus(t *testing.T, env *testbox.Env, what string, ok func(xmppStatus) bool) xmppStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := status(t, env)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("/v1/status never showed %s: %+v", what, s.Extra.XMPP)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLabProsody: fax and call results on the test line reach a test
// account and a room on a real Prosody server, through faxbox's own
// account; a restart of
// the server while a result is due loses none; hostile notify_xmpp values
// are refused.
func TestLabProsody(t *testing.T) {
	p := startProsody(t, "faxbox", "reader")
	rd := newReader(t, p, "reader")
	env := testbox.Start(t, func(c *config.Config) {
		c.XMPP.JID, c.XMPP.Password, c.XMPP.Server, c.XMPP.CAFile = "faxbox@"+domain, password, p.addr(), p.ca
		c.XMPP.Rooms = []string{room}
		c.XMPP.FirstRetry, c.XMPP.MaxBackoff, c.XMPP.Timeout = job.Duration(200*time.Millisecond), job.Duration(2*time.Second), job.Duration(10*time.Second)
	})
	pdf := testkit.PDF(t, 1)
	awaitStatus(t, env, "connected", func(s xmppStatus) bool { return s.Extra.XMPP.Connected })

	for _, bad := range []string{"reader@localhost\r\n<presence type='unavailable'/>", "reader@localhost/phone", "<b>x</b>@localhost", "localhost"} {
		body, ctype := testkit.Multipart(testkit.Field("to", "99990001"), testkit.Field("notify_xmpp", bad), testkit.File("file", "a.pdf", pdf))
		if resp := env.C.Do(t, "POST", "/v1/faxes", body, ctype, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("notify_xmpp %q: HTTP %d, want 400", bad, resp.StatusCode)
		}
	}

	// A client_ref with markup arrives as text (the XML is escaped).
	markup := "<message><body>x</body></message>&amp;"
	ok := sendFax(t, env, pdf, "99990001", "Reader@LOCALHOST", markup, job.Delivered)
	bad := sendFax(t, env, pdf, "99990002", "reader@localhost", "r2", job.Failed)
	self := "faxbox@" + domain + "/"
	rd.await(stanza.ChatMessage, self, "Fax to 99990001 delivered, 1 page", ok.ID+", ref "+markup)
	rd.await(stanza.ChatMessage, self, "Fax to 99990002 failed: the line was busy on all 2 attempts", bad.ID)
	rd.await(stanza.GroupChatMessage, room+"/faxbox", "Fax to 99990001 delivered", ok.ID)
	rd.await(stanza.GroupChatMessage, room+"/faxbox", "Fax to 99990002 failed", bad.ID)
	// A message call's outcome goes the same way.
	var call job.Job
	req := `{"kind":"message","to":"99990001","say":"the fax machine is out of paper","notify_xmpp":"reader@localhost"}`
	if resp := env.C.Do(t, "POST", "/v1/calls", strings.NewReader(req), "application/json", &call); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/calls: %d", resp.StatusCode)
	}
	rd.await(stanza.ChatMessage, self, "Call to 99990001 ", call.ID)
	rd.await(stanza.GroupChatMessage, room+"/faxbox", "Call to 99990001 ", call.ID)
	awaitStatus(t, env, "6 sent, none queued", func(s xmppStatus) bool { return s.Extra.XMPP.Sent == 6 && s.Extra.XMPP.Queued == 0 })

	// The server goes down; a fax ends meanwhile: its messages wait.
	p.stop()
	rd.close()
	awaitStatus(t, env, "disconnected", func(s xmppStatus) bool { return !s.Extra.XMPP.Connected && s.Extra.XMPP.LastError != "" })
	late := sendFax(t, env, pdf, "99990001", "reader@localhost", "r3", job.Delivered)
	time.Sleep(time.Second)
	if s := status(t, env); s.Extra.XMPP.Queued != 2 || s.Extra.XMPP.Connected {
		t.Fatalf("with the server down: %+v, want 2 queued, not connected", s.Extra.XMPP)
	}
	p.start()
	rd.connect()
	n := rd.await(stanza.ChatMessage, self, "Fax to 99990001 delivered", late.ID)
	m := rd.await(stanza.GroupChatMessage, room+"/faxbox", "Fax to 99990001 delivered", late.ID)
	if n != 1 || m != 1 {
		t.Errorf("after the restart: %d chat and %d room messages of %s, want 1 each", n, m, late.ID)
	}
	awaitStatus(t, env, "connected, 8 sent, none queued", func(s xmppStatus) bool {
		return s.Extra.XMPP.Connected && s.Extra.XMPP.Sent == 8 && s.Extra.XMPP.Queued == 0
	})
}
