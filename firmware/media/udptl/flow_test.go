package udptl

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// stream feeds f the datagrams with the given sequence numbers, each with
// the redundancy depth given (secondaries are indicators), 20 ms apart.
func stream(t *testing.T, f *Flow, depth int, seqs ...int) {
	t.Helper()
	var p Packet
	for i, s := range seqs {
		var secs [][]byte
		for j := 0; j < depth; j++ {
			secs = append(secs, ind(NoSignal))
		}
		if err := Parse(red(uint16(s), ind(CNG), secs...), 0, &p); err != nil {
			t.Fatal(err)
		}
		f.Add(&p, t0.Add(time.Duration(i)*20*time.Millisecond))
	}
}

func seqs(from, to int, drop ...int) []int {
	skip := map[int]bool{}
	for _, d := range drop {
		skip[d&0xffff] = true
	}
	var s []int
	for i := from; i <= to; i++ {
		if !skip[i&0xffff] {
			s = append(s, i&0xffff)
		}
	}
	return s
}

type gapCounts struct{ gaps, rec, unrec, burst, uburst, dup, reord, stale, restarts int }

func counts(st Stats) gapCounts {
	return gapCounts{st.Gaps, st.Recovered, st.Unrecoverable, st.LongestBurst, st.LongestUnrecoverable,
		st.Duplicates, st.Reordered, st.Stale, st.Restarts}
}

func TestFlowGaps(t *testing.T) {
	for _, c := range []struct {
		name  string
		depth int
		seqs  []int
		want  gapCounts
	}{
		{"clean", 2, seqs(0, 99), gapCounts{}},
		// depth 2: 10 comes back from 11; of the burst 20-22 packet 23
		// repeats 22 and 21, 20 is lost.
		{"redundancy repairs", 2, seqs(0, 99, 10, 20, 21, 22), gapCounts{gaps: 4, rec: 3, unrec: 1, burst: 3, uburst: 1}},
		{"no redundancy", 0, seqs(0, 99, 10, 20, 21, 22), gapCounts{gaps: 4, unrec: 4, burst: 3, uburst: 3}},
		{"loss at the end stays unrecoverable", 3, seqs(0, 10, 9, 10), gapCounts{}},
		{"reordered", 1, []int{0, 1, 3, 2, 4}, gapCounts{reord: 1}},
		{"reordered after its repair", 0, []int{0, 1, 3, 2, 4}, gapCounts{reord: 1}},
		{"duplicate", 1, []int{0, 1, 1, 2}, gapCounts{dup: 1}},
		{"wrap", 1, seqs(65530, 65541, 65536), gapCounts{gaps: 1, rec: 1, burst: 1}},
		{"wrap without loss", 0, seqs(65000, 66000), gapCounts{}},
		{"restart", 1, append(seqs(0, 9), seqs(5000, 5009)...), gapCounts{restarts: 1}},
		{"stale", 0, append(seqs(0, 1000, 5), 5), gapCounts{gaps: 1, unrec: 1, burst: 1, uburst: 1, stale: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var f Flow
			stream(t, &f, c.depth, c.seqs...)
			if got := counts(f.Stats()); got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
			if st := f.Stats(); st.Gaps != st.Recovered+st.Unrecoverable || st.Packets != len(c.seqs) {
				t.Errorf("inconsistent: %+v", st)
			}
		})
	}
}

// TestFlowGapsFinalAndPending: a gap counts the same while inside the
// window and after it has left it.
func TestFlowGapsFinalAndPending(t *testing.T) {
	var f Flow
	stream(t, &f, 1, seqs(0, 50, 20, 30, 31)...)
	pending := counts(f.Stats())
	stream(t, &f, 1, seqs(51, 51+2*Window)...)
	if final := counts(f.Stats()); pending != final || final.gaps != 3 || final.rec != 2 || final.burst != 2 {
		t.Errorf("pending %+v, final %+v", pending, final)
	}
}

// TestFlowFEC: Asterisk's FEC with span 3 and 3 entries; a lone loss in a
// parity group is repaired, two losses in one group are not.
func TestFlowFEC(t *testing.T) {
	run := func(drop ...int) gapCounts {
		var f Flow
		var p Packet
		for i, s := range seqs(0, 60, drop...) {
			parity := [][]byte{{1}, {2}, {3}}
			if err := Parse(fec(uint16(s), ind(CNG), 3, parity...), 0, &p); err != nil {
				t.Fatal(err)
			}
			f.Add(&p, t0.Add(time.Duration(i)*time.Millisecond))
		}
		return counts(f.Stats())
	}
	if got := run(30); got != (gapCounts{gaps: 1, rec: 1, burst: 1}) {
		t.Errorf("one loss: %+v", got)
	}
	// 30 and 33 share groups {27,30,33} and {30,33,36}, but {24,27,30}
	// and {33,36,39} hold one of them alone.
	if got := run(30, 33); got.gaps != 2 || got.rec != 2 {
		t.Errorf("two losses 3 apart: %+v", got)
	}
	// A long burst: its first packets are covered only by groups whose
	// other members or carriers are lost too; its last ones come back
	// from the groups of the packets after it.
	if got := run(seqs(30, 50)...); got.gaps != 21 || got.rec == 0 || got.unrec == 0 || got.burst != 21 {
		t.Errorf("a burst of 21: %+v", got)
	}
}

func TestFlowContent(t *testing.T) {
	var f Flow
	var p Packet
	add := func(b []byte, at time.Duration) {
		t.Helper()
		if err := Parse(b, 0, &p); err != nil {
			t.Fatal(err)
		}
		f.Add(&p, t0.Add(at))
	}
	bad := dat(V21, fld{HDLCData, []byte{0xff}}, fld{HDLCFCSBad, nil})
	ok := dat(V21, fld{HDLCData, []byte{0xff}}, fld{HDLCFCSOK, nil})
	page := dat(8, fld{T4NonECMData, []byte{1}})
	add(red(0, ok), 0)
	add(red(1, bad, ok), 0)
	// 2 (bad FCS) is lost and comes back from 3's redundancy: counted.
	add(red(3, page, bad, bad), 0)
	// page data at 0, 20, 40, 70 ms (the first was packet 3): the
	// interarrival times 20, 20, 30 ms deviate by 0 and 10 ms:
	// J = 0 + (0-0)/16 = 0, then J = 0 + (10-0)/16 = 0.625 ms.
	add(red(4, page, page), 20*time.Millisecond)
	add(red(5, page, page), 40*time.Millisecond)
	add(red(6, page, page), 70*time.Millisecond)
	// a pause between pages is no jitter
	add(red(7, page, page), 3*time.Second)
	st := f.Stats()
	if st.FCSBad != 2 || st.HDLCFrames != 3 {
		t.Errorf("FCS bad %d of %d frames, want 2 of 3", st.FCSBad, st.HDLCFrames)
	}
	if st.PageJitter != 625*time.Microsecond || st.MaxPageGap != 30*time.Millisecond {
		t.Errorf("page jitter %s, max gap %s; want 625µs and 30ms", st.PageJitter, st.MaxPageGap)
	}
	if st.PagePackets != 5 || st.DataPackets != 7 || !st.FirstPage.Equal(t0) || st.RedundancyDepth != 2 {
		t.Errorf("%+v", st)
	}
	if st.LargestDatagram != len(red(3, page, bad, bad)) {
		t.Errorf("largest datagram %d", st.LargestDatagram)
	}
	f.AddMalformed(1000, t0.Add(4*time.Second))
	if st := f.Stats(); st.Malformed != 1 || st.LargestDatagram != 1000 || !st.Last.Equal(t0.Add(4*time.Second)) {
		t.Errorf("malformed: %+v", st)
	}
}
