package udptl

import "fmt"

// reader reads ASN.1 aligned PER from b, bit by bit; pos is in bits.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) short(what string, need int) error {
	return fmt.Errorf("%w: %s needs %d bits at bit %d of %d", ErrShort, what, need, r.pos, 8*len(r.b))
}

func (r *reader) bit() (bool, error) {
	if r.pos >= 8*len(r.b) {
		return false, r.short("a bit", 1)
	}
	v := r.b[r.pos>>3]>>(7-uint(r.pos&7))&1 == 1
	r.pos++
	return v, nil
}

// bits reads an n-bit unsigned number, n <= 16.
func (r *reader) bits(n int) (int, error) {
	if r.pos+n > 8*len(r.b) {
		return 0, r.short("a number", n)
	}
	v := 0
	for i := 0; i < n; i++ {
		v = v<<1 | int(r.b[r.pos>>3]>>(7-uint(r.pos&7))&1)
		r.pos++
	}
	return v, nil
}

// align skips to the next octet boundary.
func (r *reader) align() { r.pos = (r.pos + 7) &^ 7 }

func (r *reader) octet() (byte, error) {
	r.align()
	if r.pos+8 > 8*len(r.b) {
		return 0, r.short("an octet", 8)
	}
	v := r.b[r.pos>>3]
	r.pos += 8
	return v, nil
}

// octets returns the next n octets (aligned) without copying.
func (r *reader) octets(n int) ([]byte, error) {
	r.align()
	start := r.pos >> 3
	if n < 0 || n > len(r.b)-start {
		return nil, r.short("octets", 8*n)
	}
	r.pos += 8 * n
	return r.b[start : start+n : start+n], nil
}

// length reads an unconstrained length determinant (X.691 10.9); fragments
// (16K units and more) are refused.
func (r *reader) length() (int, error) {
	o, err := r.octet()
	if err != nil {
		return 0, err
	}
	switch {
	case o&0x80 == 0:
		return int(o), nil
	case o&0x40 == 0:
		o2, err := r.octet()
		if err != nil {
			return 0, err
		}
		return int(o&0x3f)<<8 | int(o2), nil
	}
	return 0, fmt.Errorf("%w (at octet %d)", ErrFragment, r.pos/8-1)
}

// openType reads an open type: a length, then that many octets.
func (r *reader) openType() ([]byte, error) {
	n, err := r.length()
	if err != nil {
		return nil, err
	}
	return r.octets(n)
}

// enumerated reads an ENUMERATED with root values 0..root-1, with an
// extension marker when ext; an extension value is root+n.
func (r *reader) enumerated(root int, ext bool) (int, error) {
	if ext {
		e, err := r.bit()
		if err != nil {
			return 0, err
		}
		if e {
			// normally small non-negative whole number (X.691 10.6)
			big, err := r.bit()
			if err != nil {
				return 0, err
			}
			if big {
				return 0, fmt.Errorf("%w: extension value over 63", ErrBadValue)
			}
			n, err := r.bits(6)
			return root + n, err
		}
	}
	width := 0
	for 1<<width < root {
		width++
	}
	v, err := r.bits(width)
	if err != nil {
		return 0, err
	}
	if v >= root {
		return 0, fmt.Errorf("%w: %d of %d root values", ErrBadValue, v, root)
	}
	return v, nil
}
