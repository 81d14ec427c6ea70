package udptl

import (
	"bytes"
	"testing"
	"time"
	"unsafe"
)

// within reports whether s lies inside b (Parse never copies nor invents
// memory).
func within(s, b []byte) bool {
	if len(s) == 0 {
		return true
	}
	p, q := uintptr(unsafe.Pointer(unsafe.SliceData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= q && p+uintptr(len(s)) <= q+uintptr(len(b))
}

// FuzzParse: any datagram either parses or is refused with an error, never
// a panic; what parses stays within the datagram and the limits, and
// feeding it to a Flow (as every packet of a short stream, with sequence
// numbers shifted) keeps the Flow's counts consistent. The seed corpus in
// testdata/fuzz/FuzzParse holds datagrams of the lab's real faxes.
func FuzzParse(f *testing.F) {
	f.Add(red(300, dat(V21, fld{HDLCData, []byte{0xff, 0x13}}, fld{HDLCFCSOK, nil}), ind(V21Preamble), ind(CED)))
	f.Add(fec(40, dat(8, fld{T4NonECMData, []byte{1, 2, 3}}), 3, []byte{1}, []byte{2, 3}))
	f.Add(red(1, []byte{0xc0, 2, 0x24}))
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		var fl Flow
		for v := Version(0); v <= 1; v++ {
			var p Packet
			if err := Parse(b, v, &p); err != nil {
				fl.AddMalformed(len(b), time.Unix(0, 0))
				continue
			}
			if len(p.Secondary()) > MaxSecondary || len(p.FECData()) > MaxFEC || p.Size != len(b) {
				t.Fatalf("limits: %d secondary, %d fec, size %d", len(p.Secondary()), len(p.FECData()), p.Size)
			}
			for _, ifp := range append([]IFP{p.Primary}, p.Secondary()...) {
				for _, fd := range ifp.Fields() {
					if !within(fd.Data, b) {
						t.Fatal("field data outside the datagram")
					}
				}
			}
			for _, d := range p.FECData() {
				if !within(d, b) {
					t.Fatal("FEC data outside the datagram")
				}
			}
			for i := 0; i < 8; i++ {
				p.Seq += uint16(i * 3)
				fl.Add(&p, time.Unix(int64(i), 0))
			}
		}
		if !bytes.Equal(b, orig) {
			t.Fatal("Parse changed its input")
		}
		if st := fl.Stats(); st.Gaps != st.Recovered+st.Unrecoverable || st.Gaps < 0 || st.LongestBurst > st.Gaps {
			t.Fatalf("inconsistent flow: %+v", st)
		}
	})
}
