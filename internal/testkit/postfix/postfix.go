// Package postfix runs a private instance of Debian's postfix for tests: its
// own config, queue and data directories, an smtpd on 127.0.0.1:Port with
// STARTTLS (a certificate for 127.0.0.1, CA), delivering every address
// @example.test to one Maildir, and refusing refused@example.test with 550.
// It needs root (postfix's master starts as root) and the postfix package
// (tools/deps.sh test).
package postfix

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/mail"
	"github.com/faxbox/faxbox/internal/testkit"
)

// Server is a running private postfix.
type Server struct {
	Dir     string
	Port    int
	CA      string // PEM of the smtpd's certificate (smtp.ca_file)
	Maildir string // where mail to @example.test lands
}

// Start starts a postfix for the test; it stops when the test ends (its
// log is printed when the test failed).
func Start(t testing.TB) *Server {
	t.Helper()
	testkit.Require(t, "postfix", "postconf")
	if os.Geteuid() != 0 {
		t.Fatal("the postfix relay needs root (postfix's master starts as root): run it as root, as `make test` does")
	}
	pu, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("no postfix user: %v (tools/deps.sh test installs postfix)", err)
	}
	dir, err := os.MkdirTemp("", "faxbox-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // postfix's daemons run as postfix and walk into it
	p := &Server{Dir: dir, Port: freePort(t), Maildir: filepath.Join(dir, "mail", "inbox")}
	if _, err := mail.ListenerTLS(config.SMTPListen{Domain: "127.0.0.1"}, dir); err != nil {
		t.Fatal(err)
	}
	p.CA = filepath.Join(dir, "smtp-tls.crt")
	for _, d := range []string{"queue", "data", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exec.Command("chown", "postfix:postfix", filepath.Join(dir, "data"), filepath.Join(dir, "mail")).Run()
	writeConfig(t, dir, p.Port, pu.Uid, pu.Gid)
	if out, err := exec.Command("postfix", "-c", dir, "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() {
		exec.Command("postfix", "-c", dir, "stop").Run()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
			t.Logf("postfix log:\n%s", log)
		}
		os.RemoveAll(dir)
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port))
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix does not listen on %d: %v", p.Port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Configure points the box's smtp section c at this relay (STARTTLS
// required, trusting the relay's certificate, quick retries); the other
// settings stay.
func (p *Server) Configure(c *config.SMTP) {
	c.Host, c.Port, c.CAFile, c.From = "127.0.0.1", p.Port, p.CA, "faxbox@box.test"
	c.StartTLS = config.StartTLSRequired
	c.FirstRetry, c.MaxBackoff = config.Duration(200*time.Millisecond), config.Duration(time.Second)
}

// writeConfig writes the instance's main.cf and master.cf: every daemon
// unchrooted, smtpd on 127.0.0.1:port only.
func writeConfig(t testing.TB, dir string, port int, uid, gid string) {
	t.Helper()
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.test
mydomain = relay.test
myorigin = relay.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = example.test
virtual_mailbox_base = %[1]s/mail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:%[2]s
virtual_gid_maps = static:%[3]s
smtpd_tls_cert_file = %[1]s/smtp-tls.crt
smtpd_tls_key_file = %[1]s/smtp-tls.key
smtpd_tls_security_level = may
maillog_file_prefixes = %[1]s
maillog_file = %[1]s/maillog
alias_maps =
alias_database =
smtputf8_enable = no
biff = no
message_size_limit = 52428800
virtual_mailbox_limit = 0
smtpd_recipient_restrictions = check_recipient_access inline:{ { refused@example.test = 550 5.1.1 no such user here } }, permit_mynetworks, reject
`, dir, uid, gid)
	masterCF := fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd\n", port)
	for _, l := range []string{"pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
		"tlsmgr unix - - n 1000? 1 tlsmgr", "rewrite unix - - n - - trivial-rewrite", "bounce unix - - n - 0 bounce",
		"defer unix - - n - 0 bounce", "trace unix - - n - 0 bounce", "verify unix - - n - 1 verify", "flush unix n - n 1000? 0 flush",
		"proxymap unix - - n - - proxymap", "proxywrite unix - - n - 1 proxymap", "smtp unix - - n - - smtp", "relay unix - - n - - smtp",
		"showq unix n - n - - showq", "error unix - - n - - error", "retry unix - - n - - error", "discard unix - - n - - discard",
		"local unix - n n - - local", "virtual unix - n n - - virtual", "lmtp unix - - n - - lmtp", "anvil unix - - n - 1 anvil",
		"scache unix - - n - 1 scache", "postlog unix-dgram n - n - 1 postlogd"} {
		masterCF += l + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte(masterCF), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Mail is a mail postfix put into the Maildir.
type Mail struct {
	File        string // in the Maildir's new/
	To, Subject string
	Text        string
	Attachments map[string][]byte // file name → bytes
	// At is when the mail landed (the file's modification time).
	At time.Time
}

// Mails returns every mail in the Maildir.
func (p *Server) Mails(t testing.TB) []Mail {
	t.Helper()
	var out []Mail
	ents, _ := os.ReadDir(filepath.Join(p.Maildir, "new"))
	for _, e := range ents {
		path := filepath.Join(p.Maildir, "new", e.Name())
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		m := Read(t, raw)
		m.File = path
		if fi, err := e.Info(); err == nil {
			m.At = fi.ModTime()
		}
		out = append(out, m)
	}
	return out
}

// WaitMail waits for a mail to addr whose subject contains want.
func (p *Server) WaitMail(t testing.TB, addr, want string, d time.Duration) Mail {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ms := p.Mails(t)
		for _, m := range ms {
			if strings.Contains(m.To, addr) && strings.Contains(m.Subject, want) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail to %s with %q in the subject within %s (Maildir has %d)", addr, want, d, len(ms))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Read parses a delivered mail.
func Read(t testing.TB, raw []byte) Mail {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		t.Fatalf("a delivered mail does not parse: %v", err)
	}
	m := Mail{To: r.Header.Get("To"), Attachments: map[string][]byte{}}
	m.Subject, _ = r.Header.Subject()
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("a delivered mail's part: %v", err)
		}
		b, _ := io.ReadAll(p.Body)
		switch h := p.Header.(type) {
		case *gomail.InlineHeader:
			m.Text += string(b)
		case *gomail.AttachmentHeader:
			name, _ := h.Filename()
			m.Attachments[name] = b
		}
	}
	return m
}
