package capture

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// sipMsg is a SIP message with body as its SDP (lines joined by CRLF), in
// the shape Asterisk's PJSIP sends a T.38 re-INVITE.
func sipMsg(body ...string) []byte {
	return sipIn("c1", body...)
}

// sipIn is sipMsg in dialog callID.
func sipIn(callID string, body ...string) []byte {
	sdp := strings.Join(body, "\r\n") + "\r\n"
	return []byte("INVITE sip:100@127.0.0.1:39061 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:39060;rport;branch=z9hG4bKPj1\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"Content-Type: application/sdp\r\n" +
		fmt.Sprintf("Content-Length:   %d\r\n\r\n", len(sdp)) + sdp)
}

// asteriskT38 is the SDP of a T.38 re-INVITE as Asterisk 22 sends it.
var asteriskT38 = []string{
	"v=0", "o=- 1468524425 1468524427 IN IP4 127.0.0.1", "s=Asterisk", "c=IN IP4 127.0.0.1", "t=0 0",
	"m=image 4012 udptl t38", "a=T38FaxVersion:0", "a=T38MaxBitRate:14400", "a=T38FaxRateManagement:transferredTCF",
	"a=T38FaxMaxDatagram:400", "a=T38FaxUdpEC:t38UDPRedundancy",
}

func TestScanSDP(t *testing.T) {
	for _, c := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"asterisk re-INVITE", sipMsg(asteriskT38...), "[t38 127.0.0.1:4012/400]"},
		{"audio and T.38, media-level c= wins", sipMsg("v=0", "c=IN IP4 10.0.0.1", "m=audio 10002 RTP/AVP 0", "c=IN IP4 10.0.0.7",
			"m=image 4002 udptl t38", "c=IN IP4 10.0.0.2", "a=t38faxmaxdatagram: 272"), "[audio 10.0.0.7:10002/0 t38 10.0.0.2:4002/272]"},
		{"session c= after an audio section's own", sipMsg("v=0", "c=IN IP4 10.0.0.1", "m=audio 10002 RTP/SAVP 0", "c=IN IP4 10.0.0.7",
			"m=image 4002 udptl t38", "a=T38FaxMaxDatagram:160"), "[audio 10.0.0.7:10002/0 t38 10.0.0.1:4002/160]"},
		{"IPv6", sipMsg("v=0", "c=IN IP6 2001:db8::5", "m=image 4100 UDPTL T38", "a=T38FaxMaxDatagram:1400"), "[t38 [2001:db8::5]:4100/1400]"},
		{"two streams", sipMsg("v=0", "c=IN IP4 10.0.0.1", "m=image 4002 udptl t38", "a=T38FaxMaxDatagram:400",
			"m=image 4004 udptl t38", "a=T38FaxMaxDatagram:200"), "[t38 10.0.0.1:4002/400 t38 10.0.0.1:4004/200]"},
		{"LF line ends", []byte("SIP/2.0 200 OK\r\nCall-ID: abc\r\n\r\nv=0\nc=IN IP4 10.0.0.3\nm=image 4006 udptl t38\na=T38FaxMaxDatagram:300\n"), "[t38 10.0.0.3:4006/300]"},
		{"declined stream", sipMsg("v=0", "c=IN IP4 10.0.0.1", "m=image 0 udptl t38", "a=T38FaxMaxDatagram:400"), "[]"},
		{"no max datagram", sipMsg("v=0", "c=IN IP4 10.0.0.1", "m=image 4002 udptl t38", "a=T38FaxVersion:0"), "[t38 10.0.0.1:4002/0]"},
		{"audio only, no T.38 attribute read", sipMsg("v=0", "c=IN IP4 10.0.0.1", "m=audio 10002 RTP/AVP 0", "a=T38FaxMaxDatagram:400"), "[audio 10.0.0.1:10002/0]"},
		{"video is not ours", sipMsg("v=0", "c=IN IP4 10.0.0.1", "m=video 10004 RTP/AVP 96"), "[]"},
		{"max before any m=", sipMsg("v=0", "c=IN IP4 10.0.0.1", "a=T38FaxMaxDatagram:400", "m=image 4002 udptl t38"), "[t38 10.0.0.1:4002/0]"},
		{"bad numbers", sipMsg("v=0", "c=IN IP4 10.0.0.1", "m=image 99999 udptl t38", "a=T38FaxMaxDatagram:400",
			"m=image 4002 udptl t38", "a=T38FaxMaxDatagram:-5", "m=image 4004 udptl t38", "a=T38FaxMaxDatagram:70000"), "[t38 10.0.0.1:4002/0 t38 10.0.0.1:4004/0]"},
		{"bad address", sipMsg("v=0", "c=IN IP4 example.com", "m=image 4002 udptl t38", "a=T38FaxMaxDatagram:400"), "[]"},
		{"no body", []byte("OPTIONS sip:x SIP/2.0\r\nVia: m=image 4002 udptl t38\r\n"), "[]"},
		{"empty", nil, "[]"},
	} {
		var got []string
		sdp := ScanSDP(c.msg)
		for _, o := range sdp.Streams {
			got = append(got, fmt.Sprintf("%s %s/%d", map[StreamKind]string{StreamAudio: "audio", StreamT38: "t38"}[o.Kind], o.Media, o.MaxDatagram))
		}
		if s := fmt.Sprint(got); s != c.want {
			t.Errorf("%s: %s, want %s", c.name, s, c.want)
		}
		if len(sdp.Streams) > 0 && sdp.CallID == "" {
			t.Errorf("%s: no Call-ID", c.name)
		}
	}
	if id := ScanSDP([]byte("INVITE x SIP/2.0\r\ni: compact@host\r\n\r\n")).CallID; id != "compact@host" {
		t.Errorf("compact Call-ID: %q", id)
	}
}

// TestMonitorDialogs: SIP on the box's port is read for its dialogs, not
// made flows; a call's dialog is found by the box's audio port, with
// each end's T.38 stream; retransmissions are noted once; the newest
// offer within a window is found by address or else by port; the tables
// are bounded.
func TestMonitorDialogs(t *testing.T) {
	m := NewMonitor(MonitorConfig{UDPTL: []PortRange{{4000, 4999}}, SIP: []PortRange{{5060, 5060}}})
	sip := func(sport, dport uint16, msg []byte, at time.Time) {
		b := ip4(17, 5, 0, sport, dport, len(msg))
		copy(b[28:], msg)
		m.Handle(b, at)
	}
	audio := func(id string, port int) []byte {
		return sipIn(id, "v=0", "c=IN IP4 127.0.0.1", fmt.Sprintf("m=audio %d RTP/AVP 0", port))
	}
	image := func(id string, port, max int) []byte {
		return sipIn(id, "v=0", "c=IN IP4 127.0.0.1", fmt.Sprintf("m=image %d udptl t38", port), fmt.Sprintf("a=T38FaxMaxDatagram:%d", max))
	}
	sip(5060, 5061, audio("c1", 10002), t0)                        // the box's INVITE
	sip(5061, 5060, audio("c1", 20000), t0.Add(time.Second))       // the far end's answer
	sip(5060, 5061, image("c1", 4012, 400), t0.Add(4*time.Second)) // the box's re-INVITE
	sip(5060, 5061, image("c1", 4012, 400), t0.Add(4500*time.Millisecond))
	sip(5061, 5060, image("c1", 30000, 272), t0.Add(5*time.Second))
	sip(5061, 5062, image("c9", 30002, 100), t0.Add(5*time.Second)) // not the box's SIP port: not read
	if c := m.Counters(); c.Signalling != 5 || c.Flows != 0 || c.Dispatched != 0 || c.Ignored != 1 {
		t.Fatalf("counters %+v", c)
	}
	d, ok := m.DialogOf(netip.MustParseAddrPort("0.0.0.0:10002"), t0.Add(-time.Minute), t0.Add(time.Minute))
	if !ok || d.CallID != "c1" || len(d.Streams) != 4 {
		t.Fatalf("dialog of the box's audio port 10002: %v %+v (a retransmission is noted once)", ok, d)
	}
	box, ok1 := d.Newest(StreamT38, true, t0.Add(time.Minute))
	far, ok2 := d.Newest(StreamT38, false, t0.Add(time.Minute))
	if !ok1 || !ok2 || box.Media.Port() != 4012 || box.MaxDatagram != 400 || far.Media.Port() != 30000 || far.MaxDatagram != 272 {
		t.Errorf("the box's T.38 stream %+v, the far end's %+v", box, far)
	}
	if _, ok := m.DialogOf(netip.MustParseAddrPort("0.0.0.0:20000"), t0.Add(-time.Minute), t0.Add(time.Minute)); ok {
		t.Error("the far end's audio port found a dialog: only the box's own audio ties a call")
	}
	if _, ok := m.DialogOf(netip.MustParseAddrPort("0.0.0.0:10002"), t0.Add(time.Hour), t0.Add(2*time.Hour)); ok {
		t.Error("a dialog found outside its time")
	}
	find := func(to string, from, until time.Time) string {
		o, ok := m.T38Offer(netip.MustParseAddrPort(to), from, until)
		if !ok {
			return "none"
		}
		return fmt.Sprint(o.MaxDatagram)
	}
	for _, c := range []struct {
		to          string
		from, until time.Time
		want        string
	}{
		{"127.0.0.1:4012", t0.Add(-time.Minute), t0.Add(time.Minute), "400"},
		{"127.0.0.1:30000", t0.Add(-time.Minute), t0.Add(time.Minute), "272"},
		{"192.0.2.1:30000", t0.Add(-time.Minute), t0.Add(time.Minute), "272"}, // by port: NAT
		{"127.0.0.1:30002", t0.Add(-time.Minute), t0.Add(time.Minute), "none"},
		{"127.0.0.1:30000", t0.Add(6 * time.Second), t0.Add(time.Minute), "none"}, // an earlier call's
	} {
		if got := find(c.to, c.from, c.until); got != c.want {
			t.Errorf("offer for %s: %s, want %s", c.to, got, c.want)
		}
	}
	// A later call on the same port declares another size: the newest in
	// the window counts.
	sip(5061, 5060, image("c2", 30000, 180), t0.Add(time.Hour))
	if got := find("127.0.0.1:30000", t0.Add(time.Hour-time.Minute), t0.Add(time.Hour+time.Minute)); got != "180" {
		t.Errorf("the later call's offer: %s, want 180", got)
	}
	for i := range maxStreams + 4 {
		sip(5061, 5060, image("c2", 20000+i, 300), t0.Add(time.Hour+time.Duration(i)*time.Millisecond))
	}
	for i := range 2 * maxDialogs {
		sip(5061, 5060, image(fmt.Sprint("d", i), 20000+i, 300), t0.Add(2*time.Hour+time.Duration(i)*time.Millisecond))
	}
	ds := m.Dialogs()
	if len(ds) != maxDialogs {
		t.Errorf("%d dialogs kept, want the bound %d", len(ds), maxDialogs)
	}
	for _, d := range ds {
		if d.CallID == "c1" || len(d.Streams) > maxStreams {
			t.Errorf("dialog %s with %d streams kept: the oldest go first, at most %d streams each", d.CallID, len(d.Streams), maxStreams)
		}
	}
}

func FuzzScanSDP(f *testing.F) {
	f.Add(sipMsg(asteriskT38...))
	f.Add([]byte("SIP/2.0 200 OK\r\ni: x\r\n\r\nv=0\nc=IN IP6 ::1/5\nm=image 4006 udptl t38\na=T38FaxMaxDatagram:300\nm=audio 5 RTP/AVP 0\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := ScanSDP(msg)
		if len(s.CallID) > 256 {
			t.Fatalf("a Call-ID of %d octets", len(s.CallID))
		}
		for _, o := range s.Streams {
			if o.MaxDatagram < 0 || o.MaxDatagram > 65507 || o.Media.Port() == 0 || !o.Media.Addr().IsValid() ||
				(o.Kind != StreamAudio && o.Kind != StreamT38) || (o.Kind == StreamAudio && o.MaxDatagram != 0) {
				t.Fatalf("stream %+v from %q", o, msg)
			}
		}
	})
}
