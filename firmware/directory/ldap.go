package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/faxbox/faxbox/firmware/config"
)

// MaxEntries bounds one search's answer: a directory answering more is a
// failed read (the last good copy stays), so a hostile or mistaken server
// cannot fill the box's memory.
const MaxEntries = 20000

// pageSize is the page of a paged search.
const pageSize = 500

// LDAP reads a directory from an LDAP server (package go-ldap).
type LDAP struct {
	cfg config.LDAP
	tls *tls.Config
}

// NewLDAP returns the source for cfg (with its defaults); it reads the CA
// file when one is configured.
func NewLDAP(cfg config.LDAP) (*LDAP, error) {
	cfg = cfg.WithDefaults()
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("directory: ldap.url: %w", err)
	}
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("directory: ldap.ca_cert: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("directory: ldap.ca_cert %s: no PEM certificate in it", cfg.CACert)
		}
	}
	return &LDAP{cfg: cfg, tls: tc}, nil
}

// dial connects (TLS for ldaps://, StartTLS when configured), bounded by
// the timeout; the connection is closed when ctx ends.
func (s *LDAP) dial(ctx context.Context) (*ldap.Conn, func(), error) {
	d := &net.Dialer{Timeout: s.cfg.Timeout.D()}
	conn, err := ldap.DialURL(s.cfg.URL, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(s.tls))
	if err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	conn.SetTimeout(s.cfg.Timeout.D())
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	done := func() { stop(); conn.Close() }
	if s.cfg.StartTLS {
		if err := conn.StartTLS(s.tls); err != nil {
			done()
			return nil, nil, fmt.Errorf("starttls: %w", err)
		}
	}
	return conn, done, nil
}

// Read binds as ldap.bind_dn (or anonymously) and reads users, phone book
// and the configured groups.
func (s *LDAP) Read(ctx context.Context) (*Raw, error) {
	conn, done, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if s.cfg.BindDN != "" {
		if err := conn.Bind(s.cfg.BindDN, s.cfg.BindPassword); err != nil {
			return nil, fmt.Errorf("bind as %s: %w", s.cfg.BindDN, err)
		}
	}
	attrs := append([]string{s.cfg.UserAttribute}, nameAttrs...)
	attrs = append(attrs, s.cfg.PhoneAttributes...)
	userAttrs := attrs
	if s.cfg.TokenAttribute != "" {
		userAttrs = append(append([]string{}, attrs...), s.cfg.TokenAttribute)
	}
	raw := &Raw{Groups: map[string]Record{}}
	if raw.Users, err = s.search(conn, s.cfg.BaseDN, ldap.ScopeWholeSubtree, s.cfg.UserFilter, userAttrs); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	if raw.Book, err = s.search(conn, s.cfg.BaseDN, ldap.ScopeWholeSubtree, s.cfg.BookFilter, attrs); err != nil {
		return nil, fmt.Errorf("phone book: %w", err)
	}
	for _, g := range []string{s.cfg.SendGroup, s.cfg.CallGroup, s.cfg.CallbackGroup} {
		if g == "" {
			continue
		}
		rs, err := s.search(conn, g, ldap.ScopeBaseObject, "(objectClass=*)", []string{"member", "uniqueMember", "memberUid"})
		switch {
		case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
			continue // a group that does not exist grants nobody
		case err != nil:
			return nil, fmt.Errorf("group %s: %w", g, err)
		case len(rs) == 1:
			raw.Groups[g] = rs[0]
		}
	}
	return raw, nil
}

// search runs one paged search; more than MaxEntries entries is an error.
func (s *LDAP) search(conn *ldap.Conn, base string, scope int, filter string, attrs []string) ([]Record, error) {
	req := ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, MaxEntries+1,
		int(s.cfg.Timeout.D().Seconds()), false, filter, attrs, nil)
	res, err := conn.SearchWithPaging(req, pageSize)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || (res != nil && len(res.Entries) > MaxEntries) {
		return nil, fmt.Errorf("more than %d entries under %s (%s)", MaxEntries, base, filter)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(res.Entries))
	for _, e := range res.Entries {
		r := Record{DN: e.DN, Attrs: map[string][]string{}}
		for _, a := range e.Attributes {
			k := strings.ToLower(a.Name)
			r.Attrs[k] = append(r.Attrs[k], a.Values...)
		}
		out = append(out, r)
	}
	return out, nil
}

// Bind checks a user's password with a bind as dn on a connection of its
// own. An empty password is refused without asking (an LDAP bind with
// one is an anonymous bind, which servers accept).
func (s *LDAP) Bind(ctx context.Context, dn, password string) error {
	if password == "" {
		return errors.New("directory: empty password")
	}
	conn, done, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	defer done()
	if err := conn.Bind(dn, password); err != nil {
		return fmt.Errorf("directory: bind as %s: %w", dn, err)
	}
	return nil
}
