//go:build lab

package capture

import (
	"context"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestLabCaptureFlood floods a live capture (the AF_PACKET socket on lo,
// a 256 KiB socket buffer, rate limit 5,000 packets/s) for 2 s with
// garbage datagrams as fast as this machine sends them, from 100 source
// ports to a port in its UDPTL range. The flood is reported, not
// buffered: what the monitor looked at stays within the token bucket,
// the rest is counted as rate-dropped (and, where the socket buffer
// overflowed, as the kernel's drops), every packet the filter passed is
// accounted for once, the flow table and this process's heap stay
// bounded, and right after the flood the datagrams of a fax whose flow
// began before it are parsed again, every one: the capture did not stall.
// (A flow that begins while the flood's flows fill the table replaces a
// flood flow that is no stream, see MonitorConfig.MaxFlows; flood flows
// whose garbage happened to parse as UDPTL twice are kept and refuse it
// until they have been idle for MonitorConfig.Idle.)
func TestLabCaptureFlood(t *testing.T) {
	const rate, burst, maxFlows = 5000, 500, 64
	mc := MonitorConfig{UDPTL: []PortRange{{51600, 51699}}, RTP: []PortRange{{51700, 51799}}, Rate: rate, Burst: burst, MaxFlows: maxFlows}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	c, err := Open(Config{Monitor: mc, Interface: "lo", Buffer: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 51650}) // no ICMP errors
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	fax, err := net.DialUDP("udp4", nil, sink.LocalAddr().(*net.UDPAddr)) // a listener: no ICMP error fails a later write
	if err != nil {
		t.Fatal(err)
	}
	defer fax.Close()
	sendUDPTL(t, fax, 0, 5)

	start := time.Now()
	sent := flood(t, sink.LocalAddr().(*net.UDPAddr), 100, 2*time.Second)
	elapsed := time.Since(start)
	time.Sleep(500 * time.Millisecond) // the capture drains its socket
	st := c.Stats()
	t.Logf("%d datagrams sent in %s: %+v", sent, elapsed.Round(time.Millisecond), st)

	looked := st.Dispatched + st.Ignored + st.Malformed + st.FlowsRefused
	if allowed := uint64(burst + rate*elapsed.Seconds()*1.02 + rate*0.5); looked > allowed {
		t.Errorf("the monitor looked at %d packets; the rate limit allows %d", looked, allowed)
	}
	if st.RateDropped == 0 || looked+st.RateDropped != st.Packets {
		t.Errorf("the flood was not counted as rate-dropped: %+v", st)
	}
	if st.Packets+st.LoopbackCopies+st.Truncated+st.KernelDrops != st.KernelPackets {
		t.Errorf("the filter passed %d packets; read %d, loopback copies %d, truncated %d, kernel drops %d",
			st.KernelPackets, st.Packets, st.LoopbackCopies, st.Truncated, st.KernelDrops)
	}
	if st.Packets < uint64(sent)/2 && st.KernelDrops == 0 {
		t.Errorf("%d datagrams sent, %d read and no kernel drops counted", sent, st.Packets)
	}
	if st.Flows > maxFlows || st.FlowsRefused+st.FloodEvicted == 0 {
		t.Errorf("flow table: %d flows (at most %d), %d packets refused, %d flood flows replaced", st.Flows, maxFlows, st.FlowsRefused, st.FloodEvicted)
	}
	if d := c.DroppedBetween(start, time.Now()); d.RateLimited != st.RateDropped || d.Kernel > st.KernelDrops || d.Refused != st.FlowsRefused {
		t.Errorf("drops dated during the flood %+v; counted %+v", d, st)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Errorf("the heap grew by %d bytes under the flood", grew)
	}
	// The fax goes on after the flood: its next 20 datagrams are parsed.
	sendUDPTL(t, fax, 5, 20)
	time.Sleep(300 * time.Millisecond)
	port := uint16(fax.LocalAddr().(*net.UDPAddr).Port)
	fs := c.Flows(func(k FlowKey, _ Kind) bool { return k.Src.Port() == port })
	if len(fs) != 1 || fs[0].Packets != 25 || fs[0].UDPTL.Packets != 25 || fs[0].UDPTL.Gaps != 0 {
		t.Errorf("the fax's 5 datagrams before and 20 after the flood: %+v", fs)
	}
}

// flood sends garbage datagrams of 1 to 200 octets to dst from n sockets
// in turn for d and returns how many it sent.
func flood(t *testing.T, dst *net.UDPAddr, n int, d time.Duration) int {
	t.Helper()
	conns := make([]*net.UDPConn, n)
	for i := range conns {
		c, err := net.DialUDP("udp4", nil, dst)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	rnd := rand.New(rand.NewPCG(16, 1))
	buf := make([]byte, 200)
	sent := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for range 1000 {
			for k := range buf {
				buf[k] = byte(rnd.Uint32())
			}
			if _, err := conns[sent%n].Write(buf[:1+rnd.IntN(len(buf))]); err == nil {
				sent++
			}
		}
	}
	return sent
}

// sendUDPTL sends n UDPTL datagrams (a CED indicator, no redundancy) of
// sequence numbers from first on, one each 20 ms.
func sendUDPTL(t *testing.T, c *net.UDPConn, first, n int) {
	t.Helper()
	for seq := first; seq < first+n; seq++ {
		if _, err := c.Write([]byte{byte(seq >> 8), byte(seq), 0x01, 0x04, 0x00, 0x00}); err != nil {
			t.Fatalf("send UDPTL %d: %v", seq, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
