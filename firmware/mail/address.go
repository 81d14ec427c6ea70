package mail

import (
	"errors"
	"fmt"
	netmail "net/mail"
	"regexp"
	"strings"
)

// ErrAddress is wrapped by every refusal of an address.
var ErrAddress = errors.New("mail: invalid address")

// reDomainPart is a host name (labels of letters, digits and hyphens) or an
// address literal in brackets.
var reDomainPart = regexp.MustCompile(`^(([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])$`)

// CheckAddress validates one plain e-mail address (local@domain, ASCII, at
// most 254 bytes, no display name, comment or line break) and returns it as
// it will be used in SMTP commands and headers. Every address a message is
// sent to passes it, so no address can inject a command or header.
func CheckAddress(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrAddress, s, why)
	}
	switch {
	case s == "":
		return bad("empty")
	case len(s) > 254:
		return bad("longer than 254 bytes")
	case controlOrNonASCII(s):
		return bad("control characters or non-ASCII")
	case strings.ContainsAny(s, " <>()\","):
		return bad("a plain address is wanted (local@domain), without name, comment or list")
	}
	a, err := netmail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return bad("not an address (local@domain)")
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if local == "" || len(local) > 64 {
		return bad("the local part must be 1 to 64 bytes")
	}
	if !reDomainPart.MatchString(domain) {
		return bad("the domain is not a host name")
	}
	return s, nil
}

// controlOrNonASCII reports a byte outside printable ASCII.
func controlOrNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return true
		}
	}
	return false
}

// hasLineBreak reports CR, LF or NUL: what must never reach a header.
func hasLineBreak(s string) bool { return strings.ContainsAny(s, "\r\n\x00") }
