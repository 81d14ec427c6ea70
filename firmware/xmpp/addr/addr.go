// Package addr checks the XMPP addresses (JIDs) faxbox sends notifications
// to and logs in as. It is apart from package xmpp so the configuration can
// use it without importing the client.
package addr

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"mellium.im/xmpp/jid"
)

// MaxLen is the longest address accepted, in bytes. RFC 7622 allows 3071;
// a notification address has no use for more than this.
const MaxLen = 512

// ErrInvalid is wrapped by every refusal of Check.
var ErrInvalid = errors.New("not a valid XMPP address")

// Check parses s as a bare JID (localpart@domainpart, no resource) and
// returns it in its canonical form (PRECIS-prepared: "Alice@Example.ORG"
// becomes "alice@example.org"). It refuses control characters (CR, LF, NUL,
// ...), white space and markup characters anywhere, addresses without a
// localpart, with a resource, or longer than MaxLen. The errors wrap
// ErrInvalid and never quote s (it may be hostile).
func Check(s string) (jid.JID, error) {
	if s == "" {
		return jid.JID{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(s) > MaxLen {
		return jid.JID{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLen)
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.IsSpace(r) || strings.ContainsRune(`<>&"'`, r) || r == unicode.ReplacementChar
	}); i >= 0 {
		return jid.JID{}, fmt.Errorf("%w: control, space or markup character at byte %d", ErrInvalid, i)
	}
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch {
	case j.Localpart() == "":
		return jid.JID{}, fmt.Errorf("%w: no user part (want name@domain)", ErrInvalid)
	case j.Resourcepart() != "":
		return jid.JID{}, fmt.Errorf("%w: has a resource (want name@domain without /resource)", ErrInvalid)
	case !strings.Contains(j.Domainpart(), ".") && j.Domainpart() != "localhost":
		return jid.JID{}, fmt.Errorf("%w: domain is not a host name", ErrInvalid)
	}
	return j, nil
}

// Nick checks a multi-user chat nickname: 1 to 64 characters, no control
// characters or markup.
func Nick(s string) error {
	if s == "" || len([]rune(s)) > 64 {
		return fmt.Errorf("%w: nickname must be 1 to 64 characters", ErrInvalid)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || strings.ContainsRune(`<>&"'/`, r) }) >= 0 {
		return fmt.Errorf("%w: nickname has control or markup characters", ErrInvalid)
	}
	return nil
}
