package config

import (
	"strings"
	"testing"
	"time"
)

// TestLDAPValidate: the ldap key is checked only with a URL; a good one
// passes (and needs no tokens), each mistake is named by its key.
func TestLDAPValidate(t *testing.T) {
	good := LDAP{URL: "ldaps://dc1.example.com", BaseDN: "dc=example,dc=com", BindDN: "cn=faxbox,dc=example,dc=com", BindPassword: "x"}
	c := Default()
	c.LDAP = good
	if err := c.Validate(); err != nil {
		t.Fatalf("a box with a directory and no tokens: %v", err)
	}
	for want, mod := range map[string]func(*LDAP){
		"ldap.url":       func(l *LDAP) { l.URL = "http://dc1.example.com" },
		"ldap://host":    func(l *LDAP) { l.URL = "ldap://user:pw@dc1.example.com" },
		"ldap.starttls":  func(l *LDAP) { l.StartTLS = true },
		"ldap.base_dn":   func(l *LDAP) { l.BaseDN = "" },
		"go together":    func(l *LDAP) { l.BindPassword = "" },
		"ldap.ttl":       func(l *LDAP) { l.TTL = Duration(time.Second) },
		"ldap.book_filt": func(l *LDAP) { l.BookFilter = "objectClass=*" },
	} {
		l := good
		mod(&l)
		c := Default()
		c.Tokens = []string{"a-good-token"}
		c.LDAP = l
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	none := Default()
	if err := none.Validate(); err == nil || !strings.Contains(err.Error(), "no API token") {
		t.Errorf("no tokens and no directory: %v", err)
	}
	d := LDAP{}.WithDefaults()
	if d.UserFilter != DefaultLDAPUserFilter || d.UserAttribute != "uid" || len(d.PhoneAttributes) != 2 || d.TTL.D() != DefaultLDAPTTL {
		t.Errorf("defaults: %+v", d)
	}
}
