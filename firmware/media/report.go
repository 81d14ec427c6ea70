package media

import (
	"math"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/media/capture"
)

func inRanges(rs []capture.PortRange, p uint16) bool {
	for _, r := range rs {
		if r.Contains(p) {
			return true
		}
	}
	return false
}

// stream is a candidate UDPTL stream: the flows on one box-side port.
type stream struct {
	sent, recv capture.FlowSnapshot
	first      time.Time
}

// Bounds of a call's first UDPTL packet around its switch to T.38 (the
// FAXStatus event, or its last audio packet).
const (
	switchBefore = time.Second
	switchAfter  = 3 * time.Second
)

// loop reports whether the call of x goes through the box back to itself
// (the self-test): its far audio end is one of the box's own RTP ports,
// on a loopback address or the call's own local one.
func (t *Tracker) loop(x *tie) bool {
	r := x.rtpRemote
	return r.IsValid() && inRanges(t.cfg.RTP, r.Port()) && (r.Addr().IsLoopback() || r.Addr() == x.rtpLocal.Addr())
}

// isLoop reports whether s is a stream between two of the box's own UDPTL
// ports on one address.
func (t *Tracker) isLoop(s *stream) bool {
	for _, f := range []capture.FlowSnapshot{s.sent, s.recv} {
		if f.Packets > 0 {
			return inRanges(t.cfg.UDPTL, f.Key.Src.Port()) && inRanges(t.cfg.UDPTL, f.Key.Dst.Port()) && f.Key.Src.Addr() == f.Key.Dst.Addr()
		}
	}
	return false
}

// udptlLocked picks the attempt's UDPTL stream (see the package doc): of
// the streams that are not another attempt's and started within the call
// (seen to end) and around its switch to T.38 (anchor), the one starting
// nearest to anchor; a loop call (the self-test) only loop streams,
// other calls none of those. A zero anchor (the call did not go to T.38)
// picks none. It claims the stream for id.
func (t *Tracker) udptlLocked(id string, seen, anchor, end time.Time, loop bool) (sent, recv capture.FlowSnapshot, ok bool) {
	if anchor.IsZero() {
		return sent, recv, false
	}
	streams := map[uint16]*stream{}
	for _, f := range t.src.Flows(func(_ capture.FlowKey, k capture.Kind) bool { return k == capture.KindUDPTL }) {
		out := inRanges(t.cfg.UDPTL, f.Key.Src.Port())
		port := f.Key.Dst.Port()
		if out {
			port = f.Key.Src.Port()
		} else if !inRanges(t.cfg.UDPTL, port) {
			continue
		}
		s := streams[port]
		if s == nil {
			s = &stream{first: f.First}
			streams[port] = s
		}
		if f.First.Before(s.first) {
			s.first = f.First
		}
		if out {
			s.sent = f
		} else {
			s.recv = f
		}
		// A loop through the box itself (the self-test): both ends are
		// the box's, so the flow is also the other end's received one.
		if d := f.Key.Dst.Port(); out && inRanges(t.cfg.UDPTL, d) && f.Key.Src.Addr() == f.Key.Dst.Addr() {
			ls := streams[d]
			if ls == nil {
				ls = &stream{first: f.First}
				streams[d] = ls
			}
			if f.First.Before(ls.first) {
				ls.first = f.First
			}
			ls.recv = f
		}
	}
	var best *stream
	var bestPort uint16
	bestD := time.Duration(math.MaxInt64)
	for port, s := range streams {
		other, taken := t.claimed[claim{port, s.first}]
		t.cfg.Log.Debug("media: UDPTL stream", "attempt", id, "port", port, "first", s.first, "claimed_by", other,
			"seen", seen, "anchor", anchor, "end", end)
		if s.first.Before(seen.Add(-time.Second)) || s.first.After(end.Add(time.Second)) ||
			s.first.Before(anchor.Add(-switchBefore)) || s.first.After(anchor.Add(switchAfter)) {
			continue
		}
		if taken && other != id || t.isLoop(s) != loop {
			continue
		}
		d := s.first.Sub(anchor)
		if d < 0 {
			d = -d
		}
		if d < bestD {
			best, bestPort, bestD = s, port, d
		}
	}
	if best == nil {
		return sent, recv, false
	}
	// On a loop through the box both ends' streams mirror each other; the
	// sending attempt's end is the one that sent the page data (more
	// datagrams).
	if p := best.recv.Key.Src.Port(); best.recv.Packets > best.sent.Packets && inRanges(t.cfg.UDPTL, p) &&
		best.recv.Key.Src.Addr() == best.recv.Key.Dst.Addr() && streams[p] != nil {
		best, bestPort = streams[p], p
	}
	t.claimed[claim{bestPort, best.first}] = id
	return best.sent, best.recv, true
}

// firstOf is the earliest first packet of the flows that exist.
func firstOf(fs ...capture.FlowSnapshot) time.Time {
	var t time.Time
	for _, f := range fs {
		if f.Packets > 0 && (t.IsZero() || f.First.Before(t)) {
			t = f.First
		}
	}
	return t
}

func udptlDir(f capture.FlowSnapshot) job.UDPTLDirection {
	if f.Packets == 0 {
		return job.UDPTLDirection{}
	}
	u := f.UDPTL
	return job.UDPTLDirection{
		From: f.Key.Src.String(), To: f.Key.Dst.String(),
		Packets: u.Packets, Malformed: u.Malformed,
		Gaps: u.Gaps, Recovered: u.Recovered, Unrecoverable: u.Unrecoverable,
		LongestBurst: u.LongestBurst, RedundancyDepth: u.RedundancyDepth, LargestDatagram: u.LargestDatagram,
		PageJitterMS: ms(u.PageJitter), FCSBad: u.FCSBad,
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

// rtpReport sums the audio flows from and to the box's RTP port port.
func rtpReport(flows []capture.FlowSnapshot, port uint16) *job.RTPReport {
	var r job.RTPReport
	for _, f := range flows {
		d := &r.Received
		if f.Key.Src.Port() == port {
			d = &r.Sent
		}
		d.From, d.To = f.Key.Src.String(), f.Key.Dst.String()
		d.Packets += f.Packets // every datagram (RFC 3550's counts leave out each source's first)
		for _, s := range f.RTP.SSRCs {
			d.Expected += s.Expected
			d.Lost += s.Lost
			d.Resets += s.Resets
			d.JitterMS = max(d.JitterMS, round3(s.Jitter))
			d.MaxJitterMS = max(d.MaxJitterMS, round3(s.MaxJitter))
		}
	}
	for _, d := range []*job.RTPDirection{&r.Sent, &r.Received} {
		if d.Expected > 0 {
			d.LossPct = round3(100 * float64(d.Lost) / float64(d.Expected))
		}
	}
	return &r
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// dialogStreamLocked finds the call's UDPTL stream from its SIP dialog
// (see the package doc, step 2) when the call went to T.38 (want) and the
// source reads the box's SIP; on success it sets rep.T38 with each
// direction's negotiated T38FaxMaxDatagram and claims the stream for id.
// A loop call through the box itself is left to udptlLocked.
func (t *Tracker) dialogStreamLocked(id string, x *tie, end time.Time, want bool, rep *job.MediaReport) (sent, recv capture.FlowSnapshot, ok bool) {
	dl, isD := t.src.(Dialogs)
	if !want || !isD || t.loop(x) {
		return sent, recv, false
	}
	d, found := dl.DialogOf(x.rtpLocal, x.seen.Add(-offerBefore), end)
	if !found {
		return sent, recv, false
	}
	until := end.Add(time.Second)
	box, okBox := d.Newest(capture.StreamT38, true, until)
	far, okFar := d.Newest(capture.StreamT38, false, until)
	if !okBox {
		return sent, recv, false
	}
	port := box.Media.Port()
	from := x.seen.Add(-time.Second)
	// The flows on the box's declared port within the call: the newest
	// each way, the one with the far end's declared address first.
	atFar := func(f capture.FlowSnapshot) bool { return okFar && (f.Key.Src == far.Media || f.Key.Dst == far.Media) }
	better := func(f, cur capture.FlowSnapshot) bool {
		if cur.Packets == 0 {
			return true
		}
		if atFar(f) != atFar(cur) {
			return atFar(f)
		}
		return f.First.After(cur.First)
	}
	for _, f := range t.src.Flows(func(k capture.FlowKey, kind capture.Kind) bool {
		return kind == capture.KindUDPTL && (k.Src.Port() == port || k.Dst.Port() == port)
	}) {
		if f.First.Before(from) || f.First.After(until) {
			continue
		}
		switch {
		case f.Key.Src.Port() == port && better(f, sent):
			sent = f
		case f.Key.Dst.Port() == port && f.Key.Src.Port() != port && better(f, recv):
			recv = f
		}
	}
	if sent.Packets == 0 && recv.Packets == 0 {
		return sent, recv, false
	}
	rep.T38 = &job.T38Report{Sent: udptlDir(sent), Received: udptlDir(recv)}
	if okFar {
		limit(&rep.T38.Sent, far)
	}
	limit(&rep.T38.Received, box)
	t.claimed[claim{port, firstOf(sent, recv)}] = id
	return sent, recv, true
}
