package rules

import (
	"fmt"
	"net"
)

// Nets is an allow list of networks (compat.allow_ips, ipp.allow_ips,
// smtp_listen.allow_ips): the one place a client's address is checked
// against one.
type Nets []*net.IPNet

// ParseNets reads entries that are a CIDR ("192.168.1.0/24") or a single
// address ("127.0.0.1", "::1"). It returns the entries it could read and
// the first error, naming the bad entry.
func ParseNets(entries []string) (Nets, error) {
	var out Nets
	var first error
	for _, e := range entries {
		if _, n, err := net.ParseCIDR(e); err == nil {
			out = append(out, n)
		} else if ip := net.ParseIP(e); ip != nil {
			bits := 8 * len(ip)
			if ip4 := ip.To4(); ip4 != nil {
				ip, bits = ip4, 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
		} else if first == nil {
			first = fmt.Errorf("rules: %q is neither an IP address nor a CIDR", e)
		}
	}
	return out, first
}

// Contains reports whether ip is in one of the networks.
func (ns Nets) Contains(ip net.IP) bool {
	for _, n := range ns {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ContainsAddr reports whether the host of addr ("host:port", as in
// http.Request.RemoteAddr) is in one of the networks.
func (ns Nets) ContainsAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return ns.Contains(net.ParseIP(host))
}
