// Package udptl parses UDPTL datagrams carrying T.38 IFP packets (ITU-T
// T.38 Annex A, ASN.1 aligned PER, as Asterisk's main/udptl.c and spandsp
// send them) and tracks one direction of a T.38 media stream (Flow):
// sequence gaps, gaps repaired from redundancy or FEC, bursts, FCS-bad HDLC
// frames, datagram sizes and IFP interarrival jitter during page data.
//
// Parse does not allocate: a Packet is filled in place, and every byte
// slice in it (field data, FEC parity) points into the datagram passed to
// Parse, valid as long as that buffer is. Malformed input is an error,
// never a panic; every count read from the wire is bounded by the
// datagram's own length and by MaxSecondary, MaxFEC and MaxFields.
package udptl

import (
	"errors"
	"fmt"
)

// Limits of what Parse keeps. Asterisk's udptl.c keeps at most 16
// secondary IFPs or FEC entries, and no T.38 implementation puts more than
// a few fields into one IFP.
const (
	MaxSecondary = 16
	MaxFEC       = 16
	MaxFields    = 16
)

// Version is the negotiated T38FaxVersion. Version 0 uses the 1998 ASN.1
// (a Data-Field item's field-type has no extension bit; Wireshark's
// "pre-corrigendum" setting, its default); 1 and later use the 2002 ASN.1.
// Asterisk negotiates 0 unless configured otherwise.
type Version uint8

// Recovery is the error-recovery choice of a UDPTL packet.
type Recovery uint8

const (
	// Redundancy: the packet repeats earlier IFPs (secondary IFPs).
	Redundancy Recovery = iota
	// FEC: the packet carries XOR parity over earlier IFPs.
	FEC
)

func (r Recovery) String() string {
	if r == FEC {
		return "fec"
	}
	return "redundancy"
}

// Packet is one UDPTL datagram.
type Packet struct {
	Seq      uint16 // seq-number
	Primary  IFP    // primary-ifp-packet
	Recovery Recovery
	// FECSpan is fec-npackets (FEC only): how many packets one parity
	// entry covers.
	FECSpan int
	// Size is the datagram's length in octets.
	Size int

	secondary [MaxSecondary]IFP
	nsec      int
	fec       [MaxFEC][]byte
	nfec      int
}

// Secondary returns the secondary IFPs (Redundancy): Secondary()[i] is the
// primary IFP of packet Seq-1-i.
func (p *Packet) Secondary() []IFP { return p.secondary[:p.nsec] }

// FECData returns the FEC parity entries (FEC). With span s and e entries,
// entry m is the XOR of the IFPs of packets Seq+m-s*e+j*e, j = 0..s-1.
func (p *Packet) FECData() [][]byte { return p.fec[:p.nfec] }

// FECCovers reports whether FEC entry m of packet seq (span s, e entries)
// covers packet x; sequence numbers wrap at 65536.
func FECCovers(seq uint16, span, entries, m int, x uint16) bool {
	if entries <= 0 || span <= 0 || m < 0 || m >= entries {
		return false
	}
	back := int(seq-x) & 0xffff // packets x lies before seq
	// x = seq + m - span*entries + j*entries  <=>  back = span*entries - m - j*entries
	d := span*entries - m - back
	return d >= 0 && d%entries == 0 && d/entries < span
}

// Errors of Parse; they wrap with the offending position.
var (
	ErrShort    = errors.New("udptl: datagram ends inside a field")
	ErrFragment = errors.New("udptl: fragmented PER length (over 16383) not supported")
	ErrTooMany  = errors.New("udptl: more entries than kept")
	ErrTrailing = errors.New("udptl: octets after the last field")
	ErrBadValue = errors.New("udptl: value outside its ASN.1 type")
)

// Parse decodes datagram b into p (negotiated T.38 version v). p is
// overwritten; on error its contents are unspecified.
func Parse(b []byte, v Version, p *Packet) error {
	p.Size = len(b)
	p.nsec, p.nfec, p.FECSpan = 0, 0, 0
	if len(b) < 2 {
		return fmt.Errorf("%w: sequence number (%d octets)", ErrShort, len(b))
	}
	p.Seq = uint16(b[0])<<8 | uint16(b[1])
	r := reader{b: b, pos: 16}
	ifp, err := r.openType()
	if err != nil {
		return fmt.Errorf("primary IFP: %w", err)
	}
	if err := parseIFP(ifp, v, &p.Primary); err != nil {
		return fmt.Errorf("primary IFP of packet %d: %w", p.Seq, err)
	}
	fec, err := r.bit()
	if err != nil {
		return fmt.Errorf("error-recovery: %w", err)
	}
	if fec {
		p.Recovery = FEC
		err = p.parseFEC(&r)
	} else {
		p.Recovery = Redundancy
		err = p.parseSecondary(&r, v)
	}
	if err != nil {
		return err
	}
	if r.align(); r.pos != 8*len(b) {
		return fmt.Errorf("%w: %d of %d octets used", ErrTrailing, r.pos/8, len(b))
	}
	return nil
}

func (p *Packet) parseSecondary(r *reader, v Version) error {
	n, err := r.length()
	if err != nil {
		return fmt.Errorf("secondary-ifp-packets count: %w", err)
	}
	if n > MaxSecondary {
		return fmt.Errorf("%w: %d secondary IFPs (at most %d)", ErrTooMany, n, MaxSecondary)
	}
	for i := 0; i < n; i++ {
		ifp, err := r.openType()
		if err != nil {
			return fmt.Errorf("secondary IFP %d: %w", i, err)
		}
		if err := parseIFP(ifp, v, &p.secondary[i]); err != nil {
			return fmt.Errorf("secondary IFP %d of packet %d: %w", i, p.Seq, err)
		}
		p.nsec = i + 1
	}
	return nil
}

func (p *Packet) parseFEC(r *reader) error {
	// fec-npackets: an unconstrained INTEGER (length, then two's complement).
	n, err := r.length()
	if err != nil {
		return fmt.Errorf("fec-npackets: %w", err)
	}
	if n < 1 || n > 4 {
		return fmt.Errorf("%w: fec-npackets of %d octets", ErrBadValue, n)
	}
	var span int32
	for i := 0; i < n; i++ {
		o, err := r.octet()
		if err != nil {
			return fmt.Errorf("fec-npackets: %w", err)
		}
		if i == 0 {
			span = int32(int8(o)) // two's complement: the first octet's sign
		} else {
			span = span<<8 | int32(o)
		}
	}
	if span < 0 || span > 0xffff {
		return fmt.Errorf("%w: fec-npackets %d", ErrBadValue, span)
	}
	p.FECSpan = int(span)
	count, err := r.length()
	if err != nil {
		return fmt.Errorf("fec-data count: %w", err)
	}
	if count > MaxFEC {
		return fmt.Errorf("%w: %d FEC entries (at most %d)", ErrTooMany, count, MaxFEC)
	}
	for i := 0; i < count; i++ {
		d, err := r.openType()
		if err != nil {
			return fmt.Errorf("fec-data %d: %w", i, err)
		}
		p.fec[i] = d
		p.nfec = i + 1
	}
	return nil
}
