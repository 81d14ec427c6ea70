package capture

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// udptlPkt is an IPv4 UDP packet carrying a UDPTL datagram of sequence
// number seq (a CED indicator, no redundancy).
func udptlPkt(sport, dport, seq uint16) []byte {
	payload := []byte{byte(seq >> 8), byte(seq), 0x01, 0x04, 0x00, 0x00}
	b := ip4(17, 5, 0, sport, dport, len(payload))
	copy(b[28:], payload)
	return b
}

func TestMonitorDispatch(t *testing.T) {
	m := NewMonitor(MonitorConfig{UDPTL: []PortRange{{4000, 4999}}, RTP: []PortRange{{10000, 10999}}})
	for i := uint16(0); i < 10; i++ {
		if i != 4 {
			m.Handle(udptlPkt(4100, 30000, i), t0.Add(time.Duration(i)*20*time.Millisecond))
		}
	}
	m.Handle(udptlPkt(5060, 5060, 0), t0)                        // no port in a range
	m.Handle(ip4(6, 5, 0, 4100, 30000, 10), t0)                  // TCP
	m.Handle(udptlPkt(4100, 30000, 0)[:25], t0)                  // truncated
	m.Handle(ip4(17, 5, 0, 4100, 30000, 1), t0.Add(time.Second)) // not UDPTL
	c := m.Counters()
	if c.Packets != 13 || c.Dispatched != 10 || c.Ignored != 2 || c.Malformed != 1 || c.Flows != 1 {
		t.Errorf("counters %+v", c)
	}
	fs := m.Flows(nil)
	if len(fs) != 1 || fs[0].Kind != KindUDPTL || fs[0].Packets != 10 {
		t.Fatalf("flows %+v", fs)
	}
	if u := fs[0].UDPTL; u.Packets != 9 || u.Gaps != 1 || u.Unrecoverable != 1 || u.Malformed != 1 {
		t.Errorf("UDPTL stats %+v", u)
	}
}

// TestMonitorSplit: packets on the same ports after a silence longer than
// Split are a new stream, not more of the old one.
func TestMonitorSplit(t *testing.T) {
	m := NewMonitor(MonitorConfig{UDPTL: []PortRange{{4000, 4999}}, Split: 10 * time.Second})
	for i := uint16(0); i < 5; i++ {
		m.Handle(udptlPkt(4100, 30000, i), t0.Add(time.Duration(i)*time.Second))
	}
	later := t0.Add(time.Minute)
	for i := uint16(0); i < 3; i++ {
		m.Handle(udptlPkt(4100, 30000, i), later.Add(time.Duration(i)*time.Second))
	}
	fs := m.Flows(nil)
	if len(fs) != 1 || fs[0].Packets != 3 || !fs[0].First.Equal(later) || fs[0].UDPTL.Restarts != 0 {
		t.Errorf("flows after a silence: %+v", fs)
	}
}

// TestMonitorBounds: a flood beyond the rate is counted, not parsed, and
// new flows beyond the table are refused until one is idle.
func TestMonitorBounds(t *testing.T) {
	m := NewMonitor(MonitorConfig{UDPTL: []PortRange{{4000, 4999}}, Rate: 100, Burst: 10, MaxFlows: 2, Idle: time.Minute})
	for i := uint16(0); i < 50; i++ {
		m.Handle(udptlPkt(4100, 30000, i), t0) // all at once
	}
	if c := m.Counters(); c.Dispatched != 10 || c.RateDropped != 40 {
		t.Errorf("flood: %+v", c)
	}
	m.Handle(udptlPkt(4101, 30000, 0), t0.Add(time.Second))
	m.Handle(udptlPkt(4102, 30000, 0), t0.Add(2*time.Second))
	if c := m.Counters(); c.FlowsRefused != 1 || c.Flows != 2 {
		t.Errorf("full table: %+v", c)
	}
	m.Handle(udptlPkt(4103, 30000, 0), t0.Add(5*time.Minute)) // the others are idle by now
	if c := m.Counters(); c.FlowsRefused != 1 || c.Flows != 2 {
		t.Errorf("table after idle: %+v", c)
	}
}
