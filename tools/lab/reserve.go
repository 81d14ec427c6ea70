package lab

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// reservedPorts is the kernel's list of ports it never hands out as
// ephemeral (source) ports; explicit binds still get them.
const reservedPorts = "/proc/sys/net/ipv4/ip_local_reserved_ports"

// portSpan is how many ports from BasePort a lab binds: SIP, AMI, both
// Asterisks' RTP and UDPTL ranges and the relay's.
const portSpan = 500

// reservePorts adds first..last to the kernel's reserved ports, so that
// no client socket of another process (a DNS query, a test's UDP socket)
// takes a lab's port as its ephemeral port while the lab is down and the
// lab's bind then fails with "address already in use". The lab's ports lie
// in Linux's ephemeral range (32768-60999). Ranges are only added, never
// removed; processes bringing labs up at once take turns (a lock file).
func reservePorts(first, last int) error {
	lock, err := os.OpenFile("/run/faxbox-lab-ports.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("lab: reserve ports: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lab: reserve ports: %w", err)
	}
	b, err := os.ReadFile(reservedPorts)
	if err != nil {
		return fmt.Errorf("lab: reserve ports: %w", err)
	}
	ranges, err := parsePortRanges(string(b))
	if err != nil {
		return fmt.Errorf("lab: reserve ports: %s: %w", reservedPorts, err)
	}
	merged := mergePortRanges(append(ranges, [2]int{first, last}))
	if slices.Equal(merged, mergePortRanges(ranges)) {
		return nil
	}
	if err := os.WriteFile(reservedPorts, []byte(formatPortRanges(merged)+"\n"), 0o644); err != nil {
		return fmt.Errorf("lab: reserve ports %d-%d (needs root): %w", first, last, err)
	}
	return nil
}

// parsePortRanges reads "a-b,c,d-e" as the kernel writes it.
func parsePortRanges(s string) ([][2]int, error) {
	var out [][2]int
	for _, f := range strings.Split(strings.TrimSpace(s), ",") {
		if f == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, err
			}
		}
		out = append(out, [2]int{a, b})
	}
	return out, nil
}

// mergePortRanges sorts ranges and joins the ones that overlap or touch.
func mergePortRanges(rs [][2]int) [][2]int {
	rs = append([][2]int(nil), rs...)
	sort.Slice(rs, func(i, j int) bool { return rs[i][0] < rs[j][0] })
	var out [][2]int
	for _, r := range rs {
		if n := len(out); n > 0 && r[0] <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

func formatPortRanges(rs [][2]int) string {
	var parts []string
	for _, r := range rs {
		if r[0] == r[1] {
			parts = append(parts, strconv.Itoa(r[0]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
	}
	return strings.Join(parts, ",")
}
