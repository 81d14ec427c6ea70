package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults of the ldap key.
const (
	DefaultLDAPTTL        = 5 * time.Minute
	DefaultLDAPTimeout    = 10 * time.Second
	DefaultLDAPUserFilter = "(objectClass=inetOrgPerson)"
	DefaultLDAPBookFilter = "(|(telephoneNumber=*)(facsimileTelephoneNumber=*))"
)

// LDAP is the office directory (package directory): API users with their
// tokens or passwords, the inbound callback's allowed callers, the
// click-to-call agents and a phone book. Empty URL: no directory.
type LDAP struct {
	// URL is ldap://host[:port] or ldaps://host[:port].
	URL string `json:"url"`
	// StartTLS upgrades an ldap:// connection before binding; the server's
	// certificate is checked against the system's roots (or CACert).
	StartTLS bool `json:"starttls"`
	// CACert is a PEM file of the CA that signed the server's certificate
	// (ldaps:// and starttls); empty: the system's roots.
	CACert string `json:"ca_cert"`
	// BindDN and BindPassword are the box's own account for reading the
	// directory; both empty: an anonymous bind.
	BindDN       string `json:"bind_dn"`
	BindPassword string `json:"bind_password"`
	// BaseDN is where users, groups and phone book entries are searched.
	BaseDN string `json:"base_dn"`
	// UserFilter selects the users (default (objectClass=inetOrgPerson)).
	UserFilter string `json:"user_filter"`
	// UserAttribute is the user's login name for HTTP Basic (default uid).
	UserAttribute string `json:"user_attribute"`
	// TokenAttribute holds a user's API token (a Bearer token); empty:
	// directory users authenticate with HTTP Basic, their password checked
	// by a bind as the user.
	TokenAttribute string `json:"token_attribute"`
	// PhoneAttributes are the attributes holding numbers (default
	// telephoneNumber and facsimileTelephoneNumber); FaxAttributes those of
	// them holding fax numbers (default facsimileTelephoneNumber).
	PhoneAttributes []string `json:"phone_attributes"`
	FaxAttributes   []string `json:"fax_attributes"`
	// BookFilter selects the phone book's entries (default: every entry
	// with a telephoneNumber or facsimileTelephoneNumber).
	BookFilter string `json:"book_filter"`
	// SendGroup, CallGroup and CallbackGroup are the DNs of groups
	// (groupOfNames member, groupOfUniqueNames uniqueMember or posixGroup
	// memberUid): members may send faxes, may place calls (and are the
	// click-to-call agents), are called back by the inbound callback
	// service. A group left empty grants nobody.
	SendGroup     string `json:"send_group"`
	CallGroup     string `json:"call_group"`
	CallbackGroup string `json:"callback_group"`
	// TTL is how long a copy of the directory is used before it is read
	// again (default 5m, 10s to 24h).
	TTL Duration `json:"ttl"`
	// Timeout bounds one connection and search (default 10s).
	Timeout Duration `json:"timeout"`
}

// Enabled tells whether a directory is configured.
func (l LDAP) Enabled() bool { return l.URL != "" }

// WithDefaults returns l with its empty keys set to their defaults.
func (l LDAP) WithDefaults() LDAP {
	if l.UserFilter == "" {
		l.UserFilter = DefaultLDAPUserFilter
	}
	if l.UserAttribute == "" {
		l.UserAttribute = "uid"
	}
	if len(l.PhoneAttributes) == 0 {
		l.PhoneAttributes = []string{"telephoneNumber", "facsimileTelephoneNumber"}
	}
	if len(l.FaxAttributes) == 0 {
		l.FaxAttributes = []string{"facsimileTelephoneNumber"}
	}
	if l.BookFilter == "" {
		l.BookFilter = DefaultLDAPBookFilter
	}
	if l.TTL <= 0 {
		l.TTL = Duration(DefaultLDAPTTL)
	}
	if l.Timeout <= 0 {
		l.Timeout = Duration(DefaultLDAPTimeout)
	}
	return l
}

// validate checks the ldap key (nothing when no URL is set).
func (l LDAP) validate() error {
	if !l.Enabled() {
		return nil
	}
	var errs []error
	u, err := url.Parse(l.URL)
	switch {
	case err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/"):
		errs = append(errs, errors.New("ldap.url: ldap://host[:port] or ldaps://host[:port], nothing else"))
	case u.Scheme == "ldaps" && l.StartTLS:
		errs = append(errs, errors.New("ldap.starttls: not with ldaps:// (already TLS)"))
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		errs = append(errs, errors.New("ldap.url: ldap:// or ldaps://"))
	}
	if l.BaseDN == "" {
		errs = append(errs, errors.New("ldap.base_dn is required"))
	}
	if (l.BindDN == "") != (l.BindPassword == "") {
		errs = append(errs, errors.New("ldap: bind_dn and bind_password go together (both empty: anonymous)"))
	}
	for _, f := range []struct{ key, v string }{{"user_filter", l.UserFilter}, {"book_filter", l.BookFilter}} {
		if f.v != "" && (!strings.HasPrefix(f.v, "(") || !strings.HasSuffix(f.v, ")")) {
			errs = append(errs, fmt.Errorf("ldap.%s %q: an LDAP filter in parentheses", f.key, f.v))
		}
	}
	if l.TTL != 0 && (l.TTL.D() < 10*time.Second || l.TTL.D() > 24*time.Hour) {
		errs = append(errs, errors.New("ldap.ttl: 10s to 24h"))
	}
	if l.Timeout < 0 {
		errs = append(errs, errors.New("ldap.timeout: positive"))
	}
	return errors.Join(errs...)
}
