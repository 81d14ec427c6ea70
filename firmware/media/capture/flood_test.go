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

// TestFloodTableKeepsRoomForCalls: a flood that fills the flow table with
// flows that are no stream (garbage, never a valid UDPTL or RTP packet;
// or one valid-looking RTP packet and then silence) does not keep a new
// call's media out: its flows replace the flood's at once, not after the
// 10 minutes a real idle flow is kept. Real streams are never replaced
// for a flood: with the table full of live calls, a new flow is refused.
func TestFloodTableKeepsRoomForCalls(t *testing.T) {
	cfg := MonitorConfig{UDPTL: []PortRange{{4000, 4999}}, RTP: []PortRange{{10000, 10999}}, MaxFlows: 8}
	garbage := func(sport uint16) []byte { // to a UDPTL port: does not parse
		b := ip4(17, 5, 0, sport, 4500, 3)
		copy(b[28:], []byte{0xff, 0xff, 0xff})
		return b
	}
	oneRTP := func(sport uint16) []byte { // a single valid RTP header
		b := ip4(17, 5, 0, sport, 10500, 12)
		b[28] = 0x80
		binary.BigEndian.PutUint32(b[36:], uint32(sport))
		return b
	}
	for _, c := range []struct {
		name  string
		flood func(uint16) []byte
		after time.Duration // from the flood to the call's first packet
	}{
		{"garbage", garbage, 10 * time.Millisecond},
		{"single RTP packets", oneRTP, 3 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := NewMonitor(cfg)
			for i := range uint16(100) {
				m.Handle(c.flood(20000+i), t0.Add(time.Duration(i)*time.Millisecond))
			}
			flooded := m.Counters()
			if flooded.Flows != 8 {
				t.Fatalf("the flood did not fill the table: %+v", flooded)
			}
			start := t0.Add(100*time.Millisecond + c.after)
			for i := range uint16(50) {
				m.Handle(udptlPkt(4100, 30000, i), start.Add(time.Duration(i)*20*time.Millisecond))
			}
			fs := m.Flows(func(k FlowKey, _ Kind) bool { return k.Src.Port() == 4100 })
			if len(fs) != 1 || fs[0].Packets != 50 || fs[0].UDPTL.Gaps != 0 {
				t.Errorf("the call's flow after the flood: %+v (%+v)", fs, m.Counters())
			}
			if cn := m.Counters(); cn.FlowsRefused != flooded.FlowsRefused || cn.FloodEvicted == flooded.FloodEvicted {
				t.Errorf("counters after the flood %+v, after the call %+v", flooded, cn)
			}
		})
	}

	// The table full of live calls (valid UDPTL each): a flood's new
	// flows are refused, the calls' flows stay whole.
	m := NewMonitor(cfg)
	for i := range uint16(20) {
		at := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		for p := range uint16(8) {
			m.Handle(udptlPkt(4100+p, 30000, i), at)
		}
		m.Handle(garbage(20000+i), at)
	}
	cn := m.Counters()
	if cn.FlowsRefused != 20 || cn.FloodEvicted != 0 || cn.Flows != 8 {
		t.Errorf("a full table of calls under a flood: %+v", cn)
	}
	for _, f := range m.Flows(nil) {
		if f.Packets != 20 {
			t.Errorf("call flow %s: %d packets, want 20", f.Key, f.Packets)
		}
	}
}

// TestDropsDated: the packets the monitor drops (over the rate limit,
// refused for a full table) and the kernel drops noted are dated to the
// second, so a call's report can tell whether its capture was whole.
func TestDropsDated(t *testing.T) {
	m := NewMonitor(MonitorConfig{UDPTL: []PortRange{{4000, 4999}}, Rate: 10, Burst: 10, MaxFlows: 1})
	m.Handle(udptlPkt(4100, 30000, 0), t0) // a stream (2 valid datagrams), idle less than Idle
	m.Handle(udptlPkt(4100, 30000, 1), t0)
	for i := range 30 { // at t0+10s: 10 pass (refused: the table is full of a stream), 20 over the limit
		m.Handle(udptlPkt(4200, 30000, uint16(i)), t0.Add(10*time.Second))
	}
	m.NoteKernelDrops(7, t0.Add(20*time.Second))
	for _, c := range []struct {
		from, to time.Duration
		want     Drops
	}{
		{0, 9 * time.Second, Drops{}},
		{0, 10 * time.Second, Drops{RateLimited: 20, Refused: 10}},
		{10*time.Second + 500*time.Millisecond, 15 * time.Second, Drops{RateLimited: 20, Refused: 10}},
		{11 * time.Second, 19 * time.Second, Drops{}},
		{11 * time.Second, 21 * time.Second, Drops{Kernel: 7}},
		{0, time.Hour, Drops{RateLimited: 20, Refused: 10, Kernel: 7}},
	} {
		if got := m.DroppedBetween(t0.Add(c.from), t0.Add(c.to)); got != c.want {
			t.Errorf("drops %v..%v: %+v, want %+v", c.from, c.to, got, c.want)
		}
	}
	// The log is bounded: a flood that never stops keeps at most
	// dropLogSeconds seconds.
	for s := range 3 * dropLogSeconds {
		m.NoteKernelDrops(1, t0.Add(time.Hour+time.Duration(s)*time.Second))
	}
	if n := len(m.drops.secs); n > dropLogSeconds {
		t.Errorf("drop log holds %d seconds", n)
	}
	if got := m.DroppedBetween(t0.Add(time.Hour+time.Duration(3*dropLogSeconds-10)*time.Second), t0.Add(48*time.Hour)); got.Kernel != 10 {
		t.Errorf("the last 10 s of a long flood: %+v", got)
	}
}
