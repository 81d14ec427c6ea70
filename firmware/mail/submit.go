package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/faxbox/faxbox/firmware/config"
)

// permanentError is a refusal for good: the relay answered 5xx, or the
// message can never be built (an attachment gone).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent reports whether err refuses the message for good.
func permanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// relay submits messages to the office relay.
type relay struct {
	cfg   config.SMTP
	roots *x509.CertPool // nil: the system's roots only
}

func newRelay(cfg config.SMTP) (*relay, error) {
	r := &relay{cfg: cfg}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mail: smtp.ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mail: smtp.ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		r.roots = pool
	}
	return r, nil
}

// loopbackHost reports whether host names the box itself.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// send submits one composed message: EHLO, STARTTLS as the policy says,
// AUTH PLAIN when a username is set (only encrypted or on loopback), MAIL,
// RCPT for each recipient, DATA. It returns the recipients the relay refused
// for good (the rest accepted the message). An error that is permanent
// (5xx for every recipient, or for MAIL or DATA) refuses the message for
// good; any other is worth another try.
func (r *relay) send(ctx context.Context, to []string, body []byte) (refused map[string]string, err error) {
	addr := net.JoinHostPort(r.cfg.Host, strconv.Itoa(r.cfg.Port))
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout.D())
	defer cancel()
	c, err := r.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if r.cfg.Username != "" {
		if _, tlsOn := c.TLSConnectionState(); !tlsOn && !loopbackHost(r.cfg.Host) {
			return nil, fmt.Errorf("mail: relay %s: will not send the password over an unencrypted connection", addr)
		}
		if err := c.Auth(sasl.NewPlainClient("", r.cfg.Username, r.cfg.Password)); err != nil {
			return nil, classify("AUTH", err)
		}
	}
	return r.transact(c, to, body)
}

// errNoStartTLS is go-smtp's answer when the relay offers no STARTTLS.
const errNoStartTLS = "smtp: server doesn't support STARTTLS"

// dial connects and greets the relay, encrypted as smtp.starttls says:
// required refuses a relay without STARTTLS (a temporary error: the relay
// may be fixed), opportunistic connects again in the clear when the relay
// offers none.
func (r *relay) dial(ctx context.Context, addr string) (*smtp.Client, error) {
	connect := func() (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("mail: connect to relay %s: %w", addr, err)
		}
		// The whole submission ends with ctx (go-smtp sets deadlines of its
		// own per command, replacing any set here).
		context.AfterFunc(ctx, func() { conn.Close() })
		return conn, nil
	}
	plain := func() (*smtp.Client, error) {
		conn, err := connect()
		if err != nil {
			return nil, err
		}
		c := smtp.NewClient(conn)
		if err := c.Hello(r.cfg.Helo); err != nil {
			c.Close()
			return nil, classify("EHLO", err)
		}
		return c, nil
	}
	if r.cfg.StartTLS == config.StartTLSOff {
		return plain()
	}
	conn, err := connect()
	if err != nil {
		return nil, err
	}
	c, err := smtp.NewClientStartTLS(conn, &tls.Config{ServerName: r.cfg.Host, RootCAs: r.roots, MinVersion: tls.VersionTLS12})
	switch {
	case err != nil && err.Error() == errNoStartTLS && r.cfg.StartTLS == config.StartTLSOpportunistic:
		return plain()
	case err != nil:
		return nil, fmt.Errorf("mail: STARTTLS with relay %s (smtp.starttls %s): %w", addr, r.cfg.StartTLS, err)
	}
	if err := c.Hello(r.cfg.Helo); err != nil {
		c.Close()
		return nil, classify("EHLO after STARTTLS", err)
	}
	return c, nil
}

// transact runs MAIL, RCPT and DATA.
func (r *relay) transact(c *smtp.Client, to []string, body []byte) (map[string]string, error) {
	if err := c.Mail(r.cfg.From, nil); err != nil {
		return nil, classify("MAIL FROM", err)
	}
	refused := map[string]string{}
	var accepted int
	var lastErr error
	for _, a := range to {
		if err := c.Rcpt(a, nil); err != nil {
			ce := classify("RCPT TO "+a, err)
			if !permanent(ce) {
				return nil, ce
			}
			refused[a] = err.Error()
			lastErr = ce
			continue
		}
		accepted++
	}
	if accepted == 0 {
		return refused, lastErr
	}
	w, err := c.Data()
	if err != nil {
		return nil, classify("DATA", err)
	}
	if _, err := bytes.NewReader(body).WriteTo(w); err != nil {
		return nil, fmt.Errorf("mail: DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, classify("end of DATA", err)
	}
	c.Quit()
	return refused, nil
}

// classify wraps a command's error; a 5xx reply is permanent.
func classify(cmd string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 && se.Code <= 599 {
		return &permanentError{fmt.Errorf("mail: relay refused %s: %w", cmd, err)}
	}
	return fmt.Errorf("mail: %s: %w", cmd, err)
}
