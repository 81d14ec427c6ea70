package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/faxbox/faxbox/firmware/xmpp/addr"
)

// XMPP is the account the box sends its notifications from (package
// xmpp): every job's outcome to Notify and Rooms, and to a job's own
// notify_xmpp. Without JID the box sends no XMPP messages.
type XMPP struct {
	// JID and Password log the box in (SASL over STARTTLS; the server's
	// certificate must be valid for the JID's domain).
	JID      string `json:"jid"`
	Password string `json:"password"`
	// Server is host:port to connect to instead of looking the JID's domain
	// up in DNS (SRV records, else port 5222).
	Server string `json:"server"`
	// CAFile is a PEM file of further CA certificates the server's
	// certificate may chain to (a private CA); the system's roots always
	// count.
	CAFile string `json:"ca_file"`
	// Rooms are multi-user chat rooms (bare JIDs) the box joins as Nick and
	// posts every outcome to; Notify are the JIDs every outcome is sent to.
	Rooms  []string `json:"rooms"`
	Notify []string `json:"notify"`
	Nick   string   `json:"nick"` // default "faxbox"
	// Timeout bounds connecting and one message (sent and acknowledged).
	Timeout Duration `json:"timeout"`
	// FirstRetry, doubling up to MaxBackoff, is the wait before
	// reconnecting and before a failed message is tried again; a message
	// not sent within GiveUpAfter is kept as a dead letter.
	FirstRetry  Duration `json:"first_retry"`
	MaxBackoff  Duration `json:"max_backoff"`
	GiveUpAfter Duration `json:"give_up_after"`
}

// Enabled reports whether an account is configured.
func (x XMPP) Enabled() bool { return x.JID != "" }

// defaultXMPP is the setting of a box without an xmpp section: no account.
func defaultXMPP() XMPP {
	return XMPP{Nick: "faxbox", Timeout: Duration(30 * time.Second), FirstRetry: Duration(5 * time.Second),
		MaxBackoff: Duration(10 * time.Minute), GiveUpAfter: Duration(72 * time.Hour)}
}

// validate checks the account, server address, rooms and recipients.
func (x XMPP) validate() error {
	var errs []error
	if !x.Enabled() {
		if len(x.Rooms)+len(x.Notify) > 0 || x.Server != "" {
			errs = append(errs, errors.New("xmpp: rooms, notify and server need xmpp.jid"))
		}
		return errors.Join(errs...)
	}
	if _, err := addr.Check(x.JID); err != nil {
		errs = append(errs, fmt.Errorf("xmpp.jid: %w", err))
	}
	if x.Password == "" {
		errs = append(errs, errors.New("xmpp.password is empty"))
	}
	if x.Server != "" {
		host, port, err := net.SplitHostPort(x.Server)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("xmpp.server %q: want host:port", x.Server))
		}
	}
	for i, r := range x.Rooms {
		if _, err := addr.Check(r); err != nil {
			errs = append(errs, fmt.Errorf("xmpp.rooms[%d]: %w", i, err))
		}
	}
	for i, n := range x.Notify {
		if _, err := addr.Check(n); err != nil {
			errs = append(errs, fmt.Errorf("xmpp.notify[%d]: %w", i, err))
		}
	}
	if err := addr.Nick(x.Nick); err != nil {
		errs = append(errs, fmt.Errorf("xmpp.nick: %w", err))
	}
	if x.Timeout <= 0 || x.FirstRetry <= 0 || x.MaxBackoff < x.FirstRetry || x.GiveUpAfter <= 0 {
		errs = append(errs, errors.New("xmpp: timeout, first_retry and give_up_after must be positive, max_backoff at least first_retry"))
	}
	return errors.Join(errs...)
}
