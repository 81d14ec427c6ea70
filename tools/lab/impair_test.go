package lab

import (
	"encoding/binary"
	"math"
	"net"
	"reflect"
	"testing"
	"time"
)

func TestParseImpairment(t *testing.T) {
	udptl := KindUDPTL
	cases := []struct {
		in   string
		want Impairment
		bad  bool
	}{
		{"", Impairment{}, false},
		{"loss=5", Impairment{LossPct: 5}, false},
		{"loss=5, burst=2:8,reorder=1,dup=0.5,delay=20ms,jitter=5ms,maxsize=200,only=udptl",
			Impairment{LossPct: 5, BurstPct: 2, BurstLen: 8, ReorderPct: 1, DuplicatePct: 0.5, Delay: 20 * time.Millisecond,
				Jitter: 5 * time.Millisecond, MaxSize: 200, Only: &udptl}, false},
		{"loss=101", Impairment{}, true},
		{"burst=2:0.5", Impairment{}, true},
		{"only=sip", Impairment{}, true},
		{"lose=5", Impairment{}, true},
		{"loss", Impairment{}, true},
	}
	for _, c := range cases {
		got, err := ParseImpairment(c.in)
		if (err != nil) != c.bad {
			t.Errorf("%q: err %v", c.in, err)
			continue
		}
		if !c.bad && !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v, want %+v", c.in, got, c.want)
		}
	}
}

// relayRig is a relay between a stand-in box and remote on loopback, on
// one free port of the remote's.
type relayRig struct {
	r           *Relay
	box, remote *net.UDPConn
	to          *net.UDPAddr // where the box sends (the relay)
}

func newRig(t *testing.T, seed uint64, kind MediaKind) *relayRig {
	t.Helper()
	remote, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := remote.LocalAddr().(*net.UDPAddr).Port
	box, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := RelayConfig{Remote: "127.0.0.1", Listen: RelayListenIP, Out: RelayOutIP, Seed: seed,
		RTP: PortRange{1, 0}, UDPTL: PortRange{1, 0}}
	if kind == KindUDPTL {
		cfg.UDPTL = PortRange{p, p}
	} else {
		cfg.RTP = PortRange{p, p}
	}
	r, err := StartRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); box.Close(); remote.Close() })
	return &relayRig{r: r, box: box, remote: remote, to: &net.UDPAddr{IP: net.ParseIP(RelayListenIP), Port: p}}
}

// run sends n datagrams (4-byte sequence numbers, size octets) from the box
// at 1 ms intervals and returns the sequence numbers the remote got, in
// arrival order.
func (g *relayRig) run(t *testing.T, n, size int) []uint32 {
	t.Helper()
	done := make(chan []uint32)
	go func() {
		var got []uint32
		buf := make([]byte, 2048)
		for {
			g.remote.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
			m, _, err := g.remote.ReadFromUDP(buf)
			if err != nil {
				done <- got
				return
			}
			got = append(got, binary.BigEndian.Uint32(buf[:m]))
		}
	}()
	pkt := make([]byte, max(size, 4))
	for i := range n {
		binary.BigEndian.PutUint32(pkt, uint32(i))
		if _, err := g.box.WriteToUDP(pkt, g.to); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return <-done
}

func TestRelayLossIsSeeded(t *testing.T) {
	var runs [][]uint32
	for range 2 {
		g := newRig(t, 42, KindUDPTL)
		g.r.Set(ToRemote, Impairment{LossPct: 5})
		got := g.run(t, 2000, 40)
		c := g.r.Counts(ToRemote, KindUDPTL)
		if c.In != 2000 || c.Lost+len(got) != 2000 || c.Sent != len(got) {
			t.Fatalf("counts %+v, %d arrived", c, len(got))
		}
		// 5% of 2000: 100, binomial sd ≈ 9.7; ±4 sd.
		if math.Abs(float64(c.Lost)-100) > 40 {
			t.Errorf("lost %d of 2000 at 5%%", c.Lost)
		}
		runs = append(runs, got)
	}
	if !reflect.DeepEqual(runs[0], runs[1]) {
		t.Error("the same seed dropped different datagrams")
	}
	g := newRig(t, 43, KindUDPTL)
	g.r.Set(ToRemote, Impairment{LossPct: 5})
	if other := g.run(t, 2000, 40); reflect.DeepEqual(other, runs[0]) {
		t.Error("another seed dropped the same datagrams")
	}
}

func TestRelayBackAndOnlyKind(t *testing.T) {
	g := newRig(t, 1, KindRTP)
	udptl := KindUDPTL
	g.r.Set(ToRemote, Impairment{LossPct: 100, Only: &udptl}) // RTP untouched
	if got := g.run(t, 50, 20); len(got) != 50 {
		t.Fatalf("%d of 50 RTP datagrams arrived under a UDPTL-only impairment", len(got))
	}
	// The remote answers to where the datagrams came from (the relay);
	// the box hears it from the address it sent to.
	buf := make([]byte, 64)
	relayOut := &net.UDPAddr{IP: net.ParseIP(RelayOutIP), Port: g.to.Port}
	if _, err := g.remote.WriteToUDP([]byte("back"), relayOut); err != nil {
		t.Fatal(err)
	}
	g.box.SetReadDeadline(time.Now().Add(time.Second))
	n, src, err := g.box.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "back" || src.String() != g.to.String() {
		t.Fatalf("box got %q from %v (%v), want from %v", buf[:n], src, err, g.to)
	}
	if c := g.r.Counts(ToBox, KindRTP); c.In != 1 || c.Sent != 1 {
		t.Errorf("to-box counts %+v", c)
	}
}

func TestRelayBurstsDupsSizeReorderDelay(t *testing.T) {
	cases := []struct {
		name  string
		imp   Impairment
		size  int
		check func(t *testing.T, c Counts, got []uint32)
	}{
		{"bursts", Impairment{BurstPct: 2, BurstLen: 8}, 40, func(t *testing.T, c Counts, got []uint32) {
			if c.Bursts == 0 || c.MaxBurst < 4 || c.BurstLost+len(got) != 2000 {
				t.Errorf("counts %+v, %d arrived", c, len(got))
			}
			if mean := float64(c.BurstLost) / float64(c.Bursts); mean < 4 || mean > 14 {
				t.Errorf("mean burst %.1f, want about 8", mean)
			}
		}},
		{"duplicates", Impairment{DuplicatePct: 10}, 40, func(t *testing.T, c Counts, got []uint32) {
			if c.Duplicated < 120 || c.Duplicated > 280 || len(got) != 2000+c.Duplicated {
				t.Errorf("counts %+v, %d arrived", c, len(got))
			}
		}},
		{"too large", Impairment{MaxSize: 100}, 200, func(t *testing.T, c Counts, got []uint32) {
			if c.TooLarge != 2000 || len(got) != 0 {
				t.Errorf("counts %+v, %d arrived", c, len(got))
			}
		}},
		{"reorder", Impairment{ReorderPct: 5}, 40, func(t *testing.T, c Counts, got []uint32) {
			inversions := 0
			for i := 1; i < len(got); i++ {
				if got[i] < got[i-1] {
					inversions++
				}
			}
			if len(got) != 2000 || c.Reordered < 50 || inversions < c.Reordered*9/10 {
				t.Errorf("counts %+v, %d arrived, %d inversions", c, len(got), inversions)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t, 7, KindUDPTL)
			g.r.Set(ToRemote, c.imp)
			got := g.run(t, 2000, c.size)
			c.check(t, g.r.Counts(ToRemote, KindUDPTL), got)
		})
	}
}

func TestRelayDelay(t *testing.T) {
	g := newRig(t, 7, KindRTP)
	g.r.Set(ToRemote, Impairment{Delay: 150 * time.Millisecond, Jitter: 20 * time.Millisecond})
	start := time.Now()
	g.box.WriteToUDP([]byte{0, 0, 0, 1}, g.to)
	buf := make([]byte, 16)
	g.remote.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := g.remote.ReadFromUDP(buf); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 125*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("arrived after %v, want 150 ms ± 20 ms", d)
	}
}
