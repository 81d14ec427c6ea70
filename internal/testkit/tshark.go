package testkit

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// TsharkT38Offers reads the SDPs of the SIP messages on sipPort in the
// pcap file with Wireshark's own dissectors (tshark): for each T.38
// stream an SDP declared with a T38FaxMaxDatagram, its address:port (the
// connection address and the m=image port) and that size, the newest
// message's winning.
func TsharkT38Offers(t testing.TB, file string, sipPort int) map[string]int {
	t.Helper()
	Require(t, "tshark")
	out, err := exec.Command("tshark", "-n", "-r", file, "-d", fmt.Sprintf("udp.port==%d,sip", sipPort),
		"-Y", `sdp.media_attr contains "T38FaxMaxDatagram"`, "-T", "fields",
		"-e", "sdp.connection_info.address", "-e", "sdp.media.port", "-e", "sdp.media_attr",
		"-E", "occurrence=a", "-E", "aggregator=|").Output()
	if err != nil {
		t.Fatalf("tshark: SDPs in %s: %v", file, err)
	}
	offers := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		addrs, ports := strings.Split(f[0], "|"), strings.Split(f[1], "|")
		max := 0
		for _, a := range strings.Split(f[2], "|") {
			if v, ok := strings.CutPrefix(a, "T38FaxMaxDatagram:"); ok {
				fmt.Sscan(v, &max)
			}
		}
		// The media-level address when there is one (it comes last).
		offers[net.JoinHostPort(addrs[len(addrs)-1], ports[0])] = max
	}
	return offers
}
