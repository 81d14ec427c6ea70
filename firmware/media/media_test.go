package media

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/media/capture"
	"github.com/faxbox/faxbox/firmware/media/rtpstat"
	"github.com/faxbox/faxbox/firmware/media/udptl"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

type fakeSource []capture.FlowSnapshot

func (s fakeSource) Flows(match func(capture.FlowKey, capture.Kind) bool) []capture.FlowSnapshot {
	var out []capture.FlowSnapshot
	for _, f := range s {
		if match == nil || match(f.Key, f.Kind) {
			out = append(out, f)
		}
	}
	return out
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// pair is a flow each way between the box's port and the far end's,
// from first to last.
func pair(kind capture.Kind, box, far string, first, last time.Time, packets int) []capture.FlowSnapshot {
	mk := func(k capture.FlowKey) capture.FlowSnapshot {
		f := capture.FlowSnapshot{Key: k, Kind: kind, First: first, Last: last, Packets: packets}
		if kind == capture.KindUDPTL {
			f.UDPTL = udptl.Stats{Packets: packets, Gaps: 3, Recovered: 2, Unrecoverable: 1, RedundancyDepth: 3, LargestDatagram: 90}
		} else {
			f.RTP = rtpstat.Stats{SSRCs: []rtpstat.SSRCStats{{Packets: packets - 1, Expected: packets, Lost: 1, Jitter: 0.5, MaxJitter: 1.25}}}
		}
		return f
	}
	return []capture.FlowSnapshot{mk(capture.FlowKey{Src: ap(box), Dst: ap(far)}), mk(capture.FlowKey{Src: ap(far), Dst: ap(box)})}
}

func event(kv ...string) ami.Message {
	var m ami.Message
	for i := 0; i+1 < len(kv); i += 2 {
		m = append(m, ami.Header{Key: kv[i], Value: kv[i+1]})
	}
	return m
}

func stamp(t time.Time) string { return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000) }

var cfg = Config{UDPTL: []capture.PortRange{{First: 4000, Last: 4999}}, RTP: []capture.PortRange{{First: 10000, Last: 10999}}}

// TestTrackerTwoCalls: two T.38 calls up at once, each tied to its own
// audio port, and each to the UDPTL stream that began right after its own
// switch to T.38, although both began within the other's call.
func TestTrackerTwoCalls(t *testing.T) {
	var src fakeSource
	src = append(src, pair(capture.KindRTP, "10.0.0.1:10002", "10.0.0.9:20000", t0, t0.Add(4*time.Second), 200)...)
	src = append(src, pair(capture.KindRTP, "10.0.0.1:10010", "10.0.0.9:20002", t0.Add(time.Second), t0.Add(7*time.Second), 300)...)
	src = append(src, pair(capture.KindUDPTL, "10.0.0.1:4100", "10.0.0.9:30000", t0.Add(4050*time.Millisecond), t0.Add(60*time.Second), 500)...)
	src = append(src, pair(capture.KindUDPTL, "10.0.0.1:4200", "10.0.0.9:30002", t0.Add(7040*time.Millisecond), t0.Add(70*time.Second), 400)...)
	tr := New(cfg, src, "")
	tr.Handle(event("Event", "UserEvent", "UserEvent", "FaxboxMedia", "Uniqueid", "u1", "Attempt", "at_1",
		"RTPLocal", "0.0.0.0:10002", "RTPRemote", "10.0.0.9:20000", "Timestamp", stamp(t0.Add(100*time.Millisecond))))
	tr.Handle(event("Event", "UserEvent", "UserEvent", "FaxboxMedia", "Uniqueid", "u2", "Attempt", "at_2",
		"RTPLocal", "0.0.0.0:10010", "RTPRemote", "10.0.0.9:20002", "Timestamp", stamp(t0.Add(1100*time.Millisecond))))
	// the second call's switch is announced; the first one's event is lost
	tr.Handle(event("Event", "FAXStatus", "Uniqueid", "u2", "Status", "T.38 Negotiated", "Timestamp", stamp(t0.Add(7*time.Second))))

	r2 := tr.Report(dialler.Result{AttemptID: "at_2", Answered: true, Transport: "t38", EndedAt: t0.Add(71 * time.Second)})
	if r2 == nil || r2.T38 == nil || r2.T38.Sent.From != "10.0.0.1:4200" || r2.Tie != "rtp-port+t38-switch" {
		t.Fatalf("second call: %+v", r2)
	}
	if r2.SwitchToUDPTLMS == nil || *r2.SwitchToUDPTLMS != 40 {
		t.Errorf("switch to UDPTL: %v ms, want 40", r2.SwitchToUDPTLMS)
	}
	r1 := tr.Report(dialler.Result{AttemptID: "at_1", Answered: true, Transport: "t38", EndedAt: t0.Add(61 * time.Second)})
	if r1 == nil || r1.T38 == nil || r1.T38.Sent.From != "10.0.0.1:4100" || r1.T38.Received.To != "10.0.0.1:4100" || r1.Tie != "rtp-port+time" {
		t.Fatalf("first call: %+v", r1)
	}
	s := r1.T38.Sent
	if s.Packets != 500 || s.Gaps != 3 || s.Recovered != 2 || s.Unrecoverable != 1 || s.RedundancyDepth != 3 || s.LargestDatagram != 90 {
		t.Errorf("first call sent: %+v", s)
	}
	if r1.RTP == nil || r1.RTP.Sent.From != "10.0.0.1:10002" || r1.RTP.Sent.Packets != 200 || r1.RTP.Received.Lost != 1 || r1.RTP.Received.LossPct != 0.5 {
		t.Errorf("first call's audio: %+v", r1.RTP)
	}
	if r1.SwitchToUDPTLMS != nil {
		t.Errorf("switch time without the switch event: %d", *r1.SwitchToUDPTLMS)
	}
}

// TestTrackerG711: a call without UDPTL is a G.711 one; a later call on
// the same RTP port does not leak into it.
func TestTrackerG711(t *testing.T) {
	var src fakeSource
	src = append(src, pair(capture.KindRTP, "10.0.0.1:10002", "10.0.0.9:20000", t0, t0.Add(60*time.Second), 3000)...)
	// another call's T.38 stream, begun while this one was up
	src = append(src, pair(capture.KindUDPTL, "10.0.0.1:4100", "10.0.0.9:30000", t0.Add(58*time.Second), t0.Add(90*time.Second), 50)...)
	tr := New(cfg, src, "")
	tr.Handle(event("Event", "UserEvent", "UserEvent", "FaxboxMedia", "Attempt", "at_1", "RTPLocal", "10.0.0.1:10002", "Timestamp", stamp(t0.Add(200*time.Millisecond))))
	r := tr.Report(dialler.Result{AttemptID: "at_1", Answered: true, Transport: "g711", EndedAt: t0.Add(61 * time.Second)})
	if r == nil || r.Transport != "g711" || r.Tie != "rtp-port" || r.T38 != nil || r.RTP == nil || r.RTP.Sent.Packets != 3000 || r.RTP.Received.MaxJitterMS != 1.25 {
		t.Fatalf("G.711 call: %+v", r)
	}
	// The same port two hours later: the old flows are not this call's.
	tr.Handle(event("Event", "UserEvent", "UserEvent", "FaxboxMedia", "Attempt", "at_2", "RTPLocal", "10.0.0.1:10002", "Timestamp", stamp(t0.Add(2*time.Hour))))
	r = tr.Report(dialler.Result{AttemptID: "at_2", Answered: true, Transport: "g711", EndedAt: t0.Add(2*time.Hour + time.Minute)})
	if r == nil || r.Unavailable == "" || r.RTP != nil {
		t.Errorf("a later call on the same port: %+v", r)
	}
}

// TestTrackerUnavailable: without the capture every attempt on a SIP line
// says why it has no report; attempts without a media event (the test
// line, DAHDI) and unanswered ones get none.
func TestTrackerUnavailable(t *testing.T) {
	tr := New(cfg, nil, "media capture unavailable: operation not permitted")
	tr.Handle(event("Event", "UserEvent", "UserEvent", "FaxboxMedia", "Attempt", "at_1", "RTPLocal", "10.0.0.1:10002"))
	r := tr.Report(dialler.Result{AttemptID: "at_1", Answered: true, Transport: "t38"})
	if r == nil || r.Unavailable != "media capture unavailable: operation not permitted" || r.T38 != nil {
		t.Errorf("without capture: %+v", r)
	}
	for _, res := range []dialler.Result{
		{AttemptID: "at_2", Answered: true, Transport: "g711"}, // no FaxboxMedia event: not a SIP line
		{AttemptID: "at_3", Answered: true, Transport: "test"},
		{AttemptID: "at_1", Answered: false},
	} {
		if r := tr.Report(res); r != nil {
			t.Errorf("%+v: report %+v", res, r)
		}
	}
}

// sdpSource is a source that also read the calls' SIP dialogs.
type sdpSource struct {
	fakeSource
	dialogs []capture.Dialog
}

func (s sdpSource) DialogOf(local netip.AddrPort, from, until time.Time) (capture.Dialog, bool) {
	for _, d := range s.dialogs {
		for _, st := range d.Streams {
			if st.Kind == capture.StreamAudio && st.Local && st.Media.Port() == local.Port() && !d.Last.Before(from) && !d.First.After(until) {
				return d, true
			}
		}
	}
	return capture.Dialog{}, false
}

func (s sdpSource) T38Offer(to netip.AddrPort, from, until time.Time) (capture.Stream, bool) {
	for _, d := range s.dialogs {
		for _, st := range d.Streams {
			if st.Kind == capture.StreamT38 && st.Media == to && !st.At.Before(from) && !st.At.After(until) {
				return st, true
			}
		}
	}
	return capture.Stream{}, false
}

// dialog is a call's SIP dialog: the box's audio and T.38 streams and the
// far end's, declared from at on, with T38FaxMaxDatagram boxMax and farMax.
func dialog(id, boxAudio, farAudio, boxT38, farT38 string, boxMax, farMax int, at time.Time) capture.Dialog {
	st := func(k capture.StreamKind, addr string, local bool, max int, d time.Duration) capture.Stream {
		return capture.Stream{Kind: k, Media: ap(addr), Local: local, MaxDatagram: max, At: at.Add(d)}
	}
	return capture.Dialog{CallID: id, First: at, Last: at.Add(3 * time.Second), Streams: []capture.Stream{
		st(capture.StreamAudio, boxAudio, true, 0, 0), st(capture.StreamAudio, farAudio, false, 0, 100*time.Millisecond),
		st(capture.StreamT38, boxT38, true, boxMax, 3*time.Second), st(capture.StreamT38, farT38, false, farMax, 3*time.Second)}}
}

// TestTrackerSDPTie: two T.38 calls that switch at the same moment are each
// tied to their own UDPTL stream through their SIP dialogs (the stream
// nearest the switch would be the other call's), and each direction is
// held against the T38FaxMaxDatagram its receiver declared.
func TestTrackerSDPTie(t *testing.T) {
	src := sdpSource{}
	src.fakeSource = append(src.fakeSource, pair(capture.KindRTP, "10.0.0.1:10002", "10.0.0.9:20000", t0, t0.Add(4*time.Second), 200)...)
	src.fakeSource = append(src.fakeSource, pair(capture.KindRTP, "10.0.0.1:10010", "10.0.0.9:20002", t0, t0.Add(4*time.Second), 200)...)
	// Call 1's stream starts 1 ms after call 2's, both right at the switch.
	src.fakeSource = append(src.fakeSource, pair(capture.KindUDPTL, "10.0.0.1:4100", "10.0.0.9:30000", t0.Add(4001*time.Millisecond), t0.Add(60*time.Second), 500)...)
	src.fakeSource = append(src.fakeSource, pair(capture.KindUDPTL, "10.0.0.1:4200", "10.0.0.9:30002", t0.Add(4000*time.Millisecond), t0.Add(60*time.Second), 400)...)
	src.dialogs = []capture.Dialog{
		dialog("c2", "10.0.0.1:10010", "10.0.0.9:20002", "10.0.0.1:4200", "10.0.0.9:30002", 1400, 1400, t0),
		dialog("c1", "10.0.0.1:10002", "10.0.0.9:20000", "10.0.0.1:4100", "10.0.0.9:30000", 1400, 64, t0),
	}
	tr := New(cfg, src, "")
	for i, c := range []struct{ uid, attempt, rtp, far string }{{"u1", "at_1", "0.0.0.0:10002", "10.0.0.9:20000"}, {"u2", "at_2", "0.0.0.0:10010", "10.0.0.9:20002"}} {
		tr.Handle(event("Event", "UserEvent", "UserEvent", "FaxboxMedia", "Uniqueid", c.uid, "Attempt", c.attempt,
			"RTPLocal", c.rtp, "RTPRemote", c.far, "Timestamp", stamp(t0.Add(time.Duration(100+i)*time.Millisecond))))
		tr.Handle(event("Event", "FAXStatus", "Uniqueid", c.uid, "Status", "T.38 Negotiated", "Timestamp", stamp(t0.Add(4*time.Second))))
	}
	r1 := tr.Report(dialler.Result{AttemptID: "at_1", Answered: true, Transport: "t38", EndedAt: t0.Add(61 * time.Second)})
	r2 := tr.Report(dialler.Result{AttemptID: "at_2", Answered: true, Transport: "t38", EndedAt: t0.Add(61 * time.Second)})
	for _, c := range []struct {
		r          *job.MediaReport
		from       string
		sent, recv int
	}{{r1, "10.0.0.1:4100", 64, 1400}, {r2, "10.0.0.1:4200", 1400, 1400}} {
		if c.r == nil || c.r.T38 == nil || c.r.Tie != "rtp-port+sdp" || c.r.T38.Sent.From != c.from {
			t.Fatalf("want the stream from %s tied by SDP: %+v", c.from, c.r)
		}
		s, g := c.r.T38.Sent, c.r.T38.Received
		if s.MaxDatagram != c.sent || s.OverMaxDatagram != (s.LargestDatagram > c.sent) || g.MaxDatagram != c.recv || g.OverMaxDatagram {
			t.Errorf("%s: sent max %d (over %v), received max %d (over %v); want %d and %d (largest %d)",
				c.from, s.MaxDatagram, s.OverMaxDatagram, g.MaxDatagram, g.OverMaxDatagram, c.sent, c.recv, s.LargestDatagram)
		}
	}
	if !r1.T38.Sent.OverMaxDatagram {
		t.Errorf("90-octet datagrams to a far end that declared 64 must be flagged")
	}
}

// TestTrackerNegotiatedWithoutDialog: without the call's dialog (the
// box's audio declared elsewhere), the stream is tied by the switch and
// each direction still gets the size an SDP declared at its destination;
// offers from an earlier call, or none, give no limit.
func TestTrackerNegotiatedWithoutDialog(t *testing.T) {
	src := sdpSource{fakeSource: append(pair(capture.KindRTP, "10.0.0.1:10002", "10.0.0.9:20000", t0, t0.Add(4*time.Second), 200),
		pair(capture.KindUDPTL, "10.0.0.1:4100", "10.0.0.9:30000", t0.Add(4050*time.Millisecond), t0.Add(60*time.Second), 500)...)}
	report := func(ds ...capture.Dialog) *job.MediaReport {
		src.dialogs = ds
		tr := New(cfg, src, "")
		tr.Handle(event("Event", "UserEvent", "UserEvent", "FaxboxMedia", "Uniqueid", "u1", "Attempt", "at_1",
			"RTPLocal", "10.0.0.1:10002", "RTPRemote", "10.0.0.9:20000", "Timestamp", stamp(t0.Add(100*time.Millisecond))))
		tr.Handle(event("Event", "FAXStatus", "Uniqueid", "u1", "Status", "T.38 Negotiated", "Timestamp", stamp(t0.Add(4*time.Second))))
		r := tr.Report(dialler.Result{AttemptID: "at_1", Answered: true, Transport: "t38", EndedAt: t0.Add(61 * time.Second)})
		if r == nil || r.T38 == nil || r.Tie != "rtp-port+t38-switch" {
			t.Fatalf("want a T.38 report tied by the switch: %+v", r)
		}
		return r
	}
	// The dialog declared the audio on another port: not this call's.
	r := report(dialog("c1", "10.0.0.1:10999", "10.0.0.9:20000", "10.0.0.1:4100", "10.0.0.9:30000", 400, 64, t0))
	if s, g := r.T38.Sent, r.T38.Received; s.MaxDatagram != 64 || !s.OverMaxDatagram || g.MaxDatagram != 400 || g.OverMaxDatagram {
		t.Errorf("sent max %d over %v, received max %d over %v; want 64 over, 400 not", s.MaxDatagram, s.OverMaxDatagram, g.MaxDatagram, g.OverMaxDatagram)
	}
	for _, ds := range [][]capture.Dialog{
		{dialog("c0", "10.0.0.1:10999", "10.0.0.9:20000", "10.0.0.1:4100", "10.0.0.9:30000", 400, 64, t0.Add(-3*time.Minute))},
		nil,
	} {
		r := report(ds...)
		if r.T38.Sent.MaxDatagram != 0 || r.T38.Sent.OverMaxDatagram || r.T38.Received.MaxDatagram != 0 {
			t.Errorf("without this call's SDP: %+v", *r.T38)
		}
	}
}
