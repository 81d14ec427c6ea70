package xmpp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/xmpp/addr"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/dial"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"
)

// Conn is one logged-in XMPP session.
type Conn interface {
	// Send sends text to t (joining t first when it is a room) and returns
	// once the server has handled it. An error that is a stanza.Error
	// concerns this message only; any other breaks the session.
	Send(ctx context.Context, t Target, id, text string) error
	// Done is closed when the session has ended.
	Done() <-chan struct{}
	// Close ends the session.
	Close() error
}

// Dialer logs in and returns a session.
type Dialer func(ctx context.Context) (Conn, error)

// Dial returns the Dialer for the account of cfg: TCP to cfg.Server (else
// the JID's domain from DNS), STARTTLS verified against the system's roots
// and cfg.CAFile for the JID's domain, SASL (SCRAM-SHA-256, SCRAM-SHA-1,
// PLAIN, only ever over TLS), a resource bound by the server.
func Dial(cfg config.XMPP) (Dialer, error) {
	self, err := addr.Check(cfg.JID)
	if err != nil {
		return nil, fmt.Errorf("xmpp: jid: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("xmpp: ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("xmpp: ca_file %s: no PEM certificate", cfg.CAFile)
		}
	}
	tlsCfg := &tls.Config{ServerName: self.Domainpart(), RootCAs: roots, MinVersion: tls.VersionTLS12}
	return func(ctx context.Context) (Conn, error) {
		return dialSession(ctx, cfg, self, tlsCfg)
	}, nil
}

// dialSession connects, negotiates the stream and starts serving it.
func dialSession(ctx context.Context, cfg config.XMPP, self jid.JID, tlsCfg *tls.Config) (Conn, error) {
	var nc net.Conn
	var err error
	if cfg.Server != "" {
		nc, err = (&net.Dialer{}).DialContext(ctx, "tcp", cfg.Server)
	} else {
		nc, err = (&dial.Dialer{NoTLS: true}).Dial(ctx, "tcp", self)
	}
	if err != nil {
		return nil, fmt.Errorf("xmpp: connect: %w", err)
	}
	// Negotiation reads and writes the connection directly: bound it.
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	s, err := xmpp.NewClientSession(ctx, self, nc,
		xmpp.StartTLS(tlsCfg),
		xmpp.SASL("", cfg.Password, sasl.ScramSha256, sasl.ScramSha1, sasl.Plain),
		xmpp.BindResource())
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("xmpp: log in as %s: %w", self, err)
	}
	nc.SetDeadline(time.Time{})
	c := &session{s: s, nick: cfg.Nick, rooms: map[string]jid.JID{}, entering: map[string]chan struct{}{}, done: make(chan struct{})}
	m := mux.New(stanza.NSClient,
		ping.Handle(),
		mux.PresenceFunc(stanza.AvailablePresence, xml.Name{Space: muc.NSUser, Local: "x"}, c.entered),
		mux.PresenceFunc(stanza.UnavailablePresence, xml.Name{Space: muc.NSUser, Local: "x"}, c.left),
	)
	go func() {
		err := s.Serve(m)
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
		nc.Close()
	}()
	return c, nil
}

// session is a Conn on a mellium session. It joins rooms itself (XEP-0045
// with package muc's names): muc.Client's join hands the room's answer
// from the serving goroutine to the joining one without synchronisation.
type session struct {
	s    *xmpp.Session
	nick string

	mu       sync.Mutex
	rooms    map[string]jid.JID       // joined rooms (bare JID) → our occupant JID
	entering map[string]chan struct{} // occupant JID → closed once the room shows us in
	err      error                    // why Serve ended
	done     chan struct{}
	once     sync.Once
}

// entered notes the room's presence of an occupant JID being joined.
func (c *session) entered(p stanza.Presence, _ xmlstream.TokenReadEncoder) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.entering[p.From.String()]; ok {
		close(ch)
		delete(c.entering, p.From.String())
	}
	return nil
}

// left forgets a room we were removed from (kicked, room destroyed), so the
// next message joins it again.
func (c *session) left(p stanza.Presence, _ xmlstream.TokenReadEncoder) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if me, ok := c.rooms[p.From.Bare().String()]; ok && me.Equal(p.From) {
		delete(c.rooms, p.From.Bare().String())
	}
	return nil
}

func (c *session) Done() <-chan struct{} { return c.done }

// Err says why the session ended (nil while it runs, or when it ended
// cleanly).
func (c *session) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the stream and the connection.
func (c *session) Close() error {
	var err error
	c.once.Do(func() {
		err = c.s.Close()
		c.s.Conn().Close()
	})
	return err
}

// Send implements Conn.
func (c *session) Send(ctx context.Context, t Target, id, text string) error {
	typ := stanza.ChatMessage
	if t.Room {
		typ = stanza.GroupChatMessage
		if err := c.join(ctx, t.JID); err != nil {
			return err
		}
	}
	body := xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{Name: xml.Name{Local: "body"}})
	msg := stanza.Message{ID: id, To: t.JID, Type: typ}
	if err := c.s.Send(ctx, msg.Wrap(body)); err != nil {
		return c.broken(fmt.Errorf("xmpp: send to %s: %w", t.JID, err))
	}
	// The server handles a stream's stanzas in order: its answer to this
	// ping says the message was taken.
	if err := ping.Send(ctx, c.s, c.s.LocalAddr().Domain()); err != nil {
		var se stanza.Error
		if errors.As(err, &se) {
			return nil // an error answer is an answer all the same
		}
		return c.broken(fmt.Errorf("xmpp: server did not confirm the message to %s: %w", t.JID, err))
	}
	return nil
}

// join enters room as the configured nick (another one when that is
// taken), asking for no history.
func (c *session) join(ctx context.Context, room jid.JID) error {
	c.mu.Lock()
	_, ok := c.rooms[room.String()]
	c.mu.Unlock()
	if ok {
		return nil
	}
	nick := c.nick
	for try := 0; ; try++ {
		me, err := room.WithResource(nick)
		if err != nil {
			return stanza.Error{Type: stanza.Cancel, Condition: stanza.JIDMalformed}
		}
		err = c.enter(ctx, me)
		var se stanza.Error
		if errors.As(err, &se) && se.Condition == stanza.Conflict && try < 3 {
			nick = c.nick + "-" + randHex(2)
			continue
		}
		if errors.As(err, &se) {
			return fmt.Errorf("xmpp: join %s: %w", room, se)
		}
		if err != nil {
			return c.broken(fmt.Errorf("xmpp: join %s: %w", room, err))
		}
		c.mu.Lock()
		c.rooms[room.String()] = me
		c.mu.Unlock()
		return nil
	}
}

// enter sends our presence to occupant JID me (asking for no history) and
// waits for the room to show us in, or for its error.
func (c *session) enter(ctx context.Context, me jid.JID) error {
	in := make(chan struct{})
	c.mu.Lock()
	c.entering[me.String()] = in
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.entering, me.String())
		c.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	history := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "history"}, Attr: []xml.Attr{{Name: xml.Name{Local: "maxstanzas"}, Value: "0"}}})
	x := xmlstream.Wrap(history, xml.StartElement{Name: xml.Name{Space: muc.NS, Local: "x"}})
	errc := make(chan error, 1)
	go func() {
		// Answers only an error presence (a success times out with ctx).
		resp, err := c.s.SendPresence(ctx, stanza.Presence{ID: randHex(8), To: me}.Wrap(x))
		if err != nil {
			errc <- err
			return
		}
		defer resp.Close()
		if _, err := resp.Token(); err != nil {
			errc <- err
			return
		}
		se, err := stanza.UnmarshalError(resp)
		if err == nil {
			err = se
		}
		errc <- err
	}()
	select {
	case <-in:
		return nil
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// broken ends the session after a failure that leaves it unusable.
func (c *session) broken(err error) error {
	c.Close()
	return err
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
