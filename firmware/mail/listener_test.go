package mail

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/faxbox/faxbox/firmware/config"
)

// fakeSubmit records submissions; numbers starting 0900 are refused as the
// destination rules would.
type fakeSubmit struct {
	mu   sync.Mutex
	subs []Submission
}

func (f *fakeSubmit) CheckNumber(to string) error {
	if strings.HasPrefix(to, "0900") {
		return &SubmitError{Code: "rejected_destination", Message: "premium rate"}
	}
	if len(to) < 3 {
		return &SubmitError{Code: "invalid_number", Message: "too short"}
	}
	return nil
}

func (f *fakeSubmit) SubmitFax(s Submission) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, s)
	return fmt.Sprintf("fax_%d", len(f.subs)), nil
}

func (f *fakeSubmit) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

const testToken = "secret-token-1"

func startListener(t *testing.T, mod func(*config.SMTPListen)) (string, *fakeSubmit) {
	t.Helper()
	lc := config.Default().SMTPListen
	lc.Addr = "127.0.0.1:0"
	lc.MaxRecipients = 3
	lc.MaxMessageBytes = 64 << 10
	if mod != nil {
		mod(&lc)
	}
	tlsCfg, err := ListenerTLS(lc, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeSubmit{}
	l, err := NewListener(ListenerConfig{SMTPListen: lc, Tokens: []string{testToken}, TLS: tlsCfg, Submit: fs})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve(ln)
	t.Cleanup(func() { l.Close() })
	return ln.Addr().String(), fs
}

func dial(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// send runs one transaction and returns the first error with its command.
func send(c *smtp.Client, from string, to []string, body string) (string, error) {
	if err := c.Mail(from, nil); err != nil {
		return "MAIL", err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return "RCPT " + r, err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "DATA", err
	}
	if _, err := w.Write(crlf(body)); err != nil {
		return "DATA write", err
	}
	if err := w.Close(); err != nil {
		return "end of DATA", err
	}
	return "", nil
}

func pdfMail(extra string) string {
	return mixed("Content-Type: text/plain\n\nPlease fax this."+extra,
		"Content-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\n\n"+pdfBytes)
}

func TestListenerQueuesOneJobPerNumber(t *testing.T) {
	addr, fs := startListener(t, nil)
	c := dial(t, addr)
	if cmd, err := send(c, "alice@example.com", []string{"123456@fax.local", "654321@FAX.local"}, pdfMail("")); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if fs.count() != 2 {
		t.Fatalf("%d jobs, want 2", fs.count())
	}
	s := fs.subs[0]
	if s.To != "123456" || fs.subs[1].To != "654321" || s.NotifyEmail != "alice@example.com" || !strings.HasPrefix(s.ClientRef, mailRefPrefix) {
		t.Fatalf("submission %+v", s)
	}
	if len(s.Docs) != 1 || s.Docs[0].Name != "a.pdf" || string(s.Docs[0].Data) != string(crlf(pdfBytes)) {
		t.Fatalf("documents %+v: want only the PDF (body_page off)", s.Docs)
	}
	if fs.subs[0].ClientRef == fs.subs[1].ClientRef {
		t.Fatal("two numbers share a client_ref")
	}
}

func TestListenerBodyPage(t *testing.T) {
	addr, fs := startListener(t, func(l *config.SMTPListen) { l.BodyPage = true })
	if cmd, err := send(dial(t, addr), "alice@example.com", []string{"123456@fax.local"}, pdfMail("")); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	d := fs.subs[0].Docs
	if len(d) != 2 || d[0].Name != "message.txt" || !strings.Contains(string(d[0].Data), "Please fax this.") || d[1].Name != "a.pdf" {
		t.Fatalf("documents %+v: want the body first, then the PDF", d)
	}
}

func TestListenerRefusals(t *testing.T) {
	addr, fs := startListener(t, nil)
	big := pdfMail(strings.Repeat(strings.Repeat("x", 76)+"\n", 1000))
	cases := []struct {
		name     string
		to       []string
		body     string
		cmd      string
		code     int
		enhanced smtp.EnhancedCode
	}{
		{"non-digit local part", []string{"bob@fax.local"}, pdfMail(""), "RCPT bob@fax.local", 550, smtp.EnhancedCode{5, 1, 1}},
		{"other domain (relay)", []string{"123456@example.org"}, pdfMail(""), "RCPT 123456@example.org", 550, smtp.EnhancedCode{5, 7, 1}},
		{"destination rules", []string{"09001234@fax.local"}, pdfMail(""), "RCPT 09001234@fax.local", 550, smtp.EnhancedCode{5, 7, 1}},
		{"oversized", []string{"123456@fax.local"}, big, "end of DATA", 552, smtp.EnhancedCode{5, 3, 4}},
		{"malformed MIME", []string{"123456@fax.local"}, "From: a@b.c\nContent-Type: multipart/mixed\n\nx\n", "end of DATA", 554, smtp.EnhancedCode{5, 6, 0}},
		{"header injection", []string{"123456@fax.local"}, "From: a@b.c\nSubject: a\nSubject: b\n\nx\n", "end of DATA", 554, smtp.EnhancedCode{5, 6, 0}},
		{"nothing to fax", []string{"123456@fax.local"}, "From: a@b.c\nSubject: a\n\n \n", "end of DATA", 554, smtp.EnhancedCode{5, 6, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd, err := send(dial(t, addr), "alice@example.com", c.to, c.body)
			se, _ := err.(*smtp.SMTPError)
			if cmd != c.cmd || se == nil || se.Code != c.code || se.EnhancedCode != c.enhanced {
				t.Fatalf("%s: %v; want %s refused with %d %v", cmd, err, c.cmd, c.code, c.enhanced)
			}
		})
	}
	if fs.count() != 0 {
		t.Fatalf("%d jobs queued by refused mail", fs.count())
	}
}

func TestListenerTooManyRecipients(t *testing.T) {
	addr, fs := startListener(t, nil)
	c := dial(t, addr)
	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	var refused int
	for i := 0; i < 20; i++ {
		err := c.Rcpt(fmt.Sprintf("1000%02d@fax.local", i), nil)
		if se, ok := err.(*smtp.SMTPError); ok && se.Code == 452 {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused != 17 {
		t.Fatalf("%d recipients refused with 452, want 17", refused)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(crlf(pdfMail("")))
	err = w.Close()
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 554 {
		t.Fatalf("DATA after too many recipients: %v, want 554", err)
	}
	if fs.count() != 0 {
		t.Fatalf("%d jobs queued", fs.count())
	}
}

func TestListenerSenders(t *testing.T) {
	addr, fs := startListener(t, func(l *config.SMTPListen) { l.AllowIPs = nil })
	// Loopback is not an allowed network here: a sender must authenticate.
	_, err := send(dial(t, addr), "alice@example.com", []string{"123456@fax.local"}, pdfMail(""))
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 530 {
		t.Fatalf("unknown sender: %v, want 530", err)
	}
	c := dial(t, addr)
	if err := c.Auth(sasl.NewPlainClient("", "alice", "wrong-token")); err == nil || err.(*smtp.SMTPError).Code != 535 {
		t.Fatalf("wrong token: %v, want 535", err)
	}
	c = dial(t, addr)
	if err := c.Auth(sasl.NewPlainClient("", "alice", testToken)); err != nil {
		t.Fatalf("token on loopback: %v", err)
	}
	if cmd, err := send(c, "alice@example.com", []string{"123456@fax.local"}, pdfMail("")); err != nil {
		t.Fatalf("authenticated: %s: %v", cmd, err)
	}
	// Over STARTTLS.
	tc, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.Auth(sasl.NewPlainClient("", "alice", testToken)); err != nil {
		t.Fatalf("token after STARTTLS: %v", err)
	}
	if fs.count() != 1 {
		t.Fatalf("%d jobs, want 1", fs.count())
	}
	// From another network without TLS, AUTH is neither offered nor taken.
	s := &session{l: &Listener{cfg: ListenerConfig{Tokens: []string{testToken}}}, ip: net.ParseIP("192.0.2.7")}
	if m := s.AuthMechanisms(); len(m) != 0 {
		t.Fatalf("AUTH offered in the clear to a LAN host: %v", m)
	}
	if _, err := s.Auth(sasl.Plain); err == nil || err.(*smtp.SMTPError).Code != 538 {
		t.Fatalf("AUTH in the clear from a LAN host: %v, want 538", err)
	}
	s.tls = true
	if m := s.AuthMechanisms(); len(m) != 1 {
		t.Fatalf("AUTH not offered after STARTTLS: %v", m)
	}
}

func TestReplyForTemporary(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
	}{
		{&SubmitError{Code: "disk_full", Temporary: true}, 452},
		{&SubmitError{Code: "storage_error", Temporary: true}, 451},
		{&SubmitError{Code: "invalid_number"}, 553},
		{&SubmitError{Code: "unsupported_document"}, 554},
		{&SubmitError{Code: "too_large"}, 552},
		{fmt.Errorf("boom"), 451},
	} {
		if got := replyFor(c.err).(*smtp.SMTPError).Code; got != c.code {
			t.Errorf("%v: %d, want %d", c.err, got, c.code)
		}
	}
}
