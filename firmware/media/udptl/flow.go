package udptl

import "time"

// Window is how far (in sequence numbers) behind the highest one a Flow
// still accepts a packet as late (reordered) or repairs it from redundancy
// or FEC. A sequence number older than that is final: received, recovered
// or lost; a packet older than that is stale.
const Window = 512

// MaxJump: a sequence number more than MaxJump ahead of or behind the
// highest one starts the sequence anew (a restart, as spandsp classifies
// it) instead of counting that many gaps or a stale packet.
const MaxJump = 2000

// PageBurstGap separates page-data bursts for the IFP jitter: a pause
// longer than this between two page-data packets (between pages, or a
// retrain) is not interarrival variation.
const PageBurstGap = time.Second

type slotState uint8

const (
	slotMissing slotState = iota
	slotReceived
	slotRecovered
)

type fecMeta struct{ span, entries uint8 }

// Stats is a snapshot of one direction of a T.38 stream.
type Stats struct {
	First, Last time.Time // arrival of the first and the latest datagram
	Packets     int       // datagrams parsed (duplicates and late ones included)
	Malformed   int       // datagrams Parse refused
	Bytes       int64     // UDP payload octets of all datagrams
	// LargestDatagram is the longest UDP payload seen (compare with the
	// negotiated T38FaxMaxDatagram).
	LargestDatagram int

	Duplicates int // a sequence number received again
	Reordered  int // a primary that came after a later one (filled its gap)
	Stale      int // a primary more than Window late (its gap was final)
	Restarts   int // sequence jumps of more than MaxJump (either way)

	// Gaps counts sequence numbers whose primary IFP never came, between
	// the first and the highest received; Recovered of them were repaired
	// from a later packet's redundancy or FEC, Unrecoverable were not.
	Gaps, Recovered, Unrecoverable int
	// LongestBurst is the longest run of consecutive gaps (compare with
	// RedundancyDepth); LongestUnrecoverable the longest run of
	// consecutive unrecoverable ones.
	LongestBurst, LongestUnrecoverable int

	RedundancyDepth     int // most secondary IFPs in one datagram
	FECSpan, FECEntries int // of the latest FEC datagram

	Indicators  int // primary t30-indicator IFPs
	DataPackets int // primary t30-data IFPs
	PagePackets int // of them, page data (not V.21)
	HDLCFrames  int // HDLC frame ends (hdlc-fcs-OK/BAD, with or without sig-end)
	FCSBad      int // of them with a bad FCS (primaries and repaired IFPs)

	// FirstPage is the arrival of the first page-data IFP.
	FirstPage time.Time
	// PageJitter is the interarrival jitter of page-data IFPs: the mean
	// deviation of consecutive interarrival times, smoothed by 1/16 as in
	// RFC 3550 A.8, within bursts (see PageBurstGap). MaxPageGap is the
	// longest interarrival time within a burst.
	PageJitter, MaxPageGap time.Duration
}

// Flow tracks one direction of a UDPTL stream (one source and destination
// address and port). The zero value is ready to use; it is not safe for
// concurrent use. Its memory is fixed (a window of Window slots).
type Flow struct {
	st      Stats
	started bool
	base    int64 // extended sequence number of the current run's first packet
	high    int64 // highest extended sequence number received
	fin     int64 // sequence numbers below fin are final
	run     int   // consecutive final gaps so far
	urun    int   // consecutive final unrecoverable gaps so far
	slots   [Window]slotState
	fec     [Window]fecMeta

	lastPage   time.Time
	lastDelta  time.Duration
	haveDelta  bool
	jitterNano float64
}

// AddMalformed counts a datagram of size octets that Parse refused.
func (f *Flow) AddMalformed(size int, at time.Time) {
	f.seen(size, at)
	f.st.Malformed++
}

func (f *Flow) seen(size int, at time.Time) {
	if f.st.First.IsZero() {
		f.st.First = at
	}
	f.st.Last = at
	f.st.Bytes += int64(size)
	f.st.LargestDatagram = max(f.st.LargestDatagram, size)
}

// Add accounts a parsed datagram that arrived at at.
func (f *Flow) Add(p *Packet, at time.Time) {
	f.seen(p.Size, at)
	f.st.Packets++
	ext := f.extend(p.Seq)
	switch d := ext - f.high; {
	case !f.started:
		f.start(ext)
	case d > MaxJump || d < -MaxJump:
		f.finalizeTo(f.high + 1)
		f.st.Restarts++
		f.start(ext)
	case d > 0:
		f.advance(ext)
	case ext < f.fin:
		f.st.Stale++
		return
	case f.slot(ext) == slotReceived:
		f.st.Duplicates++
		return
	default:
		f.st.Reordered++
	}
	f.slots[ext%Window] = slotReceived
	f.primary(&p.Primary, at)
	if p.Recovery == Redundancy {
		f.st.RedundancyDepth = max(f.st.RedundancyDepth, p.nsec)
		for i := range p.Secondary() {
			f.repair(ext-1-int64(i), &p.secondary[i])
		}
		return
	}
	f.st.FECSpan, f.st.FECEntries = p.FECSpan, p.nfec
	if p.FECSpan > 0 && p.FECSpan <= 255 && p.nfec > 0 {
		f.fec[ext%Window] = fecMeta{span: uint8(p.FECSpan), entries: uint8(p.nfec)}
		f.repairFEC(ext)
	}
}

// extend maps a 16-bit sequence number to the extended one nearest the
// highest so far (wrap at 65536).
func (f *Flow) extend(seq uint16) int64 {
	if !f.started {
		return 1<<20 + int64(seq)
	}
	return f.high + int64(int16(seq-uint16(f.high)))
}

func (f *Flow) slot(ext int64) slotState { return f.slots[ext%Window] }

func (f *Flow) start(ext int64) {
	f.started = true
	f.base, f.high, f.fin = ext, ext, ext
	f.run, f.urun = 0, 0
	f.fec[ext%Window] = fecMeta{}
}

// advance moves the highest sequence number to ext, finalizing what falls
// out of the window and opening the slots in between as missing.
func (f *Flow) advance(ext int64) {
	f.finalizeTo(ext - Window + 1)
	for s := max(f.high+1, ext-Window+1); s <= ext; s++ {
		f.slots[s%Window] = slotMissing
		f.fec[s%Window] = fecMeta{}
	}
	f.high = ext
}

// finalizeTo makes every sequence number below to final; those above the
// highest (a jump ahead) are missing.
func (f *Flow) finalizeTo(to int64) {
	for ; f.fin < to; f.fin++ {
		s := slotMissing
		if f.fin <= f.high {
			s = f.slot(f.fin)
		}
		f.count(&f.st, &f.run, &f.urun, s)
	}
}

// count adds one sequence number's final state to st.
func (f *Flow) count(st *Stats, run, urun *int, s slotState) {
	switch s {
	case slotReceived:
		*run, *urun = 0, 0
		return
	case slotRecovered:
		st.Recovered++
		*urun = 0
	default:
		st.Unrecoverable++
		*urun++
	}
	st.Gaps++
	*run++
	st.LongestBurst = max(st.LongestBurst, *run)
	st.LongestUnrecoverable = max(st.LongestUnrecoverable, *urun)
}

// primary accounts the contents of a primary IFP.
func (f *Flow) primary(ifp *IFP, at time.Time) {
	f.content(ifp)
	if ifp.Type == T30Indicator {
		f.st.Indicators++
		return
	}
	f.st.DataPackets++
	if !ifp.PageData() {
		return
	}
	f.st.PagePackets++
	if f.st.FirstPage.IsZero() {
		f.st.FirstPage = at
	}
	if !f.lastPage.IsZero() {
		if d := at.Sub(f.lastPage); d >= 0 && d <= PageBurstGap {
			f.st.MaxPageGap = max(f.st.MaxPageGap, d)
			if f.haveDelta {
				dev := float64(d - f.lastDelta)
				if dev < 0 {
					dev = -dev
				}
				f.jitterNano += (dev - f.jitterNano) / 16
				f.st.PageJitter = time.Duration(f.jitterNano)
			}
			f.lastDelta, f.haveDelta = d, true
		} else {
			f.haveDelta = false
		}
	}
	f.lastPage = at
}

// content counts HDLC frame ends and bad FCSs of a primary or repaired IFP.
func (f *Flow) content(ifp *IFP) {
	for _, x := range ifp.Fields() {
		switch x.Type {
		case HDLCFCSOK, HDLCFCSOKSigEnd:
			f.st.HDLCFrames++
		case HDLCFCSBad, HDLCFCSBadSig:
			f.st.HDLCFrames++
			f.st.FCSBad++
		}
	}
}

// repair fills sequence number s from a redundant copy, when it is missing
// and still open.
func (f *Flow) repair(s int64, ifp *IFP) {
	if s < f.base || s < f.fin || s > f.high || f.slot(s) != slotMissing {
		return
	}
	f.slots[s%Window] = slotRecovered
	if ifp != nil {
		f.content(ifp)
	}
}

// repairFEC repairs what the FEC entries of recent packets can: a parity
// entry restores the one missing packet of its group. Repairs may enable
// others, so it runs until nothing changes (a few passes at most).
func (f *Flow) repairFEC(newest int64) {
	for pass := 0; pass < 4; pass++ {
		changed := false
		for l := newest; l >= f.fin && l > newest-Window/4; l-- {
			m := f.fec[l%Window]
			if f.slot(l) == slotMissing || m.entries == 0 {
				continue
			}
			for e := 0; e < int(m.entries); e++ {
				if s, ok := f.fecLoner(l, int(m.span), int(m.entries), e); ok {
					f.repair(s, nil) // the parity restores the IFP; its content is not decoded
					changed = true
				}
			}
		}
		if !changed {
			return
		}
	}
}

// fecLoner returns the only missing packet of FEC entry e of packet l, if
// exactly one of its group is missing and the whole group is open.
func (f *Flow) fecLoner(l int64, span, entries, e int) (int64, bool) {
	missing, which := 0, int64(0)
	for j := 0; j < span; j++ {
		k := l + int64(e-span*entries+j*entries)
		if k < f.base || k < f.fin {
			return 0, false
		}
		if f.slot(k) == slotMissing {
			missing++
			which = k
		}
	}
	return which, missing == 1
}

// Stats returns the flow's counts so far; gaps still inside the window
// count as they stand now (missing ones as unrecoverable).
func (f *Flow) Stats() Stats {
	st := f.st
	if f.started {
		run, urun := f.run, f.urun
		for s := f.fin; s <= f.high; s++ {
			f.count(&st, &run, &urun, f.slot(s))
		}
	}
	return st
}
