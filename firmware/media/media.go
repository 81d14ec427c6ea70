// Package media makes the media report of every fax attempt from what the
// passive capture (package capture: an AF_PACKET socket on Asterisk's RTP
// and UDPTL port ranges, parsed by packages udptl and rtpstat) saw of the
// attempt's call.
//
// How a captured flow is tied to its attempt. Asterisk owns the media
// sockets and keeps no per-call UDPTL address that the dialplan or the
// manager interface could read, so the tie is made in steps:
//
//  1. The audio. Before SendFAX, the box's dialplan (faxbox-send) publishes
//     the call's RTP addresses on SIP lines: UserEvent FaxboxMedia with
//     Attempt, RTPLocal = CHANNEL(rtp,src) and RTPRemote =
//     CHANNEL(rtp,dest). The box-side RTP port is unique among the calls
//     up at that moment, so the RTP flows from and to that port, while
//     the attempt lasts, are the attempt's audio.
//  2. The call's SIP dialog, when the capture reads the box's SIP (UDP,
//     not TLS): the dialog (Call-ID) in which the box's SDP declared that
//     audio port also carries, after the re-INVITE, each end's m=image
//     udptl t38 stream. The UDPTL flows on the box's declared port (and,
//     where it matches, the far end's declared address) within the
//     attempt are the call's T.38 stream: Tie "rtp-port+sdp". This holds
//     however many calls switch to T.38 at once.
//  3. Without the dialog (SIP over TLS; a call through the box back to
//     itself), the switch to T.38, for a call that made it (the attempt's
//     result says t38, or the switch event came): res_fax's FAXStatus
//     event "T.38 Negotiated" of the same channel (Uniqueid) marks the
//     switch; without it, the call's last audio packet does. The call's
//     UDPTL stream is the pair of UDPTL flows on one box-side port whose
//     first packet is nearest to the switch (from 1 s before to 3 s after
//     it), within the attempt and claimed by no other attempt: Tie
//     "rtp-port+t38-switch" or "rtp-port+time". A call through the box
//     back to itself (the self-test: its far audio end is one of the box's
//     own RTP ports) takes only a stream between two of the box's own
//     UDPTL ports (the sending end's: the one that sent more), other
//     calls never such a stream. Two calls that switch within the same
//     few milliseconds may be told apart wrongly this way.
//
// Each UDPTL direction's negotiated T38FaxMaxDatagram (the limit its
// LargestDatagram is held against) is the one its receiver declared in
// its SDP: from the dialog; without one, the newest SDP seen on the box's
// SIP port, from a minute before the FaxboxMedia event to 2 s after the
// direction's first datagram, whose T.38 stream is at the direction's
// destination address (or, failing that, its port: an end behind NAT
// declares an address its datagrams do not arrive at). With SIP over TLS
// no SDP is seen, and the limit is left out of the report.
//
// A report whose call was up while the capture dropped packets (a flood
// over its rate limit, the kernel's drops, new flows refused; from 5 s
// before the media event to 1 s after the attempt's end) is marked
// CaptureIncomplete with CaptureDropped: its loss figures may be the
// capture's, not the path's.
//
// The report's Tie field names the method ("rtp-port", "rtp-port+t38-switch"
// or "rtp-port+time"). Without the capture (no CAP_NET_RAW) every attempt
// on a SIP line gets a report that says so in Unavailable; attempts on
// lines without IP media (DAHDI, the test line) get none.
package media

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/media/capture"
)

// Source is where the tracker reads flows from (a capture.Capture or a
// capture.Monitor fed otherwise).
type Source interface {
	Flows(match func(capture.FlowKey, capture.Kind) bool) []capture.FlowSnapshot
}

// Dropper is a source that dates the packets it did not look at (a
// capture.Capture or capture.Monitor): a report whose call was up while it
// dropped some says so (CaptureIncomplete).
type Dropper interface {
	DroppedBetween(from, to time.Time) capture.Drops
}

// Dialogs is a source that also reads the SDPs of the box's SIP messages
// (a capture.Capture or capture.Monitor watching the SIP port): a call's
// T.38 stream is then found from its SIP dialog, and a report's UDPTL
// directions carry their negotiated T38FaxMaxDatagram.
type Dialogs interface {
	DialogOf(local netip.AddrPort, from, until time.Time) (capture.Dialog, bool)
	T38Offer(to netip.AddrPort, from, until time.Time) (capture.Stream, bool)
}

// The SDP that negotiated a call's T.38 stream comes before the stream's
// first datagram: in a re-INVITE once the call is up, or, from a trunk
// that offers T.38 at once, in the first INVITE, a ring's time before the
// answer.
const (
	offerBefore = time.Minute // before the FaxboxMedia event
	offerAfter  = 2 * time.Second
)

// dropSlack widens an attempt's window for the drops the capture notes
// late: the kernel's are read once a second.
const dropSlack = time.Second

// Config of a Tracker.
type Config struct {
	// UDPTL and RTP are the box's own Asterisk port ranges: a flow's
	// box-side port is the one in a range.
	UDPTL, RTP []capture.PortRange
	Log        *slog.Logger
	// Now is the clock for events without a Timestamp (default time.Now).
	Now func() time.Time
}

// Tracker ties captured flows to fax attempts from Asterisk's manager
// events and makes their reports. It is safe for concurrent use.
type Tracker struct {
	cfg         Config
	src         Source
	unavailable string

	mu       sync.Mutex
	attempts map[string]*tie   // by attempt id
	byUID    map[string]string // channel Uniqueid -> attempt id
	claimed  map[claim]string  // UDPTL streams given to an attempt
}

// tie is what the events told about one attempt's call.
type tie struct {
	seen      time.Time // the FaxboxMedia event
	rtpLocal  netip.AddrPort
	rtpRemote netip.AddrPort
	t38At     time.Time // FAXStatus "T.38 Negotiated"
}

// claim is a UDPTL stream: its box-side port and its first packet.
type claim struct {
	port  uint16
	first time.Time
}

// keep is how long ties and claims are kept after they were made.
const keep = 2 * time.Hour

// New returns a tracker reading flows from src; src nil means there is no
// capture, for the reason given in unavailable (shown on every report).
func New(cfg Config, src Source, unavailable string) *Tracker {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if src == nil && unavailable == "" {
		unavailable = "media capture is not running"
	}
	return &Tracker{cfg: cfg, src: src, unavailable: unavailable, attempts: map[string]*tie{},
		byUID: map[string]string{}, claimed: map[claim]string{}}
}

// Source is the tracker's source of flows (nil without a capture), for
// its counters.
func (t *Tracker) Source() Source { return t.src }

// Unavailable says why there is no capture ("" when there is one).
func (t *Tracker) Unavailable() string { return t.unavailable }

// Handle takes the manager events the tracker needs (FaxboxMedia user
// events, FAXStatus); it never consumes them: other handlers still get
// every event.
func (t *Tracker) Handle(m ami.Message) {
	switch m.Event() {
	case "UserEvent":
		if m.Get("UserEvent") == "FaxboxMedia" {
			t.media(m)
		}
	case "FAXStatus":
		if m.Get("Status") == "T.38 Negotiated" {
			t.switched(m)
		}
	}
}

func (t *Tracker) stamp(m ami.Message) time.Time {
	if s := m.Get("Timestamp"); s != "" {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			sec := int64(f)
			return time.Unix(sec, int64((f-float64(sec))*1e9))
		}
	}
	return t.cfg.Now()
}

func (t *Tracker) media(m ami.Message) {
	id := m.Get("Attempt")
	if id == "" {
		return
	}
	at := t.stamp(m)
	tie := &tie{seen: at}
	tie.rtpLocal, _ = netip.ParseAddrPort(strings.TrimSpace(m.Get("RTPLocal")))
	tie.rtpRemote, _ = netip.ParseAddrPort(strings.TrimSpace(m.Get("RTPRemote")))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireLocked(at)
	t.attempts[id] = tie
	if uid := m.Get("Uniqueid"); uid != "" {
		t.byUID[uid] = id
	}
}

func (t *Tracker) switched(m ami.Message) {
	at := t.stamp(m)
	t.mu.Lock()
	defer t.mu.Unlock()
	if tie := t.attempts[t.byUID[m.Get("Uniqueid")]]; tie != nil && tie.t38At.IsZero() {
		tie.t38At = at
	}
}

// expireLocked forgets ties and claims older than keep.
func (t *Tracker) expireLocked(now time.Time) {
	for id, x := range t.attempts {
		if now.Sub(x.seen) > keep {
			delete(t.attempts, id)
		}
	}
	for uid, id := range t.byUID {
		if t.attempts[id] == nil {
			delete(t.byUID, uid)
		}
	}
	for c := range t.claimed {
		if now.Sub(c.first) > keep {
			delete(t.claimed, c)
		}
	}
}

// Report makes the media report of attempt r (called when its result
// came). It returns nil for attempts without IP media: not answered, the
// test line, or lines whose dialplan published no audio address while
// the capture runs.
func (t *Tracker) Report(r dialler.Result) *job.MediaReport {
	if !r.Answered || r.Transport == "test" {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	x := t.attempts[r.AttemptID]
	if x == nil {
		return nil
	}
	delete(t.attempts, r.AttemptID)
	if t.src == nil {
		return &job.MediaReport{Unavailable: t.unavailable}
	}
	if !x.rtpLocal.IsValid() || x.rtpLocal.Port() == 0 {
		return &job.MediaReport{Unavailable: "Asterisk published no RTP address for the call"}
	}
	end := r.EndedAt
	if end.IsZero() {
		end = t.cfg.Now()
	}
	return t.buildLocked(r.AttemptID, x, end, r.Transport == "t38")
}

// buildLocked reads the attempt's flows and turns them into its report;
// it looks for a UDPTL stream only when the call went to T.38 (t38, the
// result's transport, or the switch event).
func (t *Tracker) buildLocked(id string, x *tie, end time.Time, t38 bool) *job.MediaReport {
	port := x.rtpLocal.Port()
	from := x.seen.Add(-5 * time.Second) // the audio starts at the answer, before the dialplan runs
	rtp := t.src.Flows(func(k capture.FlowKey, kind capture.Kind) bool {
		return kind == capture.KindRTP && (k.Src.Port() == port || k.Dst.Port() == port)
	})
	var audio []capture.FlowSnapshot
	var lastAudio time.Time
	for _, f := range rtp {
		if f.Last.Before(from) || f.First.After(end) {
			continue // an earlier or later call on the same port
		}
		audio = append(audio, f)
		if f.Last.After(lastAudio) {
			lastAudio = f.Last
		}
	}
	rep := &job.MediaReport{Transport: "g711", Tie: "rtp-port"}
	anchor, how := x.t38At, "rtp-port+t38-switch"
	if anchor.IsZero() {
		anchor, how = lastAudio, "rtp-port+time"
	}
	if !t38 && x.t38At.IsZero() {
		anchor = time.Time{}
	}
	s, r, ok := t.dialogStreamLocked(id, x, end, !anchor.IsZero(), rep)
	if ok {
		how = "rtp-port+sdp"
	} else if s, r, ok = t.udptlLocked(id, x.seen, anchor, end, t.loop(x)); ok {
		rep.T38 = &job.T38Report{Sent: udptlDir(s), Received: udptlDir(r)}
		t.negotiated(&rep.T38.Sent, s, x.seen)
		t.negotiated(&rep.T38.Received, r, x.seen)
	}
	if ok {
		rep.Transport, rep.Tie = "t38", how
		if !x.t38At.IsZero() {
			ms := firstOf(s, r).Sub(x.t38At).Milliseconds()
			rep.SwitchToUDPTLMS = &ms
		}
	}
	if len(audio) > 0 {
		rep.RTP = rtpReport(audio, port)
	}
	var dropped uint64
	if d, ok := t.src.(Dropper); ok {
		dropped = d.DroppedBetween(from, end.Add(dropSlack)).Total()
	}
	if rep.T38 == nil && rep.RTP == nil {
		why := fmt.Sprintf("no media packets seen on RTP port %d during the call", port)
		if dropped > 0 {
			why += fmt.Sprintf(" (the capture dropped %d packets meanwhile: a flood on the media ports)", dropped)
		}
		return &job.MediaReport{Unavailable: why}
	}
	rep.CaptureIncomplete, rep.CaptureDropped = dropped > 0, dropped
	return rep
}

// negotiated sets d's MaxDatagram from the SDP in which the receiver of
// flow f (its destination address) declared the stream, when the source
// saw one.
func (t *Tracker) negotiated(d *job.UDPTLDirection, f capture.FlowSnapshot, seen time.Time) {
	o, ok := t.src.(Dialogs)
	if !ok || f.Packets == 0 {
		return
	}
	if off, found := o.T38Offer(f.Key.Dst, seen.Add(-offerBefore), f.First.Add(offerAfter)); found {
		limit(d, off)
	}
}

// limit holds d against the T38FaxMaxDatagram its receiver declared in
// stream st (none when it declared none).
func limit(d *job.UDPTLDirection, st capture.Stream) {
	if st.MaxDatagram > 0 && d.Packets > 0 {
		d.MaxDatagram = st.MaxDatagram
		d.OverMaxDatagram = d.LargestDatagram > st.MaxDatagram
	}
}
