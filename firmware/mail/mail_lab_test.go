//go:build lab

package mail_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/api"
	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/destctl"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/mail"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/postfix"
)

const token = "lab-token-mail-1"

type labBox struct {
	b    *box.Box
	c    *testkit.Client
	smtp string
}

// startBox runs a box whose relay is p, with an SMTP listener on loopback.
func startBox(t *testing.T, p *postfix.Server, mod func(*config.Config)) *labBox {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf")
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Tokens = []string{token}
	cfg.TestLine.PageTime = job.Duration(50 * time.Millisecond)
	p.Configure(&cfg.SMTP)
	cfg.SMTPListen.MaxMessageBytes = 1 << 20
	if mod != nil {
		mod(&cfg)
	}
	smtpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := box.Open(context.Background(), cfg, box.Options{Version: "test", SMTPListener: smtpLn})
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
	t.Cleanup(func() {
		cancel()
		<-done
		b.Close()
		if err := store.CheckDir(cfg.DataDir); err != nil {
			t.Errorf("after the test: %v", err)
		}
	})
	for b.SMTPAddr() == "" {
		time.Sleep(10 * time.Millisecond)
	}
	return &labBox{b: b, c: &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}, smtp: smtpLn.Addr().String()}
}

func (lb *labBox) faxes(t *testing.T) []*job.Job {
	t.Helper()
	var l api.List
	lb.c.Do(t, http.MethodGet, "/v1/faxes?limit=500", nil, "", &l)
	return l.Items
}

// TestResultAndFaxMailsThroughPostfix: a job's result mail (notify_email)
// and a mail with a PDF (as fax-to-e-mail sends it) reach a real postfix
// over STARTTLS and land in its Maildir, the PDF byte for byte; a mail the
// relay refuses with 550 is recorded as refused in /v1/status.
func TestResultAndFaxMailsThroughPostfix(t *testing.T) {
	p := postfix.Start(t)
	lb := startBox(t, p, nil)
	pdf := testkit.PDF(t, 2)
	var j job.Job
	resp := lb.c.Submit(t, "/v1/faxes", &j, testkit.Field("to", "99990001"), testkit.Field("notify_email", "ops@example.test"),
		testkit.File("file", "letter.pdf", pdf))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	lb.c.WaitJob(t, "/v1/faxes/"+j.ID, job.Delivered, 30*time.Second, true)
	m := p.WaitMail(t, "ops@example.test", j.ID, 30*time.Second)
	if !strings.Contains(m.Subject, "delivered") || !strings.Contains(m.Text, "2 of 2 confirmed") {
		t.Fatalf("result mail: %q\n%s", m.Subject, m.Text)
	}

	path := filepath.Join(t.TempDir(), "rx.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := lb.b.Mail.Enqueue(mail.Message{To: []string{"office@example.test"}, Subject: "Fax from 0301234 (2 pages)",
		Text: "A fax arrived.", Attachments: []mail.Attachment{{Name: "fax-0301234.pdf", ContentType: "application/pdf", Path: path}}, Ref: "rx_test"}); err != nil {
		t.Fatal(err)
	}
	m = p.WaitMail(t, "office@example.test", "Fax from 0301234", 30*time.Second)
	if !bytes.Equal(m.Attachments["fax-0301234.pdf"], pdf) {
		t.Fatalf("the PDF in the Maildir differs from the one sent (%d bytes, want %d)", len(m.Attachments["fax-0301234.pdf"]), len(pdf))
	}

	var j2 job.Job
	lb.c.Submit(t, "/v1/faxes", &j2, testkit.Field("to", "99990006"), testkit.Field("notify_email", "refused@example.test"),
		testkit.File("file", "letter.pdf", pdf))
	lb.c.WaitJob(t, "/v1/faxes/"+j2.ID, job.Failed, 30*time.Second, true)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := lb.b.Mail.Status()
		if st.Refused == 1 && st.LastRefused != nil && st.LastRefused.Ref == j2.ID && strings.Contains(st.LastRefused.Error, "550") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay's 550 is not recorded: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var status struct {
		Extra map[string]any `json:"extra"`
	}
	lb.c.Do(t, http.MethodGet, "/v1/status", nil, "", &status)
	mst, _ := status.Extra["mail"].(map[string]any)
	if mst["refused_total"] != float64(1) || mst["sent_total"] != float64(2) {
		t.Fatalf("/v1/status extra.mail: %v", status.Extra["mail"])
	}
}

// swaks runs Debian's swaks against the box's listener and returns its
// output and exit status.
func swaks(t *testing.T, server string, args ...string) (string, int) {
	t.Helper()
	testkit.Require(t, "swaks")
	cmd := exec.Command("swaks", append([]string{"--server", server, "--timeout", "30", "--helo", "client.test"}, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestMailToFaxWithSwaks: swaks mails a PDF to 99990001@fax.local
// (authenticated with an API token: the test's box allows no network
// without AUTH); the box queues a fax job that the test line delivers, and
// the result goes back to the sender through postfix. Every hostile mail is
// refused with its reply code, and nothing is queued for it.
func TestMailToFaxWithSwaks(t *testing.T) {
	p := postfix.Start(t)
	lb := startBox(t, p, func(c *config.Config) {
		c.SMTPListen.AllowIPs = []string{"192.0.2.0/24"}
		c.SMTPListen.MaxRecipients = 3
		c.Destinations = []destctl.Rule{{Prefix: "0900", Reject: "premium rate"}}
	})
	dir := t.TempDir()
	pdf := testkit.PDF(t, 1)
	pdfPath := filepath.Join(dir, "letter.pdf")
	os.WriteFile(pdfPath, pdf, 0o600)
	auth := []string{"--auth", "PLAIN", "--auth-user", "alice", "--auth-password", token}

	out, code := swaks(t, lb.smtp, append(auth, "--from", "alice@example.test", "--to", "99990001@fax.local",
		"--header", "Subject: invoice", "--body", "Please fax the invoice.", "--attach-type", "application/pdf", "--attach", "@"+pdfPath)...)
	if code != 0 || !strings.Contains(out, "<~  250") && !strings.Contains(out, "<-  250 2.0.0 OK: queued") {
		t.Fatalf("swaks: exit %d\n%s", code, out)
	}
	jobs := lb.faxes(t)
	if len(jobs) != 1 || jobs[0].To != "99990001" || jobs[0].NotifyEmail != "alice@example.test" || len(jobs[0].Files) != 1 || jobs[0].Files[0].Type != "pdf" {
		t.Fatalf("jobs after the mail: %+v", jobs)
	}
	id := jobs[0].ID
	lb.c.WaitJob(t, "/v1/faxes/"+id, job.Delivered, 30*time.Second, true)
	m := p.WaitMail(t, "alice@example.test", id, 30*time.Second)
	if !strings.Contains(m.Subject, "delivered") {
		t.Fatalf("result mail: %q", m.Subject)
	}

	big := filepath.Join(dir, "big.pdf")
	os.WriteFile(big, append(append([]byte(nil), pdf...), bytes.Repeat([]byte("%pad\n"), 300<<10)...), 0o600)
	inj := filepath.Join(dir, "inj.eml")
	os.WriteFile(inj, []byte("From: alice@example.test\nTo: 99990001@fax.local\nSubject: =?utf-8?b?aGkNCkJjYzogZXZpbEBleGFtcGxlLm9yZw==?=\n\nhello\n"), 0o600)
	dup := filepath.Join(dir, "dup.eml")
	os.WriteFile(dup, []byte("From: alice@example.test\nTo: 99990001@fax.local\nSubject: a\nBcc: evil@example.org\nSubject: b\n\nhello\n"), 0o600)
	bad := filepath.Join(dir, "bad.eml")
	os.WriteFile(bad, []byte("From: alice@example.test\nTo: 99990001@fax.local\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"zz\"\n\n--zz\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n%%%not base64%%%\n"), 0o600)
	many := []string{}
	for i := 1; i <= 6; i++ { // max_recipients is 3 here
		many = append(many, fmt.Sprintf("9999000%d@fax.local", i))
	}
	cases := []struct {
		name string
		args []string
		code string
	}{
		{"unknown sender (no AUTH, not an allowed network)", []string{"--from", "alice@example.test", "--to", "99990001@fax.local", "--attach", "@" + pdfPath}, "530 5.7.0"},
		{"wrong token", []string{"--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "not-the-token", "--from", "alice@example.test", "--to", "99990001@fax.local"}, "535 5.7.8"},
		{"non-digit local part", append(auth, "--from", "alice@example.test", "--to", "sales@fax.local"), "550 5.1.1"},
		{"relaying elsewhere", append(auth, "--from", "alice@example.test", "--to", "99990001@example.org"), "550 5.7.1"},
		{"oversized", append(auth, "--from", "alice@example.test", "--to", "99990001@fax.local", "--attach-type", "application/pdf", "--attach", "@"+big), "552 5.3.4"},
		{"too many recipients", append(auth, "--from", "alice@example.test", "--to", strings.Join(many, ","), "--attach-type", "application/pdf", "--attach", "@"+pdfPath), "554 5.5.3"},
		{"header injection (encoded CRLF)", append(auth, "--from", "alice@example.test", "--to", "99990001@fax.local", "--data", "@"+inj), "554 5.6.0"},
		{"header injection (second Subject)", append(auth, "--from", "alice@example.test", "--to", "99990001@fax.local", "--data", "@"+dup), "554 5.6.0"},
		{"malformed MIME", append(auth, "--from", "alice@example.test", "--to", "99990001@fax.local", "--data", "@"+bad), "554 5.6.0"},
		{"premium-rate number", append(auth, "--from", "alice@example.test", "--to", "09001234567@fax.local"), "550 5.7.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := swaks(t, lb.smtp, c.args...)
			if code == 0 || !strings.Contains(out, "<** "+c.code) {
				t.Fatalf("swaks exit %d; want a %s refusal:\n%s", code, c.code, out)
			}
			if n := len(lb.faxes(t)); n != 1 {
				t.Fatalf("%d jobs after the refused mail, want still 1", n)
			}
		})
	}
}
