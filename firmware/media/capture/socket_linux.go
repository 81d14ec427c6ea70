package capture

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Config of a Capture.
type Config struct {
	Monitor MonitorConfig
	// Interface to capture on ("lo" when Asterisk's media runs on
	// loopback, as in the lab); "" captures on every interface.
	Interface string
	// Buffer is the socket's receive buffer in bytes (default 2 MiB): what
	// the kernel holds while faxbox is not reading. Beyond it the kernel
	// drops packets and counts them (Stats.KernelDrops).
	Buffer int
	// Tap, when set, is called with every packet the filter passed, before
	// the monitor (e.g. a pcap Writer). It runs on the reading goroutine.
	Tap func(b []byte, at time.Time)
	Log *slog.Logger
}

// Stats are a capture's counts: the monitor's and the kernel's.
type Stats struct {
	Counters
	// KernelPackets and KernelDrops: packets the filter passed and packets
	// the kernel dropped for want of buffer space (PACKET_STATISTICS).
	KernelPackets, KernelDrops uint64
	// LoopbackCopies: the outgoing copy of a loopback packet, which the
	// socket sees twice (once leaving, once arriving); only one counts.
	LoopbackCopies uint64
	Truncated      uint64 // longer than the read buffer (never on a 64 KiB-MTU loopback)
}

// Capture reads Asterisk's media packets from an AF_PACKET socket (needs
// CAP_NET_RAW, no cgo) and feeds them to its Monitor.
type Capture struct {
	*Monitor
	cfg  Config
	file *os.File
	rc   syscall.RawConn
	fd   int

	closed atomic.Bool

	mu            sync.Mutex
	kernPackets   uint64
	kernDrops     uint64
	loopCopies    uint64
	truncated     uint64
	loopbackIndex int
}

// Open opens the socket, attaches the port filter in the kernel and binds
// it to the interface. Packets queue from then on; Run reads them.
func Open(cfg Config) (*Capture, error) {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 2 << 20
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	prog, err := Filter(append(append(append([]PortRange(nil), cfg.Monitor.UDPTL...), cfg.Monitor.RTP...), cfg.Monitor.SIP...))
	if err != nil {
		return nil, err
	}
	ifindex := 0
	if cfg.Interface != "" {
		ifi, err := net.InterfaceByName(cfg.Interface)
		if err != nil {
			return nil, fmt.Errorf("capture: interface %s: %w", cfg.Interface, err)
		}
		ifindex = ifi.Index
	}
	// Protocol 0: the socket sees nothing until bound, after the filter
	// is in place, so no unfiltered packet is ever queued.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("capture: AF_PACKET socket (needs CAP_NET_RAW): %w", err)
	}
	if err := setup(fd, cfg.Buffer, prog, ifindex); err != nil {
		unix.Close(fd)
		return nil, err
	}
	c := &Capture{Monitor: NewMonitor(cfg.Monitor), cfg: cfg, fd: fd, loopbackIndex: loopbackIndex()}
	c.file = os.NewFile(uintptr(fd), "af_packet")
	if c.rc, err = c.file.SyscallConn(); err != nil {
		c.file.Close()
		return nil, fmt.Errorf("capture: %w", err)
	}
	return c, nil
}

func setup(fd, buffer int, prog []unix.SockFilter, ifindex int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, buffer); err != nil {
		return fmt.Errorf("capture: SO_RCVBUF: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("capture: SO_ATTACH_FILTER: %w", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("capture: bind to interface %d: %w", ifindex, err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func loopbackIndex() int {
	ifs, _ := net.Interfaces()
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 {
			return ifi.Index
		}
	}
	return -1
}

// Run reads packets until ctx ends or Close; it returns nil then, or the
// socket's error. Memory stays fixed: one 64 KiB read buffer, the socket
// buffer, and the monitor's bounded flow table.
func (c *Capture) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, 1<<16)
	expire, poll := time.Now(), time.Now()
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, sa, err := recv(fd, buf)
			if err == unix.EAGAIN {
				return false
			}
			if err != nil {
				rerr = fmt.Errorf("capture: recvfrom: %w", err)
				return true
			}
			at := stamp(fd)
			if c.skip(n, len(buf), &sa) {
				continue
			}
			if c.cfg.Tap != nil {
				c.cfg.Tap(buf[:n], at)
			}
			c.Handle(buf[:n], at)
			if at.Sub(poll) >= kernelPoll {
				c.pollKernel(int(fd), at)
				poll = at
			}
			if at.Sub(expire) > time.Minute {
				c.Expire(at)
				expire = at
			}
		}
	})
	if rerr != nil {
		return rerr
	}
	if err != nil && !c.closed.Load() {
		return fmt.Errorf("capture: read: %w", err)
	}
	return nil
}

// skip drops the outgoing copy of a loopback packet and truncated ones.
func (c *Capture) skip(n, max int, sa *unix.RawSockaddrLinklayer) bool {
	loopCopy := sa.Pkttype == unix.PACKET_OUTGOING && int(sa.Ifindex) == c.loopbackIndex
	if !loopCopy && n <= max {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if loopCopy {
		c.loopCopies++
	} else {
		c.truncated++
	}
	return true
}

// recv reads one packet without allocating; n is its full length (MSG_TRUNC).
func recv(fd uintptr, buf []byte) (int, unix.RawSockaddrLinklayer, error) {
	var sa unix.RawSockaddrLinklayer
	salen := uint32(unsafe.Sizeof(sa))
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
		unix.MSG_TRUNC|unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&salen)))
	if e != 0 {
		return 0, sa, e
	}
	return int(n), sa, nil
}

// stamp is the kernel's receive time of the packet just read (SIOCGSTAMPNS),
// or now when the kernel has none.
func stamp(fd uintptr) time.Time {
	var ts unix.Timespec
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.SIOCGSTAMPNS, uintptr(unsafe.Pointer(&ts))); e != 0 {
		return time.Now()
	}
	return time.Unix(int64(ts.Sec), int64(ts.Nsec))
}

// kernelPoll: while packets come, the kernel's drop count is read this
// often, so drops are dated to within it (Monitor.DroppedBetween); when
// they stop, the next Stats call reads it (the box calls it once a
// minute).
const kernelPoll = time.Second

// pollKernel adds the kernel's counts since the last poll (the socket's
// PACKET_STATISTICS reset on every read) and notes its drops at at.
func (c *Capture) pollKernel(fd int, at time.Time) {
	k, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.kernPackets += uint64(k.Packets)
	c.kernDrops += uint64(k.Drops)
	c.mu.Unlock()
	c.NoteKernelDrops(uint64(k.Drops), at)
}

// Stats returns the capture's counts, the kernel's included.
func (c *Capture) Stats() Stats {
	st := Stats{Counters: c.Counters()}
	err := c.rc.Control(func(fd uintptr) { c.pollKernel(int(fd), time.Now()) })
	_ = err // closed: the last counts stand
	c.mu.Lock()
	defer c.mu.Unlock()
	st.KernelPackets, st.KernelDrops = c.kernPackets, c.kernDrops
	st.LoopbackCopies, st.Truncated = c.loopCopies, c.truncated
	return st
}

// Close closes the socket; Run returns.
func (c *Capture) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.file.Close()
}
