package capture

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/media/rtpstat"
	"github.com/faxbox/faxbox/firmware/media/udptl"
)

// PortRange is an inclusive range of UDP ports.
type PortRange struct{ First, Last uint16 }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p uint16) bool { return p >= r.First && p <= r.Last }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

func inRanges(rs []PortRange, p uint16) bool {
	for _, r := range rs {
		if r.Contains(p) {
			return true
		}
	}
	return false
}

// Kind is what a flow carries.
type Kind uint8

const (
	KindUDPTL Kind = iota + 1
	KindRTP
)

func (k Kind) String() string {
	switch k {
	case KindUDPTL:
		return "udptl"
	case KindRTP:
		return "rtp"
	}
	return "unknown"
}

// FlowKey is one direction of a UDP flow.
type FlowKey struct{ Src, Dst netip.AddrPort }

func (k FlowKey) String() string { return k.Src.String() + ">" + k.Dst.String() }

// FlowSnapshot is what the monitor knows of one flow.
type FlowSnapshot struct {
	Key         FlowKey
	Kind        Kind
	First, Last time.Time
	Packets     int
	UDPTL       udptl.Stats   // KindUDPTL
	RTP         rtpstat.Stats // KindRTP
}

// Counters are the monitor's own counts.
type Counters struct {
	Packets      uint64 // IP packets handed to the monitor
	Dispatched   uint64 // to a UDPTL or RTP flow
	Signalling   uint64 // SIP datagrams read for their SDP
	Ignored      uint64 // not UDP, a fragment, or no port in a range
	Malformed    uint64 // truncated IP/UDP headers
	RateDropped  uint64 // over the packet rate limit, not looked at
	FlowsRefused uint64 // packets of new flows while the table was full
	// FloodEvicted: flows that were no stream (flood: no valid UDPTL or
	// RTP packet, or a single one and silence), forgotten to make room
	// for a new flow.
	FloodEvicted uint64
	Flows        int // flows in the table
	MaxFlows     int // the table's bound
}

// MonitorConfig selects and bounds what a Monitor tracks.
type MonitorConfig struct {
	// UDPTL and RTP are the box's Asterisk port ranges (udptl.conf,
	// rtp.conf): a datagram with either port in a range is that kind.
	UDPTL, RTP []PortRange
	// SIP is the box's SIP signalling port (pjsip.conf's UDP transport):
	// the SDPs of its messages tell which audio and T.38 streams belong
	// to one call, and each T.38 stream's negotiated T38FaxMaxDatagram
	// (Monitor.DialogOf, Monitor.T38Offer). Optional.
	SIP []PortRange
	// T38Version is the T38FaxVersion the box negotiates (Asterisk: 0).
	T38Version udptl.Version
	// MaxFlows bounds the flow table (default 256). A new flow while it
	// is full replaces, first, the least recently seen flow that is no
	// stream (no valid UDPTL or RTP packet, or a single one and then 2 s
	// of silence: a flood's flows), else the flow idle longest if that one
	// is idle over Idle; else its packets are refused (counted). A flood
	// of new flows thus does not keep a new call's media out of the table.
	MaxFlows int
	// Idle: a flow without packets for this long may be forgotten
	// (default 10 minutes).
	Idle time.Duration
	// Split: a packet of a flow that was silent for longer than this
	// starts the flow anew (default 30 s): Asterisk reuses ports, and a
	// later call on the same address pair is another stream. A fax call's
	// media is never silent that long (RTP every 20 ms; T.38 at least
	// every T.30 response time).
	Split time.Duration
	// Rate and Burst limit the packets looked at per second (token
	// bucket; defaults 20000/s and 2000). Over the limit a packet is
	// counted in RateDropped and not parsed: a flood on the port ranges
	// costs the reading, never memory.
	Rate, Burst int
}

type flow struct {
	key         FlowKey
	kind        Kind
	first, last time.Time
	packets     int
	valid       int // packets that parsed as UDPTL or RTP
	t38         udptl.Flow
	rtp         rtpstat.Stream
}

// Monitor dispatches IP packets to per-flow UDPTL and RTP statistics. It
// is safe for concurrent use: one goroutine feeds it (Handle), others take
// snapshots.
type Monitor struct {
	cfg MonitorConfig

	mu      sync.Mutex
	flows   map[FlowKey]*flow
	pkt     udptl.Packet // reused by Handle
	c       Counters
	tokens  float64
	refill  time.Time
	drops   dropLog
	dialogs dialogs
}

// NewMonitor returns a monitor for cfg (defaults filled in).
func NewMonitor(cfg MonitorConfig) *Monitor {
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = 256
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 10 * time.Minute
	}
	if cfg.Split <= 0 {
		cfg.Split = 30 * time.Second
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 20000
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 2000
	}
	return &Monitor{cfg: cfg, flows: map[FlowKey]*flow{}, tokens: float64(cfg.Burst), dialogs: dialogs{}}
}

// allow takes a token of the rate limiter at time now.
func (m *Monitor) allow(now time.Time) bool {
	if !m.refill.IsZero() {
		if d := now.Sub(m.refill); d > 0 {
			m.tokens = min(float64(m.cfg.Burst), m.tokens+d.Seconds()*float64(m.cfg.Rate))
		}
	}
	m.refill = now
	if m.tokens < 1 {
		return false
	}
	m.tokens--
	return true
}

// kind tells a flow's kind by its ports (0: neither range).
func (m *Monitor) kind(k FlowKey) Kind {
	switch sp, dp := k.Src.Port(), k.Dst.Port(); {
	case inRanges(m.cfg.UDPTL, sp) || inRanges(m.cfg.UDPTL, dp):
		return KindUDPTL
	case inRanges(m.cfg.RTP, sp) || inRanges(m.cfg.RTP, dp):
		return KindRTP
	}
	return 0
}

// Handle accounts one IP packet (IPv4 or IPv6, from its network header)
// that arrived at at.
func (m *Monitor) Handle(b []byte, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.c.Packets++
	if !m.allow(at) {
		m.c.RateDropped++
		m.drops.add(at, Drops{RateLimited: 1})
		return
	}
	key, payload, v := parseUDP(b)
	switch v {
	case notUDP:
		m.c.Ignored++
		return
	case badHeader:
		m.c.Malformed++
		return
	}
	if fromBox := inRanges(m.cfg.SIP, key.Src.Port()); fromBox || inRanges(m.cfg.SIP, key.Dst.Port()) {
		m.c.Signalling++
		m.dialogs.add(ScanSDP(payload), fromBox, at)
		return
	}
	kind := m.kind(key)
	if kind == 0 {
		m.c.Ignored++
		return
	}
	f := m.flow(key, kind, at)
	if f == nil {
		m.c.FlowsRefused++
		m.drops.add(at, Drops{Refused: 1})
		return
	}
	m.c.Dispatched++
	f.packets++
	f.last = at
	if kind == KindRTP {
		if f.rtp.Add(payload, at) == nil { // a non-RTP datagram is counted as malformed by the stream
			f.valid++
		}
		return
	}
	if err := udptl.Parse(payload, m.cfg.T38Version, &m.pkt); err != nil {
		f.t38.AddMalformed(len(payload), at)
		return
	}
	f.valid++
	f.t38.Add(&m.pkt, at)
}

// UDP extracts the flow and payload of an IPv4 or IPv6 UDP packet (no
// fragments, no IPv6 extension headers); ok is false for anything else.
func UDP(b []byte) (key FlowKey, payload []byte, ok bool) {
	key, payload, v := parseUDP(b)
	return key, payload, v == isUDP
}

type verdict uint8

const (
	isUDP verdict = iota
	notUDP
	badHeader
)

func parseUDP(b []byte) (FlowKey, []byte, verdict) {
	var s, d netip.Addr
	var l4 []byte
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || total < ihl || total > len(b) {
			return FlowKey{}, nil, badHeader
		}
		if b[9] != 17 || binary.BigEndian.Uint16(b[6:])&0x3fff != 0 { // not UDP, or a fragment
			return FlowKey{}, nil, notUDP
		}
		s, d = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		l4 = b[ihl:total]
	case len(b) >= 40 && b[0]>>4 == 6:
		plen := int(binary.BigEndian.Uint16(b[4:]))
		if 40+plen > len(b) {
			return FlowKey{}, nil, badHeader
		}
		if b[6] != 17 { // extension headers are not followed
			return FlowKey{}, nil, notUDP
		}
		s, d = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40 : 40+plen]
	default:
		return FlowKey{}, nil, notUDP
	}
	if len(l4) < 8 {
		return FlowKey{}, nil, badHeader
	}
	ulen := int(binary.BigEndian.Uint16(l4[4:]))
	if ulen < 8 || ulen > len(l4) {
		return FlowKey{}, nil, badHeader
	}
	src := netip.AddrPortFrom(s, binary.BigEndian.Uint16(l4[0:]))
	dst := netip.AddrPortFrom(d, binary.BigEndian.Uint16(l4[2:]))
	return FlowKey{src, dst}, l4[8:ulen], isUDP
}

// flow returns the flow of key, creating it when the table has room (or an
// idle flow to replace); nil when it has not.
func (m *Monitor) flow(key FlowKey, kind Kind, at time.Time) *flow {
	if f, ok := m.flows[key]; ok {
		if f.kind == kind && at.Sub(f.last) <= m.cfg.Split {
			return f
		}
		delete(m.flows, key) // silent too long: a new stream on the same ports
	}
	if len(m.flows) >= m.cfg.MaxFlows {
		victim, flood := m.victim(at)
		if !flood && at.Sub(victim.last) <= m.cfg.Idle {
			return nil
		}
		if flood {
			m.c.FloodEvicted++
		}
		delete(m.flows, victim.key)
	}
	f := &flow{key: key, kind: kind, first: at}
	m.flows[key] = f
	return f
}

// A full table gives up a flow that is no stream (flood) for a new one:
// a flow that never carried a valid packet, or one with fewer than proven
// valid packets and silent for over unprovenIdle (a call's media comes
// every 20 ms for RTP and in bursts of repeated indicators for UDPTL).
const (
	proven       = 2
	unprovenIdle = 2 * time.Second
)

// victim picks the flow a full table gives up for a new one at at: the
// least recently seen flood flow (flood is true), else the one idle
// longest.
func (m *Monitor) victim(at time.Time) (victim *flow, flood bool) {
	var oldest, invalid, unproven *flow
	for _, f := range m.flows {
		if oldest == nil || f.last.Before(oldest.last) {
			oldest = f
		}
		switch {
		case f.valid == 0:
			if invalid == nil || f.last.Before(invalid.last) {
				invalid = f
			}
		case f.valid < proven && at.Sub(f.last) > unprovenIdle:
			if unproven == nil || f.last.Before(unproven.last) {
				unproven = f
			}
		}
	}
	switch {
	case invalid != nil:
		return invalid, true
	case unproven != nil:
		return unproven, true
	}
	return oldest, false
}

// Expire forgets the flows idle for longer than the configured Idle at now.
func (m *Monitor) Expire(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, f := range m.flows {
		if now.Sub(f.last) > m.cfg.Idle {
			delete(m.flows, k)
		}
	}
}

func (f *flow) snapshot() FlowSnapshot {
	s := FlowSnapshot{Key: f.key, Kind: f.kind, First: f.first, Last: f.last, Packets: f.packets}
	if f.kind == KindUDPTL {
		s.UDPTL = f.t38.Stats()
	} else {
		s.RTP = f.rtp.Stats()
	}
	return s
}

// Flows returns a snapshot of every flow that matches (nil: all), oldest
// first.
func (m *Monitor) Flows(match func(FlowKey, Kind) bool) []FlowSnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []FlowSnapshot
	for _, f := range m.flows {
		if match == nil || match(f.key, f.kind) {
			out = append(out, f.snapshot())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].First.Equal(out[j].First) {
			return out[i].First.Before(out[j].First)
		}
		return out[i].Key.String() < out[j].Key.String()
	})
	return out
}

// Counters returns the monitor's counts.
func (m *Monitor) Counters() Counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.c
	c.Flows, c.MaxFlows = len(m.flows), m.cfg.MaxFlows
	return c
}
