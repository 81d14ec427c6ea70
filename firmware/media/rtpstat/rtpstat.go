// Package rtpstat measures one direction of an RTP stream (G.711 fax audio)
// per SSRC: packets, loss, duplicates, sequence wraps and resets (RFC 3550
// A.1) and interarrival jitter (RFC 3550 A.8) in milliseconds, from the
// packets' arrival times. Headers are decoded with github.com/pion/rtp.
//
// A Stream keeps fixed memory: at most MaxSSRC sources (more are counted,
// not tracked) and a 128-packet duplicate window per source.
package rtpstat

import (
	"errors"
	"fmt"
	"time"

	"github.com/pion/rtp"
)

// MaxSSRC is how many sources one Stream tracks.
const MaxSSRC = 8

// RFC 3550 A.1 constants.
const (
	maxDropout    = 3000
	maxMisorder   = 100
	minSequential = 2
	seqMod        = 1 << 16
)

// ClockRate returns the RTP clock rate of a payload type: 8000 Hz for the
// static audio types a fax call carries (PCMU 0, PCMA 8, G.722 9, CN 13)
// and for the dynamic ones (telephone-event, 96-127), which Asterisk clocks
// at 8000 on narrowband calls.
func ClockRate(pt uint8) int { return 8000 }

// SSRCStats is what is known of one source.
type SSRCStats struct {
	SSRC        uint32
	PayloadType uint8 // of the latest packet
	First, Last time.Time
	Packets     int // valid packets received, duplicates excluded
	Duplicates  int
	// Expected is the extended highest sequence number minus the first
	// plus one (RFC 3550 A.3); Lost = Expected - Packets (can be negative
	// with late duplicates outside the window).
	Expected, Lost int
	// LossRatio is Lost/Expected (0 when nothing was expected).
	LossRatio float64
	Wraps     int // sequence number cycles (65535 -> 0)
	Resets    int // sequence restarts (a jump over 3000 confirmed by the next packet, RFC 3550 A.1)
	Misorder  int // packets older than the highest (late but not duplicates)
	// Jitter is the RFC 3550 A.8 interarrival jitter, in milliseconds of
	// the payload type's clock; MaxJitter the highest it reached.
	Jitter, MaxJitter float64
}

// Stats is a snapshot of a Stream.
type Stats struct {
	SSRCs      []SSRCStats
	Malformed  int // datagrams that are not RTP version 2
	Untracked  int // packets of sources beyond MaxSSRC
	Bytes      int64
	LargestPkt int
}

// source is RFC 3550 A.1's source state plus jitter and duplicates.
type source struct {
	st      SSRCStats
	maxSeq  uint16
	cycles  uint32
	baseSeq uint32
	badSeq  uint32
	probe   int
	seen    [2]uint64 // bit i: maxSeq-i was received (i < 128)
	// prevExpected: packets expected in sequences before a reset
	prevExpected int
	// jitter state (RFC 3550 A.8), in timestamp units
	haveTr  bool
	lastArr float64 // arrival of the previous packet, in timestamp units since First
	lastTS  uint32
	jitter  float64
}

// Stream measures one direction of an RTP flow. The zero value is ready;
// it is not safe for concurrent use.
type Stream struct {
	src [MaxSSRC]source
	n   int
	hdr rtp.Header
	st  Stats
}

// ErrNotRTP: the datagram is no RTP version 2 packet.
var ErrNotRTP = errors.New("rtpstat: not an RTP version 2 packet")

// Add accounts datagram b, arrived at at; it returns ErrNotRTP (wrapped)
// for a datagram that does not parse.
func (s *Stream) Add(b []byte, at time.Time) error {
	s.st.Bytes += int64(len(b))
	s.st.LargestPkt = max(s.st.LargestPkt, len(b))
	if len(b) < 12 || b[0]>>6 != 2 {
		s.st.Malformed++
		return fmt.Errorf("%w (%d octets)", ErrNotRTP, len(b))
	}
	if _, err := s.hdr.Unmarshal(b); err != nil {
		s.st.Malformed++
		return fmt.Errorf("%w: %w", ErrNotRTP, err)
	}
	src := s.source(s.hdr.SSRC)
	if src == nil {
		s.st.Untracked++
		return nil
	}
	src.add(&s.hdr, at)
	return nil
}

func (s *Stream) source(ssrc uint32) *source {
	for i := 0; i < s.n; i++ {
		if s.src[i].st.SSRC == ssrc {
			return &s.src[i]
		}
	}
	if s.n == MaxSSRC {
		return nil
	}
	src := &s.src[s.n]
	s.n++
	*src = source{st: SSRCStats{SSRC: ssrc}}
	return src
}

func (src *source) add(h *rtp.Header, at time.Time) {
	st := &src.st
	if st.First.IsZero() {
		st.First = at
		src.initSeq(h.SequenceNumber)
		src.maxSeq = h.SequenceNumber - 1
		src.probe = minSequential
	}
	st.Last = at
	st.PayloadType = h.PayloadType
	if !src.updateSeq(h.SequenceNumber) {
		return
	}
	st.Packets++
	src.jitterAdd(h, at)
}

func (src *source) initSeq(seq uint16) {
	src.baseSeq = uint32(seq)
	src.maxSeq = seq
	src.badSeq = seqMod + 1
	src.cycles = 0
	src.seen = [2]uint64{}
	src.haveTr = false
}

// updateSeq is RFC 3550 A.1's update_seq with a duplicate window; it
// reports whether the packet counts as received.
func (src *source) updateSeq(seq uint16) bool {
	udelta := seq - src.maxSeq
	if src.probe > 0 {
		// source not valid until minSequential packets in sequence
		if seq == src.maxSeq+1 {
			src.probe--
			src.maxSeq = seq
			if src.probe == 0 {
				src.initSeq(seq)
				src.mark(0)
				return true
			}
		} else {
			src.probe = minSequential - 1
			src.maxSeq = seq
		}
		return false
	}
	switch {
	case udelta == 0:
		src.st.Duplicates++
		return false
	case udelta < maxDropout:
		if seq < src.maxSeq {
			src.cycles += seqMod
			src.st.Wraps++
		}
		src.shift(int(udelta))
		src.maxSeq = seq
		src.mark(0)
	case udelta <= seqMod-maxMisorder:
		// a very large jump
		if uint32(seq) == src.badSeq {
			// two sequential packets: the other end restarted
			src.st.Resets++
			src.restart(seq)
			return true
		}
		src.badSeq = uint32(seq+1) & (seqMod - 1)
		return false
	default:
		// duplicate or reordered packet
		back := int(src.maxSeq - seq)
		if back < 128 && src.marked(back) {
			src.st.Duplicates++
			return false
		}
		if back < 128 {
			src.mark(back)
		}
		src.st.Misorder++
	}
	return true
}

// restart keeps the counts so far and starts a new sequence at seq.
func (src *source) restart(seq uint16) {
	expected := src.expected()
	src.initSeq(seq)
	src.mark(0)
	src.prevExpected += expected
}

// shift moves the duplicate window d sequence numbers ahead.
func (src *source) shift(d int) {
	w := &src.seen
	switch {
	case d >= 128:
		*w = [2]uint64{}
	case d >= 64:
		w[1], w[0] = w[0]<<(d-64), 0
	case d > 0:
		w[1] = w[1]<<d | w[0]>>(64-d)
		w[0] <<= d
	}
}

func (src *source) mark(back int)        { src.seen[back/64] |= 1 << (back % 64) }
func (src *source) marked(back int) bool { return src.seen[back/64]&(1<<(back%64)) != 0 }

// expected is RFC 3550 A.3's expected count of the current sequence.
func (src *source) expected() int {
	return int(src.cycles+uint32(src.maxSeq)) - int(src.baseSeq) + 1
}

// jitterAdd is RFC 3550 A.8: D(i,j) = (Rj - Ri) - (Sj - Si) in timestamp
// units, J += (|D| - J)/16.
func (src *source) jitterAdd(h *rtp.Header, at time.Time) {
	clock := float64(ClockRate(h.PayloadType))
	arr := at.Sub(src.st.First).Seconds() * clock
	if src.haveTr {
		d := (arr - src.lastArr) - float64(int32(h.Timestamp-src.lastTS))
		if d < 0 {
			d = -d
		}
		src.jitter += (d - src.jitter) / 16
		src.st.Jitter = src.jitter / clock * 1000
		src.st.MaxJitter = max(src.st.MaxJitter, src.st.Jitter)
	}
	src.haveTr, src.lastArr, src.lastTS = true, arr, h.Timestamp
}

// Stats returns the stream's counts so far.
func (s *Stream) Stats() Stats {
	st := s.st
	st.SSRCs = make([]SSRCStats, 0, s.n)
	for i := 0; i < s.n; i++ {
		src := &s.src[i]
		x := src.st
		if src.probe == 0 {
			x.Expected = src.prevExpected + src.expected()
		} else {
			x.Expected = src.prevExpected
		}
		x.Lost = x.Expected - x.Packets
		if x.Expected > 0 {
			x.LossRatio = float64(x.Lost) / float64(x.Expected)
		}
		st.SSRCs = append(st.SSRCs, x)
	}
	return st
}
