package lab

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Impairing the lab's media path. The kernel here has nf_tables but neither
// netem nor NFQUEUE, so bursts, reordering, duplication, delay and
// size-based drops are made by a userspace UDP relay in the media path:
//
//   - the remote advertises its media (RTP and UDPTL) at RelayListenIP
//     (pjsip media_address), so the box sends to the relay, which listens
//     there on every port of the remote's ranges and forwards each
//     datagram from RelayOutIP to the remote's real port on 127.0.0.1;
//   - the remote answers symmetrically (rtp_symmetric, t38_udptl_nat): to
//     where the datagrams came from, the relay, which forwards them to the
//     box from the address the box sent to;
//   - an nftables rule drops the remote's media sent to the box directly
//     (the few datagrams before the remote learned the relay's address),
//     so the box only ever hears the relay.
//
// Every decision is drawn from a random source seeded per direction, in
// the order the datagrams arrive: the same seed and traffic give the same
// impairments. (Plain random loss alone also works in the kernel:
// `nft add rule … numgen random mod 100 < 5 drop`, but not seeded.)

// Addresses of the relay on loopback.
const (
	RelayListenIP = "127.0.0.2"
	RelayOutIP    = "127.0.0.3"
)

// Direction of the media through the relay.
type Direction int

// The two directions.
const (
	ToRemote Direction = iota // box → remote (what the box sends)
	ToBox                     // remote → box (what the box receives)
)

func (d Direction) String() string {
	if d == ToBox {
		return "to-box"
	}
	return "to-remote"
}

// MediaKind tells UDPTL (T.38) ports from RTP ports.
type MediaKind int

// Media kinds.
const (
	KindRTP MediaKind = iota
	KindUDPTL
)

func (k MediaKind) String() string {
	if k == KindUDPTL {
		return "udptl"
	}
	return "rtp"
}

// Impairment of one direction. Percentages are per datagram, 0 to 100.
type Impairment struct {
	// LossPct: each datagram is dropped alone with this probability.
	LossPct float64
	// BurstPct, BurstLen: bursty loss (a two-state Gilbert model): a
	// datagram starts a loss burst with probability BurstPct; a burst
	// goes on for BurstLen datagrams on average (each further datagram is
	// lost with probability 1-1/BurstLen).
	BurstPct float64
	BurstLen float64
	// ReorderPct: a datagram is held back and sent after the next one of
	// its flow (or after 100 ms without one).
	ReorderPct float64
	// DuplicatePct: a datagram is sent twice.
	DuplicatePct float64
	// Delay each datagram, plus or minus up to Jitter (uniform).
	Delay, Jitter time.Duration
	// MaxSize: datagrams longer than this (octets) are dropped; 0: none.
	MaxSize int
	// Only limits the impairment to one kind of media; nil: both.
	Only *MediaKind
}

// None reports whether i changes nothing.
func (i Impairment) None() bool { return i == Impairment{} }

// ParseImpairment reads the command line's form of an impairment:
// comma-separated key=value of loss=5, burst=2:8 (start %, mean length),
// reorder=1, dup=1, delay=20ms, jitter=10ms, maxsize=200, only=udptl|rtp;
// "" is no impairment.
func ParseImpairment(s string) (Impairment, error) {
	var i Impairment
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return i, fmt.Errorf("lab: impairment %q: key=value", kv)
		}
		var err error
		switch k {
		case "loss":
			i.LossPct, err = parsePct(v)
		case "reorder":
			i.ReorderPct, err = parsePct(v)
		case "dup":
			i.DuplicatePct, err = parsePct(v)
		case "burst":
			p, l, _ := strings.Cut(v, ":")
			if i.BurstPct, err = parsePct(p); err == nil {
				i.BurstLen, err = strconv.ParseFloat(l, 64)
				if err == nil && i.BurstLen < 1 {
					err = errors.New("the mean burst length is at least 1")
				}
			}
		case "delay":
			i.Delay, err = time.ParseDuration(v)
		case "jitter":
			i.Jitter, err = time.ParseDuration(v)
		case "maxsize":
			i.MaxSize, err = strconv.Atoi(v)
		case "only":
			var m MediaKind
			switch v {
			case "udptl":
				m = KindUDPTL
			case "rtp":
				m = KindRTP
			default:
				err = errors.New("udptl or rtp")
			}
			i.Only = &m
		default:
			err = errors.New("unknown key (loss, burst, reorder, dup, delay, jitter, maxsize, only)")
		}
		if err != nil {
			return i, fmt.Errorf("lab: impairment %q: %w", kv, err)
		}
	}
	return i, nil
}

func parsePct(v string) (float64, error) {
	p, err := strconv.ParseFloat(v, 64)
	if err == nil && (p < 0 || p > 100) {
		err = errors.New("a percentage, 0 to 100")
	}
	return p, err
}

// Counts are what the relay did to one direction's datagrams of one kind.
type Counts struct {
	In         int `json:"in"`          // datagrams received
	Sent       int `json:"sent"`        // datagrams sent on (duplicates included)
	Lost       int `json:"lost"`        // dropped by random loss
	BurstLost  int `json:"burst_lost"`  // dropped in loss bursts
	TooLarge   int `json:"too_large"`   // dropped for their size
	Duplicated int `json:"duplicated"`  // sent twice
	Reordered  int `json:"reordered"`   // held back behind the next one
	Bursts     int `json:"bursts"`      // loss bursts started
	MaxBurst   int `json:"longest_run"` // the longest run of datagrams dropped in a row
}

// Dropped is every datagram the relay did not send on.
func (c Counts) Dropped() int { return c.Lost + c.BurstLost + c.TooLarge }

// PortRange is an inclusive range of UDP ports.
type PortRange struct{ First, Last int }

// RelayConfig says where the relay sits.
type RelayConfig struct {
	// Remote is the remote's media address (its Asterisk binds there).
	Remote string
	// Listen is the address the remote advertises (the box sends there);
	// Out the address the relay sends to the remote from.
	Listen, Out string
	// The remote's port ranges.
	RTP, UDPTL PortRange
	// Seed of the random decisions (direction d draws from Seed+d).
	Seed uint64
}

// Relay forwards the lab's media between the box and the remote,
// impairing it. It is safe for concurrent use.
type Relay struct {
	cfg   RelayConfig
	conns []*net.UDPConn
	wg    sync.WaitGroup

	mu    sync.Mutex
	dirs  [2]*dirState
	peers map[int]*net.UDPAddr // port → the box's address that sent there
}

// dirState is one direction's impairment, random source and counts.
type dirState struct {
	imp     Impairment
	rng     *rand.Rand
	inBurst bool
	run     [2]int // current run of drops per kind
	counts  [2]Counts
	held    map[int]*heldPkt // port → a datagram held back (reorder)
}

// heldPkt is a datagram held back to be sent after the next one.
type heldPkt struct{ b []byte }

// StartRelay binds every port of the remote's ranges on cfg.Listen and
// cfg.Out and starts forwarding, unimpaired until Set.
func StartRelay(cfg RelayConfig) (*Relay, error) {
	r := &Relay{cfg: cfg, peers: map[int]*net.UDPAddr{}}
	for d := range r.dirs {
		r.dirs[d] = newDirState(Impairment{}, cfg.Seed+uint64(d))
	}
	remoteIP := net.ParseIP(cfg.Remote)
	for _, pr := range []struct {
		r PortRange
		k MediaKind
	}{{cfg.RTP, KindRTP}, {cfg.UDPTL, KindUDPTL}} {
		for p := pr.r.First; p <= pr.r.Last; p++ {
			boxSide, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(cfg.Listen), Port: p})
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("lab: relay: listen on %s:%d: %w", cfg.Listen, p, err)
			}
			r.conns = append(r.conns, boxSide)
			remoteSide, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(cfg.Out), Port: p})
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("lab: relay: listen on %s:%d: %w", cfg.Out, p, err)
			}
			r.conns = append(r.conns, remoteSide)
			remote := &net.UDPAddr{IP: remoteIP, Port: p}
			r.wg.Add(2)
			go r.pump(boxSide, ToRemote, pr.k, p, func(b []byte) { remoteSide.WriteToUDP(b, remote) })
			go r.pump(remoteSide, ToBox, pr.k, p, func(b []byte) {
				r.mu.Lock()
				peer := r.peers[p]
				r.mu.Unlock()
				if peer != nil {
					boxSide.WriteToUDP(b, peer)
				}
			})
		}
	}
	return r, nil
}

func newDirState(imp Impairment, seed uint64) *dirState {
	return &dirState{imp: imp, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), held: map[int]*heldPkt{}}
}

// Set replaces direction d's impairment and restarts its random source
// and counts from the relay's seed.
func (r *Relay) Set(d Direction, imp Impairment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirs[d] = newDirState(imp, r.cfg.Seed+uint64(d))
}

// Counts returns what direction d did to datagrams of kind k since Set.
func (r *Relay) Counts(d Direction, k MediaKind) Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dirs[d].counts[k]
}

// Close stops the relay.
func (r *Relay) Close() {
	for _, c := range r.conns {
		c.Close()
	}
	r.wg.Wait()
}

// pump reads datagrams arriving on c (direction d, kind k, port p) and
// hands them to send, impaired.
func (r *Relay) pump(c *net.UDPConn, d Direction, k MediaKind, p int, send func([]byte)) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		pkt := append([]byte(nil), buf[:n]...)
		r.mu.Lock()
		if d == ToRemote {
			r.peers[p] = from
		}
		st := r.dirs[d]
		out := st.decide(k, p, pkt)
		h := st.held[p]
		r.mu.Unlock()
		for _, o := range out {
			r.emit(d, k, o, send)
		}
		if h != nil {
			// Without a next datagram within 100 ms, the held one goes.
			time.AfterFunc(100*time.Millisecond, func() {
				r.mu.Lock()
				still := st.held[p] == h
				if still {
					delete(st.held, p)
				}
				r.mu.Unlock()
				if still {
					r.emit(d, k, outgoing{b: h.b}, send)
				}
			})
		}
	}
}

// outgoing is one datagram to send after delay.
type outgoing struct {
	b     []byte
	delay time.Duration
}

// emit sends o after its delay.
func (r *Relay) emit(d Direction, k MediaKind, o outgoing, send func([]byte)) {
	count := func() {
		r.mu.Lock()
		r.dirs[d].counts[k].Sent++
		r.mu.Unlock()
	}
	if o.delay <= 0 {
		count()
		send(o.b)
		return
	}
	time.AfterFunc(o.delay, func() { count(); send(o.b) })
}

// decide draws the fate of datagram b (kind k, port p): the datagrams to
// send now, in order. A fixed number of draws per datagram keeps the
// decisions of later datagrams independent of earlier outcomes.
func (s *dirState) decide(k MediaKind, p int, b []byte) []outgoing {
	c := &s.counts[k]
	c.In++
	u := [6]float64{}
	for i := range u {
		u[i] = s.rng.Float64() * 100
	}
	i := s.imp
	if i.Only != nil && *i.Only != k {
		return s.release(p, []outgoing{{b: b}})
	}
	drop := func(n *int) []outgoing {
		*n++
		s.run[k]++
		c.MaxBurst = max(c.MaxBurst, s.run[k])
		return nil
	}
	if i.MaxSize > 0 && len(b) > i.MaxSize {
		return drop(&c.TooLarge)
	}
	if i.BurstPct > 0 {
		if s.inBurst && u[0] < 100/i.BurstLen {
			s.inBurst = false
		} else if !s.inBurst && u[1] < i.BurstPct {
			s.inBurst = true
			c.Bursts++
		}
		if s.inBurst {
			return drop(&c.BurstLost)
		}
	}
	if u[2] < i.LossPct {
		return drop(&c.Lost)
	}
	s.run[k] = 0
	delay := i.Delay
	if i.Jitter > 0 {
		delay += time.Duration((u[3]/50 - 1) * float64(i.Jitter))
	}
	out := []outgoing{{b: b, delay: delay}}
	if u[4] < i.DuplicatePct {
		c.Duplicated++
		out = append(out, outgoing{b: b, delay: delay})
	}
	if u[5] < i.ReorderPct && s.held[p] == nil {
		c.Reordered++
		s.held[p] = &heldPkt{b: b}
		return nil
	}
	return s.release(p, out)
}

// release appends a datagram held back on port p after out.
func (s *dirState) release(p int, out []outgoing) []outgoing {
	if h := s.held[p]; h != nil {
		delete(s.held, p)
		d := time.Duration(0)
		if len(out) > 0 {
			d = out[0].delay
		}
		out = append(out, outgoing{b: h.b, delay: d})
	}
	return out
}
