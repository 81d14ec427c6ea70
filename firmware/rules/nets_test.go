package rules

import (
	"net"
	"testing"
)

func TestNets(t *testing.T) {
	ns, err := ParseNets([]string{"127.0.0.1", "::1", "192.168.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"127.0.0.1:5": true, "[::1]:5": true, "192.168.1.77:80": true, "192.168.2.1:80": false,
		"127.0.0.2:5": false, "garbage": false, "[::2]:5": false,
	} {
		if got := ns.ContainsAddr(addr); got != want {
			t.Errorf("ContainsAddr(%q) = %v, want %v", addr, got, want)
		}
	}
	if !ns.Contains(net.ParseIP("::ffff:127.0.0.1")) {
		t.Error("an IPv4-mapped loopback address is not in 127.0.0.1")
	}
	ns, err = ParseNets([]string{"10.0.0.0/8", "not-an-ip"})
	if err == nil || len(ns) != 1 {
		t.Errorf("ParseNets with a bad entry: %v, %d nets", err, len(ns))
	}
}
