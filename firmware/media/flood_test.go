package media

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/media/capture"
)

// udp4 is an IPv4 UDP packet from src to dst carrying payload.
func udp4(src, dst netip.AddrPort, payload []byte) []byte {
	b := make([]byte, 28+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8], b[9] = 64, 17
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[20:], src.Port())
	binary.BigEndian.PutUint16(b[22:], dst.Port())
	binary.BigEndian.PutUint16(b[24:], uint16(8+len(payload)))
	copy(b[28:], payload)
	return b
}

// rtpPayload is a G.711 RTP packet (20 ms of PCMU) of sequence seq.
func rtpPayload(ssrc uint32, seq uint16) []byte {
	p := make([]byte, 12+160)
	p[0] = 0x80
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], uint32(seq)*160)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	return p
}

// udptlPayload is a UDPTL datagram of sequence seq (a CED indicator).
func udptlPayload(seq uint16) []byte {
	return []byte{byte(seq >> 8), byte(seq), 0x01, 0x04, 0x00, 0x00}
}

// faxCall feeds m a call's media from start: 3 s of audio each way, then
// 10 s of UDPTL each way, 50 datagrams/s. flood, when set, is called with
// each 20 ms step's time (to send a flood alongside).
func faxCall(m *capture.Monitor, start time.Time, rtpPort, udptlPort uint16, flood func(time.Time)) {
	box, far := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9")
	for i := range 650 {
		at := start.Add(time.Duration(i) * 20 * time.Millisecond)
		if flood != nil {
			flood(at)
		}
		if i < 150 {
			m.Handle(udp4(netip.AddrPortFrom(box, rtpPort), netip.AddrPortFrom(far, 20000), rtpPayload(1, uint16(i))), at)
			m.Handle(udp4(netip.AddrPortFrom(far, 20000), netip.AddrPortFrom(box, rtpPort), rtpPayload(2, uint16(i))), at)
			continue
		}
		seq := uint16(i - 150)
		m.Handle(udp4(netip.AddrPortFrom(box, udptlPort), netip.AddrPortFrom(far, 30000), udptlPayload(seq)), at)
		m.Handle(udp4(netip.AddrPortFrom(far, 30000), netip.AddrPortFrom(box, udptlPort), udptlPayload(seq)), at)
	}
}

// TestFloodMarksReportIncomplete: a flood on the UDPTL range during a real
// T.38 call makes the capture drop packets over its rate limit, some of
// them the call's: its report would show loss the path did not have. It
// is marked capture_incomplete with the drops during the call; a later
// call without a flood is complete and clean.
func TestFloodMarksReportIncomplete(t *testing.T) {
	m := capture.NewMonitor(capture.MonitorConfig{UDPTL: cfg.UDPTL, RTP: cfg.RTP, Rate: 1000, Burst: 100})
	tr := New(cfg, m, "")
	rnd := rand.New(rand.NewPCG(16, 3))
	flood := func(at time.Time) {
		if d := at.Sub(t0); d < 5*time.Second || d >= 8*time.Second {
			return
		}
		for range 100 { // 5000 packets/s, 5 times the rate limit
			src := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.66"), uint16(1024+rnd.IntN(60000)))
			dst := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(4000+rnd.IntN(1000)))
			m.Handle(udp4(src, dst, []byte{0xde, 0xad, 0xbe, 0xef}), at)
		}
	}
	calls := []struct {
		id         string
		start      time.Time
		rtp, udptl uint16
		flood      func(time.Time)
	}{
		{"at_1", t0, 10002, 4100, flood},
		{"at_2", t0.Add(time.Hour), 10010, 4200, nil},
	}
	for _, c := range calls {
		tr.Handle(event("Event", "UserEvent", "UserEvent", "FaxboxMedia", "Uniqueid", c.id, "Attempt", c.id,
			"RTPLocal", netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), c.rtp).String(), "RTPRemote", "10.0.0.9:20000",
			"Timestamp", stamp(c.start.Add(100*time.Millisecond))))
		faxCall(m, c.start, c.rtp, c.udptl, c.flood)
	}
	cn := m.Counters()
	if cn.RateDropped == 0 {
		t.Fatalf("the flood was not rate-limited: %+v", cn)
	}

	r1 := tr.Report(dialler.Result{AttemptID: "at_1", Answered: true, Transport: "t38", EndedAt: t0.Add(13 * time.Second)})
	if r1 == nil || r1.T38 == nil {
		t.Fatalf("flooded call: %+v", r1)
	}
	if r1.T38.Received.Gaps == 0 && r1.T38.Sent.Gaps == 0 {
		t.Errorf("the flood cost the call no datagrams (the test shows nothing): %+v", r1.T38)
	}
	if want := cn.RateDropped + cn.FlowsRefused; !r1.CaptureIncomplete || r1.CaptureDropped != want {
		t.Errorf("flooded call: capture_incomplete %t, dropped %d; want true, %d (%+v)", r1.CaptureIncomplete, r1.CaptureDropped, want, cn)
	}

	r2 := tr.Report(dialler.Result{AttemptID: "at_2", Answered: true, Transport: "t38", EndedAt: t0.Add(time.Hour + 13*time.Second)})
	if r2 == nil || r2.T38 == nil || r2.T38.Sent.Packets != 500 || r2.T38.Received.Gaps != 0 {
		t.Fatalf("call after the flood: %+v", r2)
	}
	if r2.CaptureIncomplete || r2.CaptureDropped != 0 {
		t.Errorf("call after the flood marked incomplete: %d dropped", r2.CaptureDropped)
	}
}
