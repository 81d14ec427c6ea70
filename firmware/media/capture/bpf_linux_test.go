package capture

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// run interprets the classic BPF instructions Filter uses on packet b and
// returns what the program returns (the kernel's semantics: an out-of-
// range load drops the packet).
func run(t *testing.T, prog []unix.SockFilter, b []byte) uint32 {
	t.Helper()
	var a, x uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		load := func(off, n int) (uint32, bool) {
			if off < 0 || off+n > len(b) {
				return 0, false
			}
			if n == 1 {
				return uint32(b[off]), true
			}
			return uint32(binary.BigEndian.Uint16(b[off:])), true
		}
		var ok = true
		switch in.Code {
		case unix.BPF_LD | unix.BPF_B | unix.BPF_ABS:
			a, ok = load(int(in.K), 1)
		case unix.BPF_LD | unix.BPF_H | unix.BPF_ABS:
			a, ok = load(int(in.K), 2)
		case unix.BPF_LD | unix.BPF_H | unix.BPF_IND:
			a, ok = load(int(x+in.K), 2)
		case unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH:
			var v uint32
			v, ok = load(int(in.K), 1)
			x = 4 * (v & 0xf)
		case unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K:
			a >>= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			cond := map[uint16]bool{unix.BPF_JEQ: a == in.K, unix.BPF_JGE: a >= in.K, unix.BPF_JGT: a > in.K, unix.BPF_JSET: a&in.K != 0}[in.Code&0xf0]
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("instruction %d: code %#x not interpreted", pc, in.Code)
		}
		if !ok {
			return 0
		}
	}
	t.Fatal("the program fell off its end")
	return 0
}

// ip4 is an IPv4 packet (header of ihl words) carrying proto from sport to dport.
func ip4(proto byte, ihl int, frag uint16, sport, dport uint16, payload int) []byte {
	b := make([]byte, ihl*4+8+payload)
	b[0] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[6:], frag)
	b[9] = proto
	copy(b[12:], []byte{127, 0, 0, 1, 127, 0, 0, 1})
	binary.BigEndian.PutUint16(b[ihl*4:], sport)
	binary.BigEndian.PutUint16(b[ihl*4+2:], dport)
	binary.BigEndian.PutUint16(b[ihl*4+4:], uint16(8+payload))
	return b
}

func ip6(next byte, sport, dport uint16, payload int) []byte {
	b := make([]byte, 40+8+payload)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(8+payload))
	b[6] = next
	b[23], b[39] = 1, 1
	binary.BigEndian.PutUint16(b[40:], sport)
	binary.BigEndian.PutUint16(b[42:], dport)
	binary.BigEndian.PutUint16(b[44:], uint16(8+payload))
	return b
}

func TestFilter(t *testing.T) {
	ranges := []PortRange{{4000, 4999}, {10000, 10099}}
	prog, err := Filter(ranges)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"v4 dst in first range", ip4(17, 5, 0, 5060, 4000, 10), true},
		{"v4 src at end of first range", ip4(17, 5, 0, 4999, 5060, 10), true},
		{"v4 dst in second range", ip4(17, 5, 0, 1, 10099, 10), true},
		{"v4 just below", ip4(17, 5, 0, 3999, 5060, 10), false},
		{"v4 just above", ip4(17, 5, 0, 5000, 10100, 10), false},
		{"v4 between ranges", ip4(17, 5, 0, 9999, 5000, 10), false},
		{"v4 with options", ip4(17, 7, 0, 5060, 4500, 10), true},
		{"v4 options, port in the options' place only", func() []byte { b := ip4(17, 7, 0, 1, 2, 10); binary.BigEndian.PutUint16(b[20:], 4500); return b }(), false},
		{"v4 TCP", ip4(6, 5, 0, 4000, 4000, 10), false},
		{"v4 later fragment", ip4(17, 5, 0x0010, 4000, 4000, 10), false},
		{"v4 first fragment (MF)", ip4(17, 5, 0x2000, 4000, 4000, 10), false},
		{"v4 don't-fragment set", ip4(17, 5, 0x4000, 4000, 4000, 10), true},
		{"v6 dst in range", ip6(17, 5060, 4100, 10), true},
		{"v6 src in range", ip6(17, 10050, 5060, 10), true},
		{"v6 out of range", ip6(17, 5060, 5061, 10), false},
		{"v6 extension header", ip6(0, 4000, 4000, 10), false},
		{"truncated", ip4(17, 5, 0, 4000, 4000, 0)[:21], false},
		{"not IP", []byte{0x10, 0, 0}, false},
	} {
		if got := run(t, prog, c.b) != 0; got != c.want {
			t.Errorf("%s: accepted %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFilterLimits(t *testing.T) {
	if _, err := Filter(nil); err == nil {
		t.Error("no ranges: no error")
	}
	var many []PortRange
	for i := 0; i < 100; i++ {
		many = append(many, PortRange{uint16(1000 + 10*i), uint16(1005 + 10*i)})
	}
	if _, err := Filter(many); err == nil {
		t.Error("100 ranges (jumps over 255): no error")
	}
	if _, err := Filter(many[:20]); err != nil {
		t.Errorf("20 ranges: %v", err)
	}
	_ = fmt.Sprint
}
