package udptl

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// describe renders a parsed packet the way the tests compare them.
func describe(p *Packet) string {
	var s strings.Builder
	fmt.Fprintf(&s, "seq %d %s", p.Seq, ifpString(&p.Primary))
	switch p.Recovery {
	case Redundancy:
		for _, x := range p.Secondary() {
			fmt.Fprintf(&s, " | %s", ifpString(&x))
		}
	case FEC:
		fmt.Fprintf(&s, " fec span %d entries %d", p.FECSpan, len(p.FECData()))
	}
	return s.String()
}

func ifpString(f *IFP) string {
	if f.Type == T30Indicator {
		return f.Indicator.String()
	}
	s := f.Data.String()
	for _, x := range f.Fields() {
		s += fmt.Sprintf(" %s[%x]", x.Type, x.Data)
	}
	return s
}

func TestParse(t *testing.T) {
	frame := []byte{0xff, 0x13, 0x80, 0x00}
	for _, c := range []struct {
		name string
		v    Version
		b    []byte
		want string
	}{
		// 00 05 | 01 04 | 00 00: seq 5, primary of one octet (ced), no secondaries.
		{"ced, bytes by hand", 0, []byte{0x00, 0x05, 0x01, 0x04, 0x00, 0x00}, "seq 5 ced"},
		{"extension indicator", 0, red(7, ind(22)), "seq 7 v33-14400-training"},
		{"hdlc with redundancy", 0, red(300, dat(V21, fld{HDLCData, frame}, fld{HDLCFCSOK, nil}), ind(V21Preamble), ind(CED)),
			"seq 300 v21 hdlc-data[ff138000] hdlc-fcs-OK[] | v21-preamble | ced"},
		{"non-ECM page data", 0, red(65535, dat(8, fld{T4NonECMData, []byte{1, 2, 3}})), "seq 65535 v17-14400 t4-non-ecm-data[010203]"},
		// Version 0, strict PER: two items without field-data share one
		// octet (0 010 | 0 100): hdlc-fcs-OK, then hdlc-fcs-OK-sig-end.
		{"v0 nibble-packed items", 0, red(1, []byte{0xc0, 2, 0x24}), "seq 1 v21 hdlc-fcs-OK[] hdlc-fcs-OK-sig-end[]"},
		// Version 1: field-type has an extension bit (0 0 011 000): hdlc-fcs-BAD.
		{"v1 field type", 1, red(2, []byte{0xc0, 1, 0x18}), "seq 2 v21 hdlc-fcs-BAD[]"},
		// Strict PER: 0 1 0 000011 (no field-data, extension, small
		// number 3): v34rate. (spandsp places these 6 bits one bit later;
		// it never sends V.34 field types.)
		{"v1 extension field type", 1, red(3, []byte{0xc0, 1, 0x41, 0x80}), "seq 3 v21 v34rate[]"},
		{"fec", 0, fec(40, ind(NoSignal), 3, []byte{1}, []byte{2, 3}, []byte{4}), "seq 40 no-signal fec span 3 entries 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p Packet
			if err := Parse(c.b, c.v, &p); err != nil {
				t.Fatal(err)
			}
			if got := describe(&p); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			if p.Size != len(c.b) {
				t.Errorf("size %d, want %d", p.Size, len(c.b))
			}
		})
	}
}

func TestParseFECEntriesAlias(t *testing.T) {
	b := fec(9, ind(CNG), 2, []byte{0xaa, 0xbb}, []byte{0xcc})
	var p Packet
	if err := Parse(b, 0, &p); err != nil {
		t.Fatal(err)
	}
	d := p.FECData()
	if len(d) != 2 || !bytes.Equal(d[0], []byte{0xaa, 0xbb}) || !bytes.Equal(d[1], []byte{0xcc}) || p.FECSpan != 2 {
		t.Fatalf("fec data %x span %d", d, p.FECSpan)
	}
	d[1][0] = 0x11 // slices point into the datagram, not copies
	if b[len(b)-1] != 0x11 {
		t.Error("FEC data is a copy")
	}
}

func TestParseRefuses(t *testing.T) {
	var many [][]byte
	for i := 0; i < MaxSecondary+1; i++ {
		many = append(many, ind(NoSignal))
	}
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"trailing octet", append(red(1, ind(CNG)), 0), ErrTrailing},
		{"trailing octet in IFP", red(1, []byte{0x02, 0x00}), ErrTrailing},
		{"too many secondaries", red(1, ind(CNG), many...), ErrTooMany},
		{"fragmented length", []byte{0, 1, 0xc1, 0x00}, ErrFragment},
		{"data type 9 in the root", red(1, []byte{0x40 | 9<<1}), ErrBadValue},
		{"huge extension indicator", red(1, []byte{0x30, 0}), ErrBadValue},
		{"negative fec span", []byte{0, 1, 1, 0x02, 0x80, 1, 0xff, 0}, ErrBadValue},
		{"open type longer than datagram", []byte{0, 1, 0x40, 0x02}, ErrShort},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p Packet
			if err := Parse(c.b, 0, &p); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestParseTruncated: every proper prefix of valid datagrams is refused
// (none is a valid datagram itself) without a panic.
func TestParseTruncated(t *testing.T) {
	for _, b := range [][]byte{
		red(300, dat(V21, fld{HDLCData, bytes.Repeat([]byte{0x5a}, 200)}, fld{HDLCFCSOK, nil}), ind(V21Preamble), ind(22)),
		fec(40, dat(4, fld{T4NonECMData, []byte{1, 2, 3}}), 3, []byte{1}, []byte{2, 3}),
	} {
		var p Packet
		if err := Parse(b, 0, &p); err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(b); n++ {
			if err := Parse(b[:n], 0, &p); err == nil {
				t.Errorf("prefix of %d of %d octets accepted: %s", n, len(b), describe(&p))
			}
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	b := red(300, dat(V21, fld{HDLCData, bytes.Repeat([]byte{0x5a}, 60)}, fld{HDLCFCSOK, nil}), ind(V21Preamble), ind(CED))
	var p Packet
	var f Flow
	allocs := testing.AllocsPerRun(1000, func() {
		if err := Parse(b, 0, &p); err != nil {
			t.Fatal(err)
		}
		b[1]++
		f.Add(&p, f.st.Last)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Parse+Add", allocs)
	}
}

func TestFECCovers(t *testing.T) {
	// Asterisk's FEC with span 3, 3 entries: entry m of packet 100 covers
	// 100+m-9, 100+m-6, 100+m-3.
	want := map[int][]uint16{0: {91, 94, 97}, 1: {92, 95, 98}, 2: {93, 96, 99}}
	for m, ks := range want {
		var got []uint16
		for x := uint16(80); x <= 100; x++ {
			if FECCovers(100, 3, 3, m, x) {
				got = append(got, x)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(ks) {
			t.Errorf("entry %d covers %v, want %v", m, got, ks)
		}
	}
	if !FECCovers(2, 3, 3, 0, 65529) { // 2+0-9 wraps to 65529
		t.Error("no wrap")
	}
}
