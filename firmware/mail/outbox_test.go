package mail

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
)

// relayStub is an in-process SMTP server standing in for the office relay
// in the fast tests (the lab test submits to a real postfix): it requires
// AUTH PLAIN after STARTTLS, fails the first tempFails transactions with
// 451, and refuses recipients starting with "refused" with 550.
type relayStub struct {
	mu        sync.Mutex
	tempFails int
	got       [][]byte
	rcpts     [][]string
}

type stubSession struct {
	r      *relayStub
	authed bool
	rcpts  []string
}

func (r *relayStub) NewSession(c *smtp.Conn) (smtp.Session, error) { return &stubSession{r: r}, nil }
func (s *stubSession) AuthMechanisms() []string                    { return []string{sasl.Plain} }
func (s *stubSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, u, p string) error {
		if u != "box" || p != "pw" {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}
func (s *stubSession) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *stubSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "refused") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *stubSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.tempFails > 0 {
		s.r.tempFails--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	}
	s.r.got = append(s.r.got, b)
	s.r.rcpts = append(s.r.rcpts, s.rcpts)
	return nil
}
func (s *stubSession) Reset()        { s.rcpts = nil }
func (s *stubSession) Logout() error { return nil }

func (r *relayStub) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// startRelay serves a relayStub with STARTTLS; it returns its port and the
// path of its certificate (for smtp.ca_file).
func startRelay(t *testing.T, r *relayStub, withTLS bool) (int, string) {
	t.Helper()
	dir := t.TempDir()
	srv := smtp.NewServer(r)
	srv.Domain = "127.0.0.1"
	srv.ErrorLog = nopLog{}
	if withTLS {
		cfg, err := ListenerTLS(config.SMTPListen{Domain: "127.0.0.1"}, dir)
		if err != nil {
			t.Fatal(err)
		}
		srv.TLSConfig = cfg
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, filepath.Join(dir, "smtp-tls.crt")
}

type nopLog struct{}

func (nopLog) Printf(string, ...any) {}
func (nopLog) Println(...any)        {}

func smtpConfig(port int, ca string) config.SMTP {
	c := config.Default().SMTP
	c.Host, c.Port, c.CAFile = "127.0.0.1", port, ca
	c.Username, c.Password, c.From = "box", "pw", "faxbox@box.test"
	c.FirstRetry, c.MaxBackoff = job.Duration(50*time.Millisecond), job.Duration(200*time.Millisecond)
	c.Timeout = job.Duration(5 * time.Second)
	return c
}

func openOutbox(t *testing.T, c config.SMTP, dir string) *Outbox {
	t.Helper()
	o, err := OpenOutbox(OutboxConfig{SMTP: c, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	o.Start()
	t.Cleanup(func() { o.Close() })
	return o
}

func waitState(t *testing.T, o *Outbox, id string, want State) *Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := o.Get(id)
		if err == nil && r.State == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("mail %s: %+v (%v), want %s", id, r, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOutboxSendsOverSTARTTLSWithAuth(t *testing.T) {
	stub := &relayStub{tempFails: 2}
	port, ca := startRelay(t, stub, true)
	dir := t.TempDir()
	o := openOutbox(t, smtpConfig(port, ca), dir)
	att := filepath.Join(t.TempDir(), "doc.pdf")
	payload := append([]byte(pdfBytes), 0, 1, 2, 0xff, '\r', '\n', '.', '\r', '\n')
	if err := os.WriteFile(att, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := o.Enqueue(Message{To: []string{"a@example.test"}, Subject: "Fax from 0301234 (2 pages)", Text: "see attached\n.\nend",
		Attachments: []Attachment{{Name: "fax.pdf", ContentType: "application/pdf", Path: att}}, Ref: "rx_1"})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(att) // the outbox has its own copy
	r := waitState(t, o, id, Sent)
	if r.Attempts != 3 {
		t.Fatalf("%d tries, want 3 (two 451s first)", r.Attempts)
	}
	e, err := message.Read(bytes.NewReader(stub.got[0]))
	if err != nil {
		t.Fatal(err)
	}
	if s := e.Header.Get("Subject"); s != "Fax from 0301234 (2 pages)" {
		t.Fatalf("subject %q", s)
	}
	var pdf []byte
	e.Walk(func(_ []int, p *message.Entity, _ error) error {
		if mt, _, _ := p.Header.ContentType(); mt == "application/pdf" {
			pdf, _ = io.ReadAll(p.Body)
		}
		return nil
	})
	if !bytes.Equal(pdf, payload) {
		t.Fatalf("attachment changed on the way: %q", pdf)
	}
	if _, err := os.Stat(filepath.Join(dir, "mail", id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("attachment copy left after sending: %v", err)
	}
	if st := o.Status(); st.Sent != 1 || st.Pending != 0 || st.Failures != 2 {
		t.Fatalf("status %+v", st)
	}
	// The same id again is not sent again.
	if _, err := o.EnqueueID(id, Message{To: []string{"a@example.test"}, Subject: "again"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if stub.count() != 1 {
		t.Fatalf("%d mails at the relay, want 1", stub.count())
	}
}

func TestOutboxRefusedForGood(t *testing.T) {
	stub := &relayStub{}
	port, ca := startRelay(t, stub, true)
	dir := t.TempDir()
	o := openOutbox(t, smtpConfig(port, ca), dir)
	id, err := o.Enqueue(Message{To: []string{"refused@example.test"}, Subject: "s", Text: "t", Ref: "fax_9"})
	if err != nil {
		t.Fatal(err)
	}
	r := waitState(t, o, id, Refused)
	if r.Attempts != 1 || !strings.Contains(r.LastError, "550") {
		t.Fatalf("record %+v: want refused at the first try with the 550", r)
	}
	st := o.Status()
	if st.Refused != 1 || st.LastRefused == nil || st.LastRefused.Ref != "fax_9" {
		t.Fatalf("status %+v", st)
	}
	// One of two recipients refused: sent to the other, the refusal kept.
	id2, _ := o.Enqueue(Message{To: []string{"refused@example.test", "b@example.test"}, Subject: "s", Text: "t"})
	r = waitState(t, o, id2, Sent)
	if r.RefusedRecipients["refused@example.test"] == "" || len(stub.rcpts[0]) != 1 {
		t.Fatalf("record %+v, relay saw %v", r, stub.rcpts)
	}
	o.Close()
	o2 := openOutbox(t, smtpConfig(port, ca), dir)
	if st := o2.Status(); st.Refused != 1 || st.LastRefused == nil || st.LastRefused.ID != id {
		t.Fatalf("after reopening: %+v", st)
	}
}

func TestOutboxDurableAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	// A relay that is not there: the message waits.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	o := openOutbox(t, smtpConfig(deadPort, ""), dir)
	id, err := o.Enqueue(Message{To: []string{"a@example.test"}, Subject: "s", Text: "t"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if st := o.Status(); st.Pending != 1 || st.LastError == "" {
		t.Fatalf("status with the relay down: %+v", st)
	}
	o.Close()
	stub := &relayStub{}
	port, ca := startRelay(t, stub, true)
	o2 := openOutbox(t, smtpConfig(port, ca), dir)
	waitState(t, o2, id, Sent)
	if stub.count() != 1 {
		t.Fatalf("%d mails at the relay", stub.count())
	}
}

func TestOutboxStartTLSRequired(t *testing.T) {
	stub := &relayStub{}
	port, _ := startRelay(t, stub, false)
	c := smtpConfig(port, "")
	c.Username, c.Password = "", ""
	o := openOutbox(t, c, t.TempDir())
	id, _ := o.Enqueue(Message{To: []string{"a@example.test"}, Subject: "s", Text: "t"})
	time.Sleep(200 * time.Millisecond)
	r, _ := o.Get(id)
	if r.State != Queued || !strings.Contains(r.LastError, "STARTTLS") || stub.count() != 0 {
		t.Fatalf("record %+v: a relay without STARTTLS must not get the mail when starttls is required", r)
	}
}

func TestEnqueueValidates(t *testing.T) {
	o := openOutbox(t, smtpConfig(1, ""), t.TempDir())
	for _, m := range []Message{
		{},
		{To: []string{"a@b.c\r\nRCPT TO:<x@y.z>"}},
		{To: []string{"a@b.c"}, Subject: "x\r\nBcc: y@z.q"},
		{To: []string{"a@b.c"}, Attachments: []Attachment{{Name: "a.pdf", ContentType: "application/pdf", Path: "/nonexistent"}}},
		{To: []string{"a@b.c"}, Attachments: []Attachment{{Name: "a\r\n.pdf", ContentType: "application/pdf", Path: "/etc/hostname"}}},
	} {
		if _, err := o.Enqueue(m); err == nil {
			t.Errorf("%+v accepted", m)
		}
	}
	none, err := OpenOutbox(OutboxConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	if _, err := none.Enqueue(Message{To: []string{"a@b.c"}}); !errors.Is(err, ErrNoRelay) {
		t.Fatalf("without a relay: %v", err)
	}
}

func TestComposeHeaders(t *testing.T) {
	var b bytes.Buffer
	m := &Message{To: []string{"a@example.test"}, Subject: "Fax to 123 délivré", Text: "line1\nline2"}
	if err := compose(&b, m, "faxbox@box.test", "ml_1", time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	e, err := message.Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"Message-Id": "<ml_1@box.test>", "Auto-Submitted": "auto-generated", "To": "<a@example.test>"} {
		if got := e.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(strconv.Quote(e.Header.Get("Subject")), "=?utf-8?") {
		t.Errorf("subject not encoded: %q", e.Header.Get("Subject"))
	}
}
