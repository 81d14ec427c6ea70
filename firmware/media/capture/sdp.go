package capture

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// StreamKind is what an SDP media line declares.
type StreamKind uint8

const (
	StreamAudio StreamKind = iota + 1 // m=audio (RTP)
	StreamT38                         // m=image … udptl t38
)

// Stream is one media stream an SDP declared: the address its sender
// takes the stream's datagrams on (the connection address and the m=
// line's port) and, for T.38, the T38FaxMaxDatagram it declared: the
// largest UDPTL payload that end accepts (0: not declared). Datagrams
// sent to Media must not be larger.
type Stream struct {
	Kind        StreamKind
	Media       netip.AddrPort
	MaxDatagram int
	// Local: the box sent the SDP (its SIP message came from the box's
	// SIP port); otherwise the far end did.
	Local bool
	At    time.Time // when the message was captured
}

// SDP is what ScanSDP read of one SIP message.
type SDP struct {
	CallID  string
	Streams []Stream // audio and T.38 streams with a port, in order
}

// ScanSDP reads the Call-ID of a SIP message and the audio and T.38
// streams of its SDP body. It reads only the lines it needs; a malformed
// line is skipped, never trusted; a declined stream (port 0) or one
// without a usable connection address is left out. (A hand-written
// scanner: github.com/pion/sdp refuses the m=image media type T.38 uses.)
func ScanSDP(msg []byte) SDP {
	var out SDP
	i := bytes.Index(msg, []byte("\r\n\r\n"))
	if i < 0 {
		return out
	}
	out.CallID = callID(msg[:i])
	var session, media netip.Addr
	var cur Stream // the current m= line's; Kind 0: none of ours
	port := 0
	inMedia := false // past the first m= line
	flush := func() {
		addr := media
		if !addr.IsValid() {
			addr = session
		}
		if cur.Kind != 0 && port > 0 && addr.IsValid() {
			cur.Media = netip.AddrPortFrom(addr, uint16(port))
			out.Streams = append(out.Streams, cur)
		}
		cur, port, media = Stream{}, 0, netip.Addr{}
	}
	for _, line := range bytes.Split(msg[i+4:], []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		switch {
		case bytes.HasPrefix(line, []byte("m=")):
			flush()
			cur.Kind, port = mediaLine(line[2:])
			inMedia = true
		case bytes.HasPrefix(line, []byte("c=")):
			if addr := connAddr(line[2:]); inMedia {
				media = addr
			} else {
				session = addr
			}
		case cur.Kind == StreamT38 && bytes.HasPrefix(line, []byte("a=")):
			name, value, ok := bytes.Cut(line[2:], []byte(":"))
			if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("T38FaxMaxDatagram")) {
				if n, err := strconv.Atoi(string(bytes.TrimSpace(value))); err == nil && n > 0 && n <= 65507 {
					cur.MaxDatagram = n
				}
			}
		}
	}
	flush()
	return out
}

// callID is the Call-ID (or compact i) header's value in a SIP message's
// header block; "" without one. Folded headers are not followed.
func callID(head []byte) string {
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		if bytes.EqualFold(name, []byte("Call-ID")) || bytes.EqualFold(name, []byte("i")) {
			if v := bytes.TrimSpace(value); len(v) > 0 && len(v) <= 256 {
				return string(v)
			}
		}
	}
	return ""
}

// mediaLine is the kind and port of an m= line's value: "audio <port>
// RTP/AVP …" or "image <port> udptl t38"; kind 0 for any other.
func mediaLine(v []byte) (StreamKind, int) {
	f := bytes.Fields(v)
	if len(f) < 3 {
		return 0, 0
	}
	var kind StreamKind
	switch {
	case string(f[0]) == "audio" && bytes.HasPrefix(bytes.ToUpper(f[2]), []byte("RTP/")):
		kind = StreamAudio
	case string(f[0]) == "image" && len(f) >= 4 && bytes.EqualFold(f[2], []byte("udptl")) && bytes.EqualFold(f[3], []byte("t38")):
		kind = StreamT38
	default:
		return 0, 0
	}
	p, err := strconv.Atoi(string(f[1]))
	if err != nil || p < 0 || p > 65535 {
		return 0, 0
	}
	return kind, p
}

// connAddr is the address of a c= line's value "IN IP4 <addr>" (or IP6).
func connAddr(v []byte) netip.Addr {
	f := bytes.Fields(v)
	if len(f) < 3 || string(f[0]) != "IN" {
		return netip.Addr{}
	}
	a, _, _ := bytes.Cut(f[2], []byte("/")) // a multicast TTL
	addr, err := netip.ParseAddr(string(a))
	if err != nil {
		return netip.Addr{}
	}
	return addr
}

// Dialog is what the SDPs of one SIP dialog (one Call-ID) declared, both
// ends' streams in the order seen (a re-INVITE to T.38 adds the T.38
// streams after the audio ones).
type Dialog struct {
	CallID      string
	Streams     []Stream
	First, Last time.Time
}

// Bounds of the dialog table: the dialogs seen most recently, each with
// its newest streams.
const (
	maxDialogs = 256
	maxStreams = 16
)

// dialogs is the monitor's bounded table of SIP dialogs.
type dialogs map[string]*Dialog

// add notes the streams of one message (local: sent by the box) seen at
// at; a repeat of a stream already noted (a retransmission) is not noted
// again.
func (ds dialogs) add(s SDP, local bool, at time.Time) {
	if s.CallID == "" || len(s.Streams) == 0 {
		return
	}
	d := ds[s.CallID]
	if d == nil {
		if len(ds) >= maxDialogs {
			ds.evict()
		}
		d = &Dialog{CallID: s.CallID, First: at}
		ds[s.CallID] = d
	}
	d.Last = at
	for _, st := range s.Streams {
		st.Local, st.At = local, at
		if d.has(st) {
			continue
		}
		if len(d.Streams) == maxStreams {
			d.Streams = append(d.Streams[:0], d.Streams[1:]...)
		}
		d.Streams = append(d.Streams, st)
	}
}

func (d *Dialog) has(st Stream) bool {
	for _, s := range d.Streams {
		if s.Kind == st.Kind && s.Media == st.Media && s.MaxDatagram == st.MaxDatagram && s.Local == st.Local {
			return true
		}
	}
	return false
}

// evict forgets the dialog seen least recently.
func (ds dialogs) evict() {
	var old *Dialog
	for _, d := range ds {
		if old == nil || d.Last.Before(old.Last) {
			old = d
		}
	}
	if old != nil {
		delete(ds, old.CallID)
	}
}

// Newest returns the newest stream of kind k one end declared (local:
// the box) at or before until; ok is false when there is none.
func (d Dialog) Newest(k StreamKind, local bool, until time.Time) (Stream, bool) {
	for i := len(d.Streams) - 1; i >= 0; i-- {
		if s := d.Streams[i]; s.Kind == k && s.Local == local && !s.At.After(until) {
			return s, true
		}
	}
	return Stream{}, false
}

// DialogOf returns the SIP dialog, active from from to until, in which
// the box declared its audio at local (an unspecified address matches
// any address with the port: Asterisk names its RTP socket by the bind
// address). ok is false without one, e.g. for SIP over TLS.
func (m *Monitor) DialogOf(local netip.AddrPort, from, until time.Time) (Dialog, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *Dialog
	for _, d := range m.dialogs {
		if d.Last.Before(from) || d.First.After(until) || (best != nil && d.Last.Before(best.Last)) {
			continue
		}
		for _, s := range d.Streams {
			if s.Kind == StreamAudio && s.Local && s.Media.Port() == local.Port() &&
				(s.Media.Addr() == local.Addr() || local.Addr().IsUnspecified()) {
				best = d
				break
			}
		}
	}
	if best == nil {
		return Dialog{}, false
	}
	return best.clone(), true
}

// clone is a copy of d that shares nothing with the monitor's table.
func (d *Dialog) clone() Dialog {
	c := *d
	c.Streams = slices.Clone(d.Streams)
	return c
}

// T38Offer returns the newest T.38 stream declared at to, by an SDP seen
// from from to until, with its T38FaxMaxDatagram; failing that, the
// newest one for its port on another address (an end behind NAT declares
// an address its datagrams do not arrive at).
func (m *Monitor) T38Offer(to netip.AddrPort, from, until time.Time) (Stream, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var exact, byPort Stream
	for _, d := range m.dialogs {
		for _, s := range d.Streams {
			if s.Kind != StreamT38 || s.MaxDatagram == 0 || s.At.Before(from) || s.At.After(until) {
				continue
			}
			if s.Media == to && s.At.After(exact.At) {
				exact = s
			} else if s.Media.Port() == to.Port() && s.At.After(byPort.At) {
				byPort = s
			}
		}
	}
	switch {
	case exact.Kind != 0:
		return exact, true
	case byPort.Kind != 0:
		return byPort, true
	}
	return Stream{}, false
}

// Dialogs returns a copy of the dialogs the monitor keeps.
func (m *Monitor) Dialogs() []Dialog {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Dialog, 0, len(m.dialogs))
	for _, d := range m.dialogs {
		out = append(out, d.clone())
	}
	return out
}
