package udptl

// Builders of UDPTL datagrams for the tests, written from T.38 Annex A and
// the way spandsp and Asterisk encode (octet-aligned items).

func ot(b []byte) []byte { // open type / octet string: length, octets
	if len(b) < 0x80 {
		return append([]byte{byte(len(b))}, b...)
	}
	return append([]byte{0x80 | byte(len(b)>>8), byte(len(b))}, b...)
}

// ind is a t30-indicator IFP.
func ind(i Indicator) []byte {
	if i < 16 {
		return []byte{byte(i) << 1}
	}
	n := byte(i - 16)
	return []byte{0x20 | n>>2, n << 6}
}

type fld struct {
	t    FieldType
	data []byte
}

// dat is a t30-data IFP with fields, version 0 (field-type in 3 bits),
// every item starting on an octet as spandsp sends them.
func dat(d DataType, fs ...fld) []byte {
	b := []byte{0x40 | byte(d)<<1}
	if len(fs) == 0 {
		return b
	}
	b[0] |= 0x80
	b = append(b, byte(len(fs)))
	for _, f := range fs {
		if f.data == nil {
			b = append(b, byte(f.t)<<4)
			continue
		}
		b = append(b, 0x80|byte(f.t)<<4, byte((len(f.data)-1)>>8), byte(len(f.data)-1))
		b = append(b, f.data...)
	}
	return b
}

// red is a UDPTL datagram with redundancy: secondary IFPs newest first.
func red(seq uint16, primary []byte, secondary ...[]byte) []byte {
	b := append([]byte{byte(seq >> 8), byte(seq)}, ot(primary)...)
	b = append(b, 0x00, byte(len(secondary)))
	for _, s := range secondary {
		b = append(b, ot(s)...)
	}
	return b
}

// fec is a UDPTL datagram with FEC parity entries.
func fec(seq uint16, primary []byte, span int, entries ...[]byte) []byte {
	b := append([]byte{byte(seq >> 8), byte(seq)}, ot(primary)...)
	b = append(b, 0x80, 1, byte(span), byte(len(entries)))
	for _, e := range entries {
		b = append(b, ot(e)...)
	}
	return b
}
