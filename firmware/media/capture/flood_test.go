package capture

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// TestMonitorFlood floods a monitor with its default bounds: 1,000,000
// hostile packets in 2 s (500,000/s, 25 times the default rate limit) on
// the UDPTL and RTP ranges, each from a new source port (a new flow), with
// random payloads (truncated, garbage, RTP with random SSRCs), while a
// fax's UDPTL flow sends 50 datagrams/s. The flood is counted, never
// parsed beyond the rate limit: what is looked at stays within the token
// bucket, every packet is accounted for once, the flow table and the heap
// stay bounded, and once the flood stops the fax's datagrams are parsed
// again, every one.
func TestMonitorFlood(t *testing.T) {
	cfg := MonitorConfig{UDPTL: []PortRange{{4000, 4999}}, RTP: []PortRange{{10000, 10999}}}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	m := NewMonitor(cfg)
	const (
		flood  = 1_000_000
		period = 2 * time.Second
		step   = period / flood
	)
	rnd := rand.New(rand.NewPCG(16, 7))
	seq := uint16(0)
	for i := range flood {
		at := t0.Add(time.Duration(i) * step)
		if i%(flood/100) == 0 { // the fax's datagram every 20 ms
			m.Handle(udptlPkt(4100, 30000, seq), at)
			seq++
		}
		m.Handle(hostile(rnd, uint16(i)), at)
	}
	c := m.Counters()
	rate, burst := 20000, 2000
	looked := c.Dispatched + c.Ignored + c.Malformed + c.FlowsRefused
	if c.Packets != flood+100 || looked+c.RateDropped != c.Packets {
		t.Errorf("packets not accounted for once: %+v", c)
	}
	if maxLooked := uint64(burst + rate*int(period/time.Second)); looked > maxLooked || looked < maxLooked*9/10 {
		t.Errorf("%d packets looked at during the flood; the rate limit allows %d", looked, maxLooked)
	}
	if c.Flows > 256 || c.FlowsRefused == 0 {
		t.Errorf("flow table under the flood: %+v", c)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	bound := uint64(256*(unsafe.Sizeof(flow{})+64)) + 1<<20
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > int64(bound) {
		t.Errorf("the heap grew by %d bytes under the flood; the flow table needs at most %d", grew, bound)
	}
	runtime.KeepAlive(m)
	t.Logf("after the flood: %+v, heap %+d bytes", c, int64(after.HeapAlloc)-int64(before.HeapAlloc))

	// The flood is over: a second later the fax's datagrams are parsed
	// again, all of them, in its flow.
	end := t0.Add(period + time.Second)
	fax := func() FlowSnapshot {
		fs := m.Flows(func(k FlowKey, _ Kind) bool { return k.Src.Port() == 4100 })
		if len(fs) != 1 {
			t.Fatalf("the fax's flow: %+v", fs)
		}
		return fs[0]
	}
	was := fax().Packets
	for i := range 50 {
		m.Handle(udptlPkt(4100, 30000, seq), end.Add(time.Duration(i)*20*time.Millisecond))
		seq++
	}
	if got := fax().Packets - was; got != 50 {
		t.Errorf("after the flood %d of the fax's 50 datagrams were parsed", got)
	}
}

// hostile is a flood packet: from source port 20000+i%40000 to a port in
// the UDPTL or RTP range, carrying garbage, a truncated header or RTP with
// a random SSRC.
func hostile(rnd *rand.Rand, i uint16) []byte {
	dport := uint16(4000 + rnd.IntN(1000))
	if i%2 == 1 {
		dport = uint16(10000 + rnd.IntN(1000))
	}
	sport := 20000 + i%40000
	n := rnd.IntN(200)
	b := ip4(17, 5, 0, sport, dport, n)
	for k := 28; k < len(b); k++ {
		b[k] = byte(rnd.Uint32())
	}
	switch i % 5 {
	case 0:
		return b[:20+rnd.IntN(8)] // truncated UDP header
	case 1:
		if n >= 12 {
			b[28] = 0x80 // RTP version 2, random SSRC
			binary.BigEndian.PutUint32(b[36:], rnd.Uint32())
		}
	}
	return b
}
