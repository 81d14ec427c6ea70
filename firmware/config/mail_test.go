package config

import (
	"strings"
	"testing"
)

func TestMailValidation(t *testing.T) {
	ok := Default()
	ok.Tokens = []string{"token-123456"}
	ok.SMTP.Host, ok.SMTP.From = "relay.example.com", "fax@example.com"
	ok.SMTPListen.Addr = "127.0.0.1:2525"
	if err := ok.Validate(); err != nil {
		t.Fatalf("a valid mail setup refused: %v", err)
	}
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.SMTP.From = "" }, "smtp.from"},
		{func(c *Config) { c.SMTP.From = "Fax <fax@example.com>" }, "smtp.from"},
		{func(c *Config) { c.SMTP.StartTLS = "maybe" }, "smtp.starttls"},
		{func(c *Config) { c.SMTP.Port = 0 }, "smtp.port"},
		{func(c *Config) { c.SMTP.Host = "relay.example.com:587" }, "smtp.host"},
		{func(c *Config) { c.SMTP.Username = "box" }, "smtp.username"},
		{func(c *Config) { c.SMTPListen.Addr = "2525" }, "smtp_listen.addr"},
		{func(c *Config) { c.SMTPListen.Domain = "Fax Local" }, "smtp_listen.domain"},
		{func(c *Config) { c.SMTPListen.AllowIPs = []string{"lan"} }, "smtp_listen.allow_ips"},
		{func(c *Config) { c.SMTPListen.MaxRecipients = 0 }, "smtp_listen.max_recipients"},
		{func(c *Config) { c.SMTPListen.TLSCert = "/x.pem" }, "smtp_listen.tls_cert"},
	} {
		c2 := ok
		c.mod(&c2)
		if err := c2.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error naming %s, got %v", c.want, err)
		}
	}
	off := Default()
	off.Tokens = []string{"token-123456"}
	if err := off.Validate(); err != nil {
		t.Fatalf("defaults (no relay, no listener): %v", err)
	}
}
