package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"time"
)

// STARTTLS policies of the outgoing relay connection.
const (
	// StartTLSRequired refuses to submit over a connection the relay does
	// not encrypt (STARTTLS missing or failing is a temporary error).
	StartTLSRequired = "required"
	// StartTLSOpportunistic encrypts when the relay offers STARTTLS.
	StartTLSOpportunistic = "opportunistic"
	// StartTLSOff never encrypts (a relay on the box itself).
	StartTLSOff = "off"
)

// SMTP is the office relay the box submits its mail to (result mails,
// received faxes). Without Host the box sends no mail.
type SMTP struct {
	Host string `json:"host"`
	Port int    `json:"port"` // default 587 (submission)
	// StartTLS: required (default), opportunistic or off.
	StartTLS string `json:"starttls"`
	// CAFile is a PEM file of further CA certificates the relay's
	// certificate may chain to (a private office CA); the system's roots
	// always count.
	CAFile string `json:"ca_file"`
	// Username and Password authenticate with AUTH PLAIN (only over an
	// encrypted connection, or to a relay on loopback).
	Username string `json:"username"`
	Password string `json:"password"`
	// From is the envelope sender and From: address of the box's mail.
	From string `json:"from"`
	// Helo is the name the box gives in EHLO (default "faxbox").
	Helo string `json:"helo"`
	// Timeout bounds one submission (connect to QUIT).
	Timeout Duration `json:"timeout"`
	// FirstRetry, doubling up to MaxBackoff, is the wait after a temporary
	// failure; a mail not accepted within GiveUpAfter is kept as refused.
	FirstRetry  Duration `json:"first_retry"`
	MaxBackoff  Duration `json:"max_backoff"`
	GiveUpAfter Duration `json:"give_up_after"`
}

// Enabled reports whether a relay is configured.
func (s SMTP) Enabled() bool { return s.Host != "" }

// SMTPListen is the box's own SMTP listener (e-mail to fax): mail to
// <number>@<Domain> from AllowIPs, or from a sender authenticated with an
// API token, becomes a fax job. Without Addr there is no listener.
type SMTPListen struct {
	Addr   string `json:"addr"`   // e.g. ":25" or "127.0.0.1:2525"
	Domain string `json:"domain"` // the fax domain
	// AllowIPs may send without authenticating (addresses or CIDRs).
	AllowIPs []string `json:"allow_ips"`
	// MaxMessageBytes is the largest mail accepted (SIZE).
	MaxMessageBytes int64 `json:"max_message_bytes"`
	// MaxRecipients is the most fax numbers one mail may name.
	MaxRecipients int `json:"max_recipients"`
	// BodyPage sends the mail's text body as the fax's first page. A mail
	// without attachments always sends its body.
	BodyPage bool `json:"body_page"`
	// TLSCert and TLSKey are PEM files for STARTTLS; without them the
	// listener makes a self-signed certificate in the data directory.
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
}

// defaultSMTP and defaultSMTPListen are the mail settings of a box without
// smtp or smtp_listen sections: no relay, no listener.
func defaultSMTP() SMTP {
	return SMTP{Port: 587, StartTLS: StartTLSRequired, Helo: "faxbox", Timeout: Duration(60 * time.Second),
		FirstRetry: Duration(30 * time.Second), MaxBackoff: Duration(time.Hour), GiveUpAfter: Duration(72 * time.Hour)}
}

func defaultSMTPListen() SMTPListen {
	return SMTPListen{Domain: "fax.local", AllowIPs: []string{"127.0.0.1/32", "::1/128"},
		MaxMessageBytes: 25 << 20, MaxRecipients: 10}
}

var reDomain = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validate reports the problems of the smtp section (nil when none).
func (s SMTP) validate() error {
	if !s.Enabled() {
		return nil
	}
	var errs []error
	if strings.ContainsAny(s.Host, " :/\r\n") && net.ParseIP(s.Host) == nil {
		errs = append(errs, fmt.Errorf("smtp.host %q: a host name or address, without port", s.Host))
	}
	if s.Port < 1 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("smtp.port %d: 1 to 65535", s.Port))
	}
	switch s.StartTLS {
	case StartTLSRequired, StartTLSOpportunistic, StartTLSOff:
	default:
		errs = append(errs, fmt.Errorf("smtp.starttls %q: %s, %s or %s", s.StartTLS, StartTLSRequired, StartTLSOpportunistic, StartTLSOff))
	}
	if a, err := mail.ParseAddress(s.From); err != nil || a.Name != "" || strings.ContainsAny(s.From, "\r\n") {
		errs = append(errs, fmt.Errorf("smtp.from %q: a plain address (faxbox@example.com)", s.From))
	}
	if (s.Username == "") != (s.Password == "") {
		errs = append(errs, errors.New("smtp.username and smtp.password go together"))
	}
	if strings.ContainsAny(s.Helo, " \r\n") || s.Helo == "" {
		errs = append(errs, fmt.Errorf("smtp.helo %q: one word", s.Helo))
	}
	if s.Timeout <= 0 || s.FirstRetry <= 0 || s.MaxBackoff < s.FirstRetry || s.GiveUpAfter <= 0 {
		errs = append(errs, errors.New("smtp.timeout, first_retry, give_up_after must be positive and max_backoff at least first_retry"))
	}
	return errors.Join(errs...)
}

// validate reports the problems of the smtp_listen section (nil when none).
func (l SMTPListen) validate() error {
	if l.Addr == "" {
		return nil
	}
	var errs []error
	if _, _, err := net.SplitHostPort(l.Addr); err != nil {
		errs = append(errs, fmt.Errorf("smtp_listen.addr %q: host:port (\":25\"): %w", l.Addr, err))
	}
	if !reDomain.MatchString(l.Domain) {
		errs = append(errs, fmt.Errorf("smtp_listen.domain %q: a lower-case domain name (fax.example.com)", l.Domain))
	}
	for _, a := range l.AllowIPs {
		if _, _, err := net.ParseCIDR(a); err != nil && net.ParseIP(a) == nil {
			errs = append(errs, fmt.Errorf("smtp_listen.allow_ips: %q is neither an address nor a CIDR", a))
		}
	}
	if l.MaxMessageBytes < 1024 {
		errs = append(errs, fmt.Errorf("smtp_listen.max_message_bytes %d: at least 1024", l.MaxMessageBytes))
	}
	if l.MaxRecipients < 1 || l.MaxRecipients > 100 {
		errs = append(errs, fmt.Errorf("smtp_listen.max_recipients %d: 1 to 100", l.MaxRecipients))
	}
	if (l.TLSCert == "") != (l.TLSKey == "") {
		errs = append(errs, errors.New("smtp_listen.tls_cert and smtp_listen.tls_key go together"))
	}
	return errors.Join(errs...)
}
