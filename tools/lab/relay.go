package lab

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// relayEndpointOptions go into each of the remote's endpoints with the
// relay: its media advertised at the relay, and answered symmetrically
// (to where the datagrams come from: the relay).
const relayEndpointOptions = "media_address = " + RelayListenIP + "\nrtp_symmetric = yes\nt38_udptl_nat = yes\n"

var nftName = regexp.MustCompile(`[^a-z0-9_]`)

// nftTable is the nftables table of lab name's relay rule.
func nftTable(name string) string {
	return "faxbox_lab_" + nftName.ReplaceAllString(strings.ToLower(name), "_")
}

// startRelay starts the relay on the remote's port ranges and drops the
// remote's media sent to the box directly.
func (l *Lab) startRelay(ctx context.Context) error {
	r, b := l.Remote, l.Box
	rel, err := StartRelay(RelayConfig{Remote: "127.0.0.1", Listen: RelayListenIP, Out: RelayOutIP, Seed: l.Opts.RelaySeed,
		RTP: PortRange{r.RTPStart, r.RTPStart + 99}, UDPTL: PortRange{r.UDPTLStart, r.UDPTLStart + 99}})
	if err != nil {
		return err
	}
	l.Relay = rel
	t := nftTable(l.Opts.Name)
	script := fmt.Sprintf(`table inet %[1]s
delete table inet %[1]s
table inet %[1]s {
	chain out {
		type filter hook output priority 0; policy accept;
		ip saddr 127.0.0.1 ip daddr 127.0.0.1 udp sport { %[2]d-%[3]d, %[4]d-%[5]d } udp dport { %[6]d-%[7]d, %[8]d-%[9]d } counter drop
	}
}
`, t, r.RTPStart, r.RTPStart+99, r.UDPTLStart, r.UDPTLStart+99, b.RTPStart, b.RTPStart+99, b.UDPTLStart, b.UDPTLStart+99)
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab: nft rule for the relay (install Debian's nftables; needs root): %v: %s", err, out)
	}
	fmt.Fprintf(l.Opts.Log, "lab %s: media relay on %s (remote's media advertised there), seed %d\n", l.Opts.Name, RelayListenIP, l.Opts.RelaySeed)
	return nil
}

// stopRelay stops the relay and removes its rule.
func (l *Lab) stopRelay() {
	if l.Relay != nil {
		l.Relay.Close()
		l.Relay = nil
	}
	RemoveRelayRule(l.Opts.Name)
}

// RemoveRelayRule deletes lab name's nftables table, if any.
func RemoveRelayRule(name string) {
	if _, err := exec.LookPath("nft"); err == nil {
		exec.Command("nft", "delete", "table", "inet", nftTable(name)).Run()
	}
}
