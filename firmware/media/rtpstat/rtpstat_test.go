package rtpstat

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/pion/rtp"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// pkt is one packet to feed: sequence number, timestamp, arrival in ms.
type pkt struct {
	seq  uint16
	ts   uint32
	atMs float64
}

func feed(t *testing.T, s *Stream, ssrc uint32, pt uint8, ps ...pkt) {
	t.Helper()
	for _, p := range ps {
		b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: ssrc},
			Payload: make([]byte, 160)}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Add(b, t0.Add(time.Duration(p.atMs*float64(time.Millisecond)))); err != nil {
			t.Fatal(err)
		}
	}
}

// regular is n packets from seq/ts, 20 ms (160 samples) apart, minus drop.
func regular(seq uint16, ts uint32, n int, drop ...int) []pkt {
	skip := map[int]bool{}
	for _, d := range drop {
		skip[d] = true
	}
	var ps []pkt
	for i := 0; i < n; i++ {
		if !skip[i] {
			ps = append(ps, pkt{seq + uint16(i), ts + uint32(160*i), float64(20 * i)})
		}
	}
	return ps
}

func one(t *testing.T, s *Stream) SSRCStats {
	t.Helper()
	st := s.Stats()
	if len(st.SSRCs) != 1 {
		t.Fatalf("%d sources", len(st.SSRCs))
	}
	return st.SSRCs[0]
}

func TestJitterByHand(t *testing.T) {
	// PCMU, 20 ms packets of 160 samples (8000 Hz). Packets 0-2 on time:
	// D = 0, J = 0. Packet 3 arrives 10 ms late (30 ms after packet 2,
	// timestamps 20 ms apart): D = 240 - 160 = 80 samples, J = 80/16 = 5
	// samples = 0.625 ms. Packet 4 on time again (10 ms after packet 3):
	// D = 80 - 160 = -80, J = 5 + (80 - 5)/16 = 9.6875 samples = 1.2109375 ms.
	var s Stream
	ps := regular(1000, 5000, 5)
	ps[3].atMs += 10
	feed(t, &s, 1, 0, ps[:4]...)
	if j := one(t, &s).Jitter; math.Abs(j-0.625) > 1e-9 {
		t.Errorf("after the late packet: jitter %v ms, want 0.625", j)
	}
	feed(t, &s, 1, 0, ps[4])
	st := one(t, &s)
	if math.Abs(st.Jitter-1.2109375) > 1e-9 || math.Abs(st.MaxJitter-1.2109375) > 1e-9 {
		t.Errorf("jitter %v ms (max %v), want 1.2109375", st.Jitter, st.MaxJitter)
	}
}

func TestJitterTimestampWrap(t *testing.T) {
	var s Stream
	feed(t, &s, 1, 8, regular(1, math.MaxUint32-320, 6)...) // PCMA, timestamps wrap after packet 2
	if st := one(t, &s); st.Jitter != 0 {
		t.Errorf("jitter %v over a timestamp wrap, want 0", st.Jitter)
	}
}

func TestLoss(t *testing.T) {
	type want struct{ packets, expected, lost, dups, wraps, resets, misorder int }
	for _, c := range []struct {
		name string
		ps   []pkt
		want want
	}{
		// The first packet is the RFC 3550 probation packet: counts begin
		// with the second.
		{"clean", regular(100, 0, 50), want{packets: 49, expected: 49}},
		{"one lost in 100 (1%)", regular(100, 0, 101, 50), want{packets: 99, expected: 100, lost: 1}},
		{"burst", regular(100, 0, 100, 10, 11, 12), want{packets: 96, expected: 99, lost: 3}},
		{"duplicate", append(regular(100, 0, 10), pkt{109, 1440, 200}, pkt{105, 800, 201}), want{packets: 9, expected: 9, dups: 2}},
		{"reordered", []pkt{{1, 0, 0}, {2, 160, 20}, {4, 480, 60}, {3, 320, 61}, {5, 640, 80}}, want{packets: 4, expected: 4, misorder: 1}},
		{"wrap", regular(65530, 0, 12, 7), want{packets: 10, expected: 11, lost: 1, wraps: 1}},
		// The far end restarts its sequence: two packets in a row after the
		// jump confirm it; the first of them is not counted (RFC 3550 A.1).
		{"reset", append(regular(100, 0, 10), regular(40000, 99999, 5)...), want{packets: 13, expected: 13, resets: 1}},
		{"a stray packet is no reset", append(regular(100, 0, 10), pkt{40000, 0, 300}, pkt{110, 1600, 301}), want{packets: 10, expected: 10}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s Stream
			feed(t, &s, 7, 0, c.ps...)
			st := one(t, &s)
			got := want{st.Packets, st.Expected, st.Lost, st.Duplicates, st.Wraps, st.Resets, st.Misorder}
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestLossRatio(t *testing.T) {
	var s Stream
	feed(t, &s, 7, 0, regular(0, 0, 1001, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000)...)
	// packets 1..999 expected (the probation packet 0 is not), 9 lost
	// (1000 is the last; it never came, so it is not expected either).
	if st := one(t, &s); st.Expected != 999 || st.Lost != 9 || math.Abs(st.LossRatio-9.0/999) > 1e-12 {
		t.Errorf("%+v", st)
	}
}

func TestPerSSRC(t *testing.T) {
	var s Stream
	feed(t, &s, 1, 0, regular(10, 0, 20, 5)...)
	feed(t, &s, 2, 8, regular(500, 0, 20)...)
	for i := uint32(10); i < 10+MaxSSRC; i++ {
		feed(t, &s, i, 0, regular(0, 0, 2)...)
	}
	st := s.Stats()
	if len(st.SSRCs) != MaxSSRC || st.Untracked != 2*2 {
		t.Fatalf("%d sources, %d untracked", len(st.SSRCs), st.Untracked)
	}
	if a, b := st.SSRCs[0], st.SSRCs[1]; a.SSRC != 1 || a.Lost != 1 || b.SSRC != 2 || b.Lost != 0 || b.PayloadType != 8 {
		t.Errorf("%+v\n%+v", a, b)
	}
}

func TestMalformed(t *testing.T) {
	var s Stream
	for _, b := range [][]byte{nil, {0x80}, make([]byte, 20), {0x8f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}} {
		if err := s.Add(b, t0); !errors.Is(err, ErrNotRTP) {
			t.Errorf("%x: %v", b, err)
		}
	}
	if st := s.Stats(); st.Malformed != 4 || len(st.SSRCs) != 0 {
		t.Errorf("%+v", st)
	}
}

func FuzzAdd(f *testing.F) {
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, Extension: true, ExtensionProfile: 0xBEDE}, Payload: []byte{1}}).Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Stream
		for i := 0; i < 3; i++ {
			s.Add(b, t0.Add(time.Duration(i)*time.Millisecond))
		}
		s.Stats()
	})
}
