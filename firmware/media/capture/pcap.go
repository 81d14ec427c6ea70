package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Classic pcap files of raw IP packets (LINKTYPE_RAW, nanosecond times):
// what a Capture saw, for Wireshark/tshark, and the test captures.
const (
	pcapMagicNano = 0xa1b23c4d
	pcapMagicUsec = 0xa1b2c3d4
	linkTypeRaw   = 101
	linkTypeEth   = 1
	linkTypeSLL   = 113
)

// PcapWriter writes a pcap file of raw IP packets.
type PcapWriter struct {
	w   io.Writer
	hdr [16]byte
}

// NewPcapWriter writes the file header to w.
func NewPcapWriter(w io.Writer) (*PcapWriter, error) {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], pcapMagicNano)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snapLen)
	binary.LittleEndian.PutUint32(h[20:], linkTypeRaw)
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("capture: pcap header: %w", err)
	}
	return &PcapWriter{w: w}, nil
}

// Write appends one packet (an IP packet from its network header).
func (p *PcapWriter) Write(b []byte, at time.Time) error {
	binary.LittleEndian.PutUint32(p.hdr[0:], uint32(at.Unix()))
	binary.LittleEndian.PutUint32(p.hdr[4:], uint32(at.Nanosecond()))
	binary.LittleEndian.PutUint32(p.hdr[8:], uint32(len(b)))
	binary.LittleEndian.PutUint32(p.hdr[12:], uint32(len(b)))
	if _, err := p.w.Write(p.hdr[:]); err != nil {
		return fmt.Errorf("capture: pcap record: %w", err)
	}
	if _, err := p.w.Write(b); err != nil {
		return fmt.Errorf("capture: pcap record: %w", err)
	}
	return nil
}

// ReadPcap calls fn with every packet of a pcap file, as an IP packet
// (Ethernet, Linux cooked and raw link types; microsecond or nanosecond
// times, either byte order). b is reused between calls.
func ReadPcap(r io.Reader, fn func(b []byte, at time.Time) error) error {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return fmt.Errorf("capture: pcap header: %w", err)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	magic := bo.Uint32(h[0:])
	if magic != pcapMagicNano && magic != pcapMagicUsec {
		bo = binary.BigEndian
		magic = bo.Uint32(h[0:])
	}
	if magic != pcapMagicNano && magic != pcapMagicUsec {
		return errors.New("capture: not a pcap file")
	}
	unit := time.Microsecond
	if magic == pcapMagicNano {
		unit = time.Nanosecond
	}
	skip := 0
	switch lt := bo.Uint32(h[20:]); lt {
	case linkTypeRaw:
	case linkTypeEth:
		skip = 14
	case linkTypeSLL:
		skip = 16
	default:
		return fmt.Errorf("capture: pcap link type %d not supported", lt)
	}
	var rec [16]byte
	buf := make([]byte, 0, 1<<16)
	for {
		if _, err := io.ReadFull(r, rec[:]); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("capture: pcap record: %w", err)
		}
		n := int(bo.Uint32(rec[8:]))
		if n > snapLen {
			return fmt.Errorf("capture: pcap record of %d octets", n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("capture: pcap record: %w", err)
		}
		if n < skip {
			continue
		}
		at := time.Unix(int64(bo.Uint32(rec[0:])), int64(bo.Uint32(rec[4:]))*int64(unit))
		if err := fn(buf[skip:], at); err != nil {
			return err
		}
	}
}
