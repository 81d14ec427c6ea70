package box

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/internal/testkit"
)

// inbox is a minimal in-process SMTP server that keeps what it is given
// (the real relay, postfix, is in firmware/mail's lab test).
type inbox struct {
	mu   sync.Mutex
	msgs []string
}

type inboxSession struct{ in *inbox }

func (in *inbox) NewSession(*smtp.Conn) (smtp.Session, error) { return inboxSession{in}, nil }
func (inboxSession) Mail(string, *smtp.MailOptions) error     { return nil }
func (inboxSession) Rcpt(string, *smtp.RcptOptions) error     { return nil }
func (inboxSession) Reset()                                   {}
func (inboxSession) Logout() error                            { return nil }
func (s inboxSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.in.mu.Lock()
	s.in.msgs = append(s.in.msgs, string(b))
	s.in.mu.Unlock()
	return err
}

func (in *inbox) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		in.mu.Lock()
		got := append([]string(nil), in.msgs...)
		in.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails at the relay, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// relayConfig points the box's relay at port on loopback, in the clear.
func relayConfig(port int) func(*config.Config) {
	return func(c *config.Config) {
		c.SMTP.Host, c.SMTP.Port, c.SMTP.From, c.SMTP.StartTLS = "127.0.0.1", port, "faxbox@box.test", config.StartTLSOff
		c.SMTP.FirstRetry, c.SMTP.MaxBackoff = job.Duration(50*time.Millisecond), job.Duration(100*time.Millisecond)
	}
}

func TestNotifyEmailValidation(t *testing.T) {
	pdf := testkit.PDF(t, 1)
	e := startBox(t, nil)
	var ej struct {
		Error struct{ Code, Field string } `json:"error"`
	}
	resp := e.c.Submit(t, "/v1/faxes", &ej, testkit.Field("to", "99990001"), testkit.Field("notify_email", "ops@example.com"), testkit.File("file", "a.pdf", pdf))
	if resp.StatusCode != http.StatusUnprocessableEntity || ej.Error.Code != "mail_unavailable" {
		t.Fatalf("notify_email without a relay: %d %+v", resp.StatusCode, ej)
	}
	e = startBox(t, relayConfig(1))
	for _, bad := range []string{"ops", "Ops <ops@example.com>", "a@b.c, d@e.f"} {
		resp = e.c.Submit(t, "/v1/faxes", &ej, testkit.Field("to", "99990001"), testkit.Field("notify_email", bad), testkit.File("file", "a.pdf", pdf))
		if resp.StatusCode != http.StatusBadRequest || ej.Error.Field != "notify_email" {
			t.Fatalf("notify_email %q: %d %+v", bad, resp.StatusCode, ej)
		}
	}
}

// TestResultMailDurable: the result mail of a job is queued with its final
// state while the relay is down, and sent after a restart once it is up; a
// result mail left in the store's outbox by a crash (committed, not yet
// handed to the mail outbox) is handed on at the next start.
func TestResultMailDurable(t *testing.T) {
	pdf := testkit.PDF(t, 1)
	dir := t.TempDir()
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	downPort := down.Addr().(*net.TCPAddr).Port
	down.Close()
	b, c := openAt(t, dir, relayConfig(downPort))
	var j job.Job
	c.Submit(t, "/v1/faxes", &j, testkit.Field("to", "99990001"), testkit.Field("notify_email", "ops@example.com"), testkit.File("file", "a.pdf", pdf))
	c.WaitJob(t, "/v1/faxes/"+j.ID, job.Delivered, 20*time.Second, true)
	deadline := time.Now().Add(10 * time.Second)
	for b.Mail.Status().Pending != 1 || b.Mail.Status().Failures == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("mail outbox %+v: want the result mail waiting for the relay", b.Mail.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ds, _ := b.Store.Outbox(); len(ds) != 0 {
		t.Fatalf("store outbox still holds %+v", ds[0])
	}
	b.Close()

	// A crash right after a commit: the result-mail delivery is still in
	// the store's outbox.
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Get(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.Job.NotifyEmail = "second@example.com"
	ds := mailOutbox(func(*job.Job, []job.Event) []*store.Delivery { return nil })(rec.Job, []job.Event{job.EventFaxDelivered})
	rec.Version++
	if err := st.Put(rec, ds...); err != nil {
		t.Fatal(err)
	}
	st.Close()

	in := &inbox{}
	srv := smtp.NewServer(in)
	srv.Domain = "relay.test"
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	b2, _ := openAt(t, dir, relayConfig(ln.Addr().(*net.TCPAddr).Port))
	defer b2.Close()
	msgs := in.wait(t, 2)
	all := strings.Join(msgs, "\n")
	if !strings.Contains(all, "To: <ops@example.com>") || !strings.Contains(all, "To: <second@example.com>") || !strings.Contains(all, j.ID) {
		t.Fatalf("mails at the relay:\n%s", all)
	}
	if ds, _ := b2.Store.Outbox(); len(ds) != 0 {
		t.Fatalf("store outbox after the restart: %+v", ds[0])
	}
}

// openAt opens and serves a box on data directory dir; the caller closes it.
func openAt(t *testing.T, dir string, mod func(*config.Config)) (*Box, *testkit.Client) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Tokens = []string{token}
	cfg.TestLine.PageTime = job.Duration(50 * time.Millisecond)
	mod(&cfg)
	b, err := Open(context.Background(), cfg, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(context.Background(), ln)
	return b, &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}
}

// BenchmarkSMTPAccept1MB measures the SMTP listener's accept rate for mails
// carrying a 1 MB PDF: from DATA to the 250 that says the fax job is stored
// (parsing, the API's checks, the documents and the job fsynced).
func BenchmarkSMTPAccept1MB(b *testing.B) {
	pdf := testkit.PDFOfSize(b, 1<<20)
	var msg strings.Builder
	msg.WriteString("From: bench@example.com\r\nSubject: bench\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n")
	msg.WriteString("--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"doc.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(pdf)
	for len(enc) > 76 {
		msg.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	msg.WriteString(enc + "\r\n--b--\r\n")
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.Tokens = []string{token}
	cfg.TestLine.PageTime = job.Duration(time.Millisecond)
	cfg.SMTPListen.MaxMessageBytes = 4 << 20
	sl, _ := net.Listen("tcp", "127.0.0.1:0")
	bx, err := Open(context.Background(), cfg, Options{Version: "bench", SMTPListener: sl})
	if err != nil {
		b.Fatal(err)
	}
	defer bx.Close()
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	go bx.Serve(context.Background(), hl)
	for bx.SMTPAddr() == "" {
		time.Sleep(time.Millisecond)
	}
	c, err := smtp.Dial(sl.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	// make bench runs each benchmark once (-benchtime 1x): send at least
	// 30 mails so that the rate and percentiles are measured, not guessed
	// from one.
	n := max(b.N, 30)
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := c.SendMail("bench@example.com", []string{"99990001@fax.local"}, strings.NewReader(msg.String())); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	slices.Sort(lat)
	rate := float64(n) / elapsed.Seconds()
	b.ReportMetric(rate, "mails/s")
	b.ReportMetric(float64(testkit.Percentile(lat, 99).Microseconds())/1000, "accept-p99-ms")
	b.Logf("SMTP accept, %d mails of %d KB (1 MB PDF, base64) on one connection: %.1f mails/s, DATA→250 p50 %s, p99 %s",
		n, msg.Len()>>10, rate, testkit.Percentile(lat, 50).Round(time.Millisecond), testkit.Percentile(lat, 99).Round(time.Millisecond))
}
