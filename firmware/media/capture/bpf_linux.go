package capture

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// snapLen is what the filter lets through of an accepted packet: all of it
// (a loopback packet is at most 64 KiB).
const snapLen = 1 << 18

// ins is one classic BPF instruction with symbolic jump targets ("" = the
// next instruction).
type ins struct {
	code   uint16
	k      uint32
	jt, jf string
	label  string // this instruction's label
}

// Filter returns the classic BPF program the kernel runs on every packet
// of a SOCK_DGRAM packet socket (data from the network header): it accepts
// IPv4 and IPv6 UDP datagrams (no fragments, no IPv6 extension headers)
// whose source or destination port is in ranges, and drops the rest.
func Filter(ranges []PortRange) ([]unix.SockFilter, error) {
	const (
		ldB   = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
		ldH   = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
		ldHX  = unix.BPF_LD | unix.BPF_H | unix.BPF_IND
		ldxIP = unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH
		rsh   = unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jgt   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
		jset  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ja    = unix.BPF_JMP | unix.BPF_JA
		ret   = unix.BPF_RET | unix.BPF_K
	)
	if len(ranges) == 0 {
		return nil, fmt.Errorf("capture: no port range to filter on")
	}
	// ports tests A against every range: accept on a match, else fall on.
	ports := func() []ins {
		var p []ins
		for _, r := range ranges {
			p = append(p, ins{code: jge, k: uint32(r.First), jf: "+1"}, ins{code: jgt, k: uint32(r.Last), jf: "accept"})
		}
		return p
	}
	prog := []ins{
		{code: ldB, k: 0}, {code: rsh, k: 4},
		{code: jeq, k: 4, jt: "v4"},
		{code: jeq, k: 6, jt: "v6", jf: "drop"},
		{label: "v4", code: ldB, k: 9}, {code: jeq, k: unix.IPPROTO_UDP, jf: "drop"},
		{code: ldH, k: 6}, {code: jset, k: 0x3fff, jt: "drop"}, // MF or an offset: a fragment
		{code: ldxIP, k: 0}, {code: ldHX, k: 0},
	}
	prog = append(prog, ports()...)
	prog = append(prog, ins{code: ldHX, k: 2})
	prog = append(prog, ports()...)
	prog = append(prog, ins{code: ja, jt: "drop"},
		ins{label: "v6", code: ldB, k: 6}, ins{code: jeq, k: unix.IPPROTO_UDP, jf: "drop"},
		ins{code: ldH, k: 40})
	prog = append(prog, ports()...)
	prog = append(prog, ins{code: ldH, k: 42})
	prog = append(prog, ports()...)
	prog = append(prog, ins{code: ja, jt: "drop"},
		ins{label: "accept", code: ret, k: snapLen},
		ins{label: "drop", code: ret, k: 0})
	return assemble(prog)
}

// assemble resolves the labels ("+n" skips n instructions) into offsets.
func assemble(prog []ins) ([]unix.SockFilter, error) {
	at := map[string]int{}
	for i, in := range prog {
		if in.label != "" {
			at[in.label] = i
		}
	}
	off := func(i int, target string) (int, error) {
		switch {
		case target == "":
			return 0, nil
		case target[0] == '+':
			var n int
			_, err := fmt.Sscanf(target, "+%d", &n)
			return n, err
		}
		t, ok := at[target]
		if !ok || t <= i {
			return 0, fmt.Errorf("capture: filter: no label %q after instruction %d", target, i)
		}
		return t - i - 1, nil
	}
	out := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		jt, err := off(i, in.jt)
		if err != nil {
			return nil, err
		}
		jf, err := off(i, in.jf)
		if err != nil {
			return nil, err
		}
		if in.code == unix.BPF_JMP|unix.BPF_JA { // an unconditional jump's offset is k
			in.k, jt = uint32(jt), 0
		}
		if jt > 255 || jf > 255 {
			return nil, fmt.Errorf("capture: filter: jump from instruction %d too far (too many port ranges)", i)
		}
		out[i] = unix.SockFilter{Code: in.code, Jt: uint8(jt), Jf: uint8(jf), K: in.k}
	}
	return out, nil
}
