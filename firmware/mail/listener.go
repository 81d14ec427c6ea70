package mail

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/rules"
)

// Submission is a fax job made from a mail: one per recipient number.
type Submission struct {
	To string
	// NotifyEmail receives the job's result (the envelope sender; "" for
	// the null sender).
	NotifyEmail string
	// ClientRef makes the job idempotent: the same mail (Message-ID) to the
	// same number, sent again after a lost reply, is one job.
	ClientRef string
	Docs      []Document
}

// SubmitError is a submission's refusal: Code is the API's error code
// (invalid_number, unsupported_document, disk_full, ...), Temporary when the
// sender should try again later.
type SubmitError struct {
	Code      string
	Message   string
	Temporary bool
}

func (e *SubmitError) Error() string { return e.Code + ": " + e.Message }

// Submitter turns mail into fax jobs through the box's one submission path
// (the API's validation and storage).
type Submitter interface {
	// CheckNumber validates a destination as a submission would (number
	// syntax, destination rules, a line that can dial it); a refusal is a
	// *SubmitError.
	CheckNumber(to string) error
	// SubmitFax validates and stores a job and hands it to the engine; it
	// returns the job's id, or a *SubmitError.
	SubmitFax(s Submission) (string, error)
}

// ListenerConfig configures the SMTP listener.
type ListenerConfig struct {
	config.SMTPListen
	// Tokens are the API tokens; an SMTP AUTH PLAIN password that is one
	// of them authenticates.
	Tokens []string
	// TLS is the STARTTLS configuration (nil: no STARTTLS).
	TLS    *tls.Config
	Submit Submitter
	Log    *slog.Logger
}

// Listener is the box's SMTP listener (e-mail to fax).
type Listener struct {
	cfg   ListenerConfig
	srv   *smtp.Server
	allow rules.Nets
	log   *slog.Logger
	sem   chan struct{}
}

// mailRefPrefix starts the client_ref of jobs made from mail.
const mailRefPrefix = "mail-"

var reLocal = regexp.MustCompile(`^\+?[0-9]+$`)

// NewListener builds the listener; Serve runs it.
func NewListener(cfg ListenerConfig) (*Listener, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	l := &Listener{cfg: cfg, log: cfg.Log.With("component", "smtp"), sem: make(chan struct{}, 2)}
	allow, err := rules.ParseNets(cfg.AllowIPs)
	if err != nil {
		return nil, fmt.Errorf("mail: smtp_listen.allow_ips: %w", err)
	}
	l.allow = allow
	s := smtp.NewServer(smtp.BackendFunc(l.newSession))
	s.Domain = cfg.Domain
	s.MaxMessageBytes = cfg.MaxMessageBytes
	s.MaxLineLength = 2000
	s.ReadTimeout = 60 * time.Second
	s.WriteTimeout = 60 * time.Second
	s.TLSConfig = cfg.TLS
	// Whether AUTH is offered is the session's decision (AuthMechanisms):
	// after STARTTLS, or from loopback.
	s.AllowInsecureAuth = true
	s.ErrorLog = slogLogger{l.log}
	l.srv = s
	return l, nil
}

// Serve accepts connections on ln until Close.
func (l *Listener) Serve(ln net.Listener) error {
	l.log.Info("smtp listener ready", "addr", ln.Addr().String(), "domain", l.cfg.Domain)
	err := l.srv.Serve(ln)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the listener and its connections.
func (l *Listener) Close() error { return l.srv.Close() }

func (l *Listener) newSession(c *smtp.Conn) (smtp.Session, error) {
	s := &session{l: l}
	if ta, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		s.ip = ta.IP
	}
	_, s.tls = c.TLSConnectionState()
	return s, nil
}

// tokenOK compares a password with the API tokens in constant time.
func (l *Listener) tokenOK(pw string) bool {
	ok := 0
	for _, t := range l.cfg.Tokens {
		ok |= subtle.ConstantTimeCompare([]byte(pw), []byte(t))
	}
	return ok == 1 && pw != ""
}

// session is one SMTP transaction's state.
type session struct {
	l       *Listener
	ip      net.IP
	tls     bool
	authed  bool
	from    string
	hasFrom bool
	rcpts   []string // fax numbers
	tooMany bool
}

var _ smtp.AuthSession = (*session)(nil)

func (s *session) authAllowed() bool { return s.tls || (s.ip != nil && s.ip.IsLoopback()) }

// AuthMechanisms offers AUTH PLAIN only on an encrypted connection or on
// loopback.
func (s *session) AuthMechanisms() []string {
	if s.authAllowed() {
		return []string{sasl.Plain}
	}
	return nil
}

// Auth checks AUTH PLAIN: the password must be an API token.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	if !s.authAllowed() {
		return nil, &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11}, Message: "Encryption required: use STARTTLS before AUTH"}
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if (identity != "" && identity != username) || !s.l.tokenOK(password) {
			time.Sleep(time.Second) // slows guessing
			s.l.log.Warn("smtp: authentication failed", "remote", s.ip.String(), "user", username)
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

// Mail takes the envelope sender: refused unless the client is in an allowed
// network or authenticated; "" (the null sender) gets no result mail.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if !s.authed && !s.l.allow.Contains(s.ip) {
		s.l.log.Warn("smtp: unknown sender refused", "remote", s.ip.String(), "from", from)
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required: this network may not send faxes without SMTP AUTH"}
	}
	if opts != nil && opts.Size > s.l.cfg.MaxMessageBytes {
		return smtp.ErrDataTooLarge
	}
	if from != "" {
		if _, err := CheckAddress(from); err != nil {
			return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Bad sender address: a plain ASCII address is wanted"}
		}
	}
	s.from, s.hasFrom = from, true
	return nil
}

// Rcpt takes one recipient: <number>@<fax domain>, the number valid for a
// fax job; at most max_recipients of them.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	at := strings.LastIndexByte(to, '@')
	if at < 0 || !strings.EqualFold(to[at+1:], s.l.cfg.Domain) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied: this box takes mail for <number>@" + s.l.cfg.Domain + " only"}
	}
	local := to[:at]
	if !reLocal.MatchString(local) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such mailbox: the local part must be the fax number, digits only"}
	}
	for _, n := range s.rcpts {
		if n == local {
			return nil
		}
	}
	if len(s.rcpts) >= s.l.cfg.MaxRecipients {
		s.tooMany = true
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: fmt.Sprintf("Too many recipients: at most %d fax numbers per mail", s.l.cfg.MaxRecipients)}
	}
	if err := s.l.cfg.Submit.CheckNumber(local); err != nil {
		return replyFor(err)
	}
	s.rcpts = append(s.rcpts, local)
	return nil
}

// Data reads the mail and queues one fax job per recipient, or refuses the
// mail whole.
func (s *session) Data(r io.Reader) error {
	if s.tooMany {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 3}, Message: fmt.Sprintf("Too many recipients (at most %d); nothing was queued", s.l.cfg.MaxRecipients)}
	}
	// At most cap(sem) mails are read and submitted at once: each is held
	// in memory (up to max_message_bytes) while it is checked.
	s.l.sem <- struct{}{}
	defer func() { <-s.l.sem }()
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp's ErrDataTooLarge (552) or a broken connection
	}
	p, err := parseMail(raw)
	if err != nil {
		s.l.log.Warn("smtp: mail refused", "remote", s.ip.String(), "from", s.from, "err", err)
		return err
	}
	docs, err := s.l.documents(p)
	if err != nil {
		return err
	}
	var ids []string
	for _, n := range s.rcpts {
		sub := Submission{To: n, NotifyEmail: s.from, Docs: docs}
		if p.MessageID != "" {
			h := sha256.Sum256([]byte(p.MessageID + "\x00" + s.from + "\x00" + n))
			sub.ClientRef = mailRefPrefix + hex.EncodeToString(h[:16])
		}
		id, err := s.l.cfg.Submit.SubmitFax(sub)
		if err != nil {
			s.l.log.Warn("smtp: fax refused", "remote", s.ip.String(), "from", s.from, "to", n, "queued_before", ids, "err", err)
			return replyFor(err)
		}
		ids = append(ids, id)
	}
	s.l.log.Info("smtp: mail queued as faxes", "remote", s.ip.String(), "from", s.from, "jobs", ids, "documents", len(docs))
	return nil
}

// documents orders what is faxed: the body first when body_page is set or
// the mail has no attachment, then the attachments.
func (l *Listener) documents(p *parsed) ([]Document, error) {
	var docs []Document
	if body := strings.TrimSpace(p.Body); body != "" && (l.cfg.BodyPage || len(p.Docs) == 0) {
		docs = append(docs, Document{Name: "message.txt", ContentType: "text/plain", Data: []byte(p.Body)})
	}
	docs = append(docs, p.Docs...)
	if len(docs) == 0 {
		if p.HTMLOnly {
			return nil, errMedia("The mail has only an HTML body: send plain text or attach a PDF, TIFF, PNG, JPEG or text file")
		}
		return nil, errMedia("Nothing to fax: the mail has no text and no attachment")
	}
	return docs, nil
}

// Reset forgets the transaction.
func (s *session) Reset() {
	s.from, s.hasFrom, s.rcpts, s.tooMany = "", false, nil, false
}

// Logout ends the session.
func (s *session) Logout() error { return nil }

// replyFor maps a submission's refusal to its SMTP reply.
func replyFor(err error) error {
	var se *SubmitError
	if !errors.As(err, &se) {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure; try again later"}
	}
	reply := func(code int, ec smtp.EnhancedCode) error {
		return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: oneLine(se.Message) + " (" + se.Code + "); nothing was queued"}
	}
	switch {
	case se.Code == "disk_full":
		return reply(452, smtp.EnhancedCode{4, 3, 1})
	case se.Temporary:
		return reply(451, smtp.EnhancedCode{4, 3, 0})
	case se.Code == "invalid_number":
		return reply(553, smtp.EnhancedCode{5, 1, 3})
	case se.Code == "rejected_destination":
		return reply(550, smtp.EnhancedCode{5, 7, 1})
	case se.Code == "no_line_for_number":
		return reply(550, smtp.EnhancedCode{5, 1, 2})
	case se.Code == "too_large":
		return reply(552, smtp.EnhancedCode{5, 3, 4})
	case se.Code == "unsupported_document", se.Code == "document_type_mismatch":
		return reply(554, smtp.EnhancedCode{5, 6, 1})
	}
	return reply(554, smtp.EnhancedCode{5, 6, 0})
}

// oneLine keeps a message fit for an SMTP reply line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 400 {
		s = s[:400]
	}
	return s
}

// slogLogger adapts slog to go-smtp's logger.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(format string, v ...any) { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s slogLogger) Println(v ...any)               { s.l.Warn(fmt.Sprintln(v...)) }
