//go:build lab

package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/media/udptl"
	"github.com/faxbox/faxbox/internal/testkit"
)

// t38Packet is one UDPTL datagram as a dissector reads it: what the
// cross-check with Wireshark's T.38 dissector compares.
type t38Packet struct {
	Flow      FlowKey
	Seq       int
	Type      udptl.MsgType
	Value     int   // t30-indicator or t30-data value of the primary IFP
	Fields    []int // field-types of the primary IFP's data fields
	Secondary int   // secondary IFPs (redundancy depth of this datagram)
	Malformed bool
}

func (p t38Packet) String() string {
	if p.Malformed {
		return fmt.Sprintf("%s malformed", p.Flow)
	}
	return fmt.Sprintf("%s seq %d %s %d fields %v secondary %d", p.Flow, p.Seq, p.Type, p.Value, p.Fields, p.Secondary)
}

// tsharkT38 runs Debian's tshark on a pcap file, decoding the UDPTL port
// ranges as T.38 (the 1998 ASN.1, Asterisk's T38FaxVersion 0; no RTP
// guessing), and returns every UDPTL datagram it dissected.
func tsharkT38(t *testing.T, file string, ranges []PortRange) []t38Packet {
	t.Helper()
	testkit.Require(t, "tshark")
	args := []string{"-n", "-r", file, "-T", "json", "--no-duplicate-keys", "-J", "ip udp t38",
		"-o", "t38.use_pre_corrigendum_asn1_specification:TRUE", "-o", "t38.dissect_possible_rtpv2_packets_as_rtp:FALSE"}
	for _, r := range ranges {
		args = append(args, "-d", fmt.Sprintf("udp.port==%d-%d,t38", r.First, r.Last))
	}
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var frames []struct {
		Source struct {
			Layers map[string]json.RawMessage `json:"layers"`
		} `json:"_source"`
	}
	if err := json.Unmarshal(out, &frames); err != nil {
		t.Fatalf("tshark's JSON: %v", err)
	}
	var pkts []t38Packet
	for i, f := range frames {
		l := f.Source.Layers
		if l["t38"] == nil {
			continue
		}
		p, err := dissected(l)
		if err != nil {
			t.Fatalf("tshark frame %d: %v", i+1, err)
		}
		pkts = append(pkts, p)
	}
	return pkts
}

// dissected reads one frame's ip, udp and t38 layers of tshark's JSON.
func dissected(l map[string]json.RawMessage) (t38Packet, error) {
	var ip struct {
		Src string `json:"ip.src"`
		Dst string `json:"ip.dst"`
	}
	var udp struct {
		Src string `json:"udp.srcport"`
		Dst string `json:"udp.dstport"`
	}
	var t38 struct {
		UDPTL *struct {
			Seq      string          `json:"t38.seq_number"`
			Primary  json.RawMessage `json:"t38.primary_ifp_packet_element"`
			Recovery struct {
				Secondary string `json:"t38.secondary_ifp_packets"`
			} `json:"t38.error_recovery_tree"`
		} `json:"t38.UDPTLPacket_element"`
	}
	for name, v := range map[string]any{"ip": &ip, "udp": &udp, "t38": &t38} {
		if err := json.Unmarshal(l[name], v); err != nil {
			return t38Packet{}, fmt.Errorf("layer %s: %w", name, err)
		}
	}
	src, err1 := netip.ParseAddrPort(ip.Src + ":" + udp.Src)
	dst, err2 := netip.ParseAddrPort(ip.Dst + ":" + udp.Dst)
	if err1 != nil || err2 != nil {
		return t38Packet{}, fmt.Errorf("addresses %s:%s > %s:%s", ip.Src, udp.Src, ip.Dst, udp.Dst)
	}
	p := t38Packet{Flow: FlowKey{src, dst}}
	_, p.Malformed = l["_ws.malformed"]
	if p.Malformed || t38.UDPTL == nil || t38.UDPTL.Primary == nil {
		p.Malformed = true
		return p, nil
	}
	p.Seq, _ = strconv.Atoi(t38.UDPTL.Seq)
	p.Secondary, _ = strconv.Atoi(t38.UDPTL.Recovery.Secondary)
	var ifp struct {
		Type string `json:"t38.type_of_msg"`
		Tree struct {
			Indicator *string `json:"t38.t30_indicator"`
			Data      *string `json:"t38.t30_data"`
		} `json:"t38.type_of_msg_tree"`
		Fields map[string]struct {
			Item struct {
				Type string `json:"t38.field_type"`
			} `json:"t38.Data_Field_item_element"`
		} `json:"t38.data_field_tree"`
	}
	if err := json.Unmarshal(t38.UDPTL.Primary, &ifp); err != nil {
		return p, fmt.Errorf("primary IFP: %w", err)
	}
	typ, _ := strconv.Atoi(ifp.Type)
	p.Type = udptl.MsgType(typ)
	switch {
	case ifp.Tree.Indicator != nil:
		p.Value, _ = strconv.Atoi(*ifp.Tree.Indicator)
	case ifp.Tree.Data != nil:
		p.Value, _ = strconv.Atoi(*ifp.Tree.Data)
	}
	for i := 0; i < len(ifp.Fields); i++ {
		item, ok := ifp.Fields["Item "+strconv.Itoa(i)]
		if !ok {
			return p, fmt.Errorf("data field item %d missing", i)
		}
		ft, _ := strconv.Atoi(item.Item.Type)
		p.Fields = append(p.Fields, ft)
	}
	return p, nil
}

// ourT38 parses the UDPTL datagrams of a pcap with package udptl.
func ourT38(t *testing.T, pcap []byte, mc MonitorConfig) []t38Packet {
	t.Helper()
	var pkts []t38Packet
	var p udptl.Packet
	m := NewMonitor(mc)
	err := ReadPcap(bytes.NewReader(pcap), func(b []byte, _ time.Time) error {
		key, payload, ok := UDP(b)
		if !ok || m.kind(key) != KindUDPTL {
			return nil
		}
		tp := t38Packet{Flow: key}
		if err := udptl.Parse(payload, mc.T38Version, &p); err != nil {
			tp.Malformed = true
			pkts = append(pkts, tp)
			return nil
		}
		tp.Seq, tp.Type, tp.Secondary = int(p.Seq), p.Primary.Type, len(p.Secondary())
		tp.Value = int(p.Primary.Indicator)
		if p.Primary.Type == udptl.T30Data {
			tp.Value = int(p.Primary.Data)
		}
		for _, f := range p.Primary.Fields() {
			tp.Fields = append(tp.Fields, int(f.Type))
		}
		pkts = append(pkts, tp)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkts
}

// gapCounts are a flow's sequence gaps.
type gapCounts struct{ Packets, Gaps, Recovered, Unrecoverable int }

// referenceGaps computes each flow's gaps from what the dissector read,
// the plain way: a sequence number between a flow's first and highest
// that no datagram carried is a gap; it is recovered when a later
// datagram's redundancy reaches back to it (seq - secondary <= it).
// Sequence numbers here do not wrap (a lab fax sends a few hundred).
func referenceGaps(pkts []t38Packet) map[FlowKey]gapCounts {
	type acc struct {
		got   map[int]bool
		reach map[int]bool
		lo    int
		hi    int
		n     int
	}
	flows := map[FlowKey]*acc{}
	for _, p := range pkts {
		if p.Malformed {
			continue
		}
		a := flows[p.Flow]
		if a == nil {
			a = &acc{got: map[int]bool{}, reach: map[int]bool{}, lo: p.Seq, hi: p.Seq}
			flows[p.Flow] = a
		}
		a.n++
		a.got[p.Seq] = true
		a.lo, a.hi = min(a.lo, p.Seq), max(a.hi, p.Seq)
		for i := 1; i <= p.Secondary; i++ {
			a.reach[p.Seq-i] = true
		}
	}
	out := map[FlowKey]gapCounts{}
	for k, a := range flows {
		g := gapCounts{Packets: a.n}
		for s := a.lo; s <= a.hi; s++ {
			switch {
			case a.got[s]:
			case a.reach[s]:
				g.Gaps++
				g.Recovered++
			default:
				g.Gaps++
				g.Unrecoverable++
			}
		}
		out[k] = g
	}
	return out
}

// crossCheck compares package udptl with tshark on one pcap: every UDPTL
// datagram's sequence number, IFP type and value, field types and
// redundancy depth, and per flow the packets, gaps and recovered and
// unrecoverable ones the monitor counts against those derived from
// tshark's reading. It returns tshark's per-flow counts.
func crossCheck(t *testing.T, name string, pcap []byte, mc MonitorConfig) map[FlowKey]gapCounts {
	t.Helper()
	file := filepath.Join(t.TempDir(), name+".pcap")
	if err := os.WriteFile(file, pcap, 0o644); err != nil {
		t.Fatal(err)
	}
	theirs := tsharkT38(t, file, mc.UDPTL)
	ours := ourT38(t, pcap, mc)
	if len(theirs) == 0 {
		t.Fatalf("%s: tshark dissected no T.38 datagram", name)
	}
	if len(ours) != len(theirs) {
		t.Errorf("%s: %d UDPTL datagrams parsed, tshark dissected %d", name, len(ours), len(theirs))
	}
	bad := 0
	for i := range min(len(ours), len(theirs)) {
		if o, w := ours[i].String(), theirs[i].String(); o != w {
			if bad++; bad <= 5 {
				t.Errorf("%s: datagram %d:\n ours   %s\n tshark %s", name, i, o, w)
			}
		}
	}
	want := referenceGaps(theirs)
	m := replay(t, mc, pcap)
	flows := m.Flows(func(_ FlowKey, k Kind) bool { return k == KindUDPTL })
	if len(flows) != len(want) {
		t.Errorf("%s: %d UDPTL flows, tshark %d", name, len(flows), len(want))
	}
	for _, f := range flows {
		u := f.UDPTL
		got := gapCounts{u.Packets, u.Gaps, u.Recovered, u.Unrecoverable}
		if got != want[f.Key] {
			t.Errorf("%s: flow %s: %+v; from tshark %+v", name, f.Key, got, want[f.Key])
		}
	}
	return want
}

// thin drops datagrams of a pcap, deterministically from seed: each UDPTL
// datagram with probability pct/100, and in each flow a burst of burst
// consecutive ones after its 40th.
func thin(t *testing.T, pcap []byte, mc MonitorConfig, seed uint64, pct, burst int) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	var out bytes.Buffer
	pw, _ := NewPcapWriter(&out)
	m := NewMonitor(mc)
	seen := map[FlowKey]int{}
	err := ReadPcap(bytes.NewReader(pcap), func(b []byte, at time.Time) error {
		if key, _, ok := UDP(b); ok && m.kind(key) == KindUDPTL {
			n := seen[key]
			seen[key]++
			if rng.IntN(100) < pct || (n >= 40 && n < 40+burst) {
				return nil
			}
		}
		return pw.Write(b, at)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// labPcapConfig is the monitor configuration of the committed capture
// (a lab on base port 38060: the box's UDPTL ports 38360-38459, RTP
// 38160-38259).
var labPcapConfig = MonitorConfig{UDPTL: []PortRange{{38360, 38459}}, RTP: []PortRange{{38160, 38259}}, Rate: 1 << 30, Burst: 1 << 30}

// TestTsharkCrossCheck compares the UDPTL parser and the flow accounting
// with Wireshark's T.38 dissector on the committed capture of a real lab
// fax (T.38 with redundancy), as captured and with datagrams dropped
// (random loss and a burst longer than the redundancy depth): the same
// sequence numbers, IFP types and counts of recovered and unrecoverable
// gaps.
func TestTsharkCrossCheck(t *testing.T) {
	pcap, err := os.ReadFile("testdata/lab-t38-redundancy.pcap")
	if err != nil {
		t.Fatal(err)
	}
	clean := crossCheck(t, "clean", pcap, labPcapConfig)
	for k, g := range clean {
		if g.Gaps != 0 || g.Packets == 0 {
			t.Errorf("clean capture, flow %s: %+v", k, g)
		}
	}
	var rec, unrec int
	for seed := uint64(1); seed <= 4; seed++ {
		lossy := thin(t, pcap, labPcapConfig, seed, 8, 5)
		for _, g := range crossCheck(t, fmt.Sprintf("lossy-%d", seed), lossy, labPcapConfig) {
			rec += g.Recovered
			unrec += g.Unrecoverable
		}
	}
	// The comparison means something only when both kinds occurred.
	if rec == 0 || unrec == 0 {
		t.Errorf("the thinned captures hold %d recovered and %d unrecoverable gaps; want some of each", rec, unrec)
	}
	t.Logf("thinned captures: %d gaps recovered, %d unrecoverable, all as tshark's reading has them", rec, unrec)
}
