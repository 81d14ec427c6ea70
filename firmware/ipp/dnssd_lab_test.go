//go:build lab

package ipp_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/ipp"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

// The private avahi-daemon's network: a veth pair in its own network
// namespace; avahi answers on avahiIf, the test asks from clientIf.
const (
	avahiIf   = "d0"
	clientIf  = "d1"
	avahiAddr = "192.0.2.1"
	mdnsGroup = "224.0.0.251:5353"
)

// avahiScript sets up the namespaces (run by unshare: new network and
// mount namespaces) and then becomes avahi-daemon: $1 is the directory
// bind-mounted over /etc/avahi/services, $2 the daemon's configuration.
// Packets between the two ends carry a local source address, which the
// kernel drops unless accept_local is set.
const avahiScript = `set -e
ip link set lo up
ip link add ` + avahiIf + ` type veth peer name ` + clientIf + `
ip addr add ` + avahiAddr + `/24 dev ` + avahiIf + `
ip addr add 192.0.2.2/24 dev ` + clientIf + `
for f in all/accept_local default/accept_local ` + avahiIf + `/accept_local ` + clientIf + `/accept_local; do echo 1 > /proc/sys/net/ipv4/conf/$f; done
for f in all/rp_filter ` + avahiIf + `/rp_filter ` + clientIf + `/rp_filter; do echo 0 > /proc/sys/net/ipv4/conf/$f; done
ip link set ` + avahiIf + ` up
ip link set ` + clientIf + ` up
ip route add 224.0.0.0/4 dev ` + clientIf + `
mount --bind "$1" /etc/avahi/services
mount -t tmpfs tmpfs /run
mkdir -p /run/avahi-daemon
exec avahi-daemon -f "$2" --no-drop-root --no-chroot --no-rlimits --no-proc-title
`

const avahiConf = `[server]
host-name=faxbox-lab
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=` + avahiIf + `
enable-dbus=no
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
`

// syncBuffer is a bytes.Buffer safe for a writer and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// avahi is a private avahi-daemon whose static service directory is dir.
type avahi struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{} // closed when the daemon has exited
}

// startAvahi runs Debian's avahi-daemon in fresh network and mount
// namespaces, serving dir's service files; it stops when the test ends.
func startAvahi(t *testing.T, dir string) *avahi {
	t.Helper()
	testkit.Require(t, "avahi-daemon", "unshare", "ip", "mount")
	if os.Geteuid() != 0 {
		t.Fatal("the avahi test needs root (network and mount namespaces)")
	}
	if fi, err := os.Stat("/etc/avahi/services"); err != nil || !fi.IsDir() {
		t.Fatalf("/etc/avahi/services (avahi-daemon's package) is missing: %v", err)
	}
	conf := filepath.Join(t.TempDir(), "avahi-daemon.conf")
	if err := os.WriteFile(conf, []byte(avahiConf), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &avahi{log: &syncBuffer{}, done: make(chan struct{})}
	a.cmd = exec.Command("unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", avahiScript, "avahi", dir, conf)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(10 * time.Second):
			a.cmd.Process.Kill()
			<-a.done
		}
		t.Logf("avahi-daemon:\n%s", a.log)
	})
	a.waitLog(t, "Server startup complete", 15*time.Second)
	return a
}

// waitLog waits for s in the daemon's output.
func (a *avahi) waitLog(t *testing.T, s string, d time.Duration) {
	t.Helper()
	end := time.After(d)
	for !strings.Contains(a.log.String(), s) {
		select {
		case <-end:
			t.Fatalf("avahi-daemon did not say %q within %s:\n%s", s, d, a.log)
		case <-a.done:
			t.Fatalf("avahi-daemon exited before saying %q:\n%s", s, a.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// inNetns runs f on a thread in the daemon's network namespace; sockets f
// opens stay there. The thread is never unlocked, so it ends with f and
// no goroutine runs in the namespace afterwards.
func (a *avahi) inNetns(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", a.cmd.Process.Pid))
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// querier is a UDP socket in the daemon's namespace asking as a legacy
// unicast client (a port other than 5353: the answer comes back to it).
func (a *avahi) querier(t *testing.T) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := a.inNetns(func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("192.0.2.2")})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// listener is a socket in the daemon's namespace that receives what is
// multicast to the mDNS group on the client's end (announcements and
// goodbyes).
func (a *avahi) listener(t *testing.T) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := a.inNetns(func() error {
		ifi, err := net.InterfaceByName(clientIf)
		if err != nil {
			return err
		}
		group, _ := net.ResolveUDPAddr("udp4", mdnsGroup)
		c, err = net.ListenMulticastUDP("udp4", ifi, group)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// record is one resource record of an answer, decoded.
type record struct {
	name, ptr, target string
	typ               dnsmessage.Type
	ttl               uint32
	port              uint16
	txt               []string
}

func decode(rs []dnsmessage.Resource) []record {
	var out []record
	for _, r := range rs {
		rec := record{name: r.Header.Name.String(), typ: r.Header.Type, ttl: r.Header.TTL}
		switch b := r.Body.(type) {
		case *dnsmessage.PTRResource:
			rec.ptr = b.PTR.String()
		case *dnsmessage.SRVResource:
			rec.port, rec.target = b.Port, b.Target.String()
		case *dnsmessage.TXTResource:
			rec.txt = b.TXT
		}
		out = append(out, rec)
	}
	return out
}

// query asks the mDNS group for name's PTR records and returns the
// records of the first answer (answers and additionals), nil when none
// came within 2 s.
func query(t *testing.T, c *net.UDPConn, name string) []record {
	t.Helper()
	id := uint16(time.Now().UnixNano())
	msg := dnsmessage.Message{Header: dnsmessage.Header{ID: id}, Questions: []dnsmessage.Question{
		{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET}}}
	b, err := msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	group, _ := net.ResolveUDPAddr("udp4", mdnsGroup)
	if _, err := c.WriteToUDP(b, group); err != nil {
		t.Fatalf("mDNS query %s: %v", name, err)
	}
	buf := make([]byte, 9000)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return nil
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil || !m.Header.Response || m.Header.ID != id {
			continue
		}
		return decode(append(m.Answers, m.Additionals...))
	}
}

// instance is the PTR target for name among rs that starts with label
// ("" when none).
func instance(rs []record, name, label string) string {
	for _, r := range rs {
		if r.typ == dnsmessage.TypePTR && r.name == name && strings.HasPrefix(r.ptr, label+".") {
			return r.ptr
		}
	}
	return ""
}

// startBox runs a box announcing through dir, serving on every address
// (as a box on the LAN does); stop ends Serve and closes the box.
func startBox(t *testing.T, dir, name string) (port int, stop func()) {
	t.Helper()
	e := testbox.StartWith(t, testbox.Options{
		Config: func(c *config.Config) {
			c.IPP.DNSSDDir, c.IPP.Name, c.IPP.Location = dir, name, "Room 2"
		},
		Listen: ":0",
	})
	return e.Addr.(*net.TCPAddr).Port, e.Stop
}

// TestDNSSDAvahi: a box whose avahi service directory exists is found by
// a real mDNS query to a real avahi-daemon (_ipp._tcp, its _fax subtype
// and _fax-ipp._tcp) with its name, port and TXT record; the announced
// resource is the box's FaxOut printer; when the box stops, avahi says
// goodbye and answers no more.
func TestDNSSDAvahi(t *testing.T) {
	dir := t.TempDir()
	av := startAvahi(t, dir)
	q := av.querier(t)
	const name = `Fax & "Front" <desk>`
	port, stop := startBox(t, dir, name)
	av.waitLog(t, "successfully established", 15*time.Second)

	const ippType = "_ipp._tcp.local."
	rs := query(t, q, ippType)
	inst := instance(rs, ippType, name)
	if inst == "" {
		t.Fatalf("no PTR %s → %q in %+v\navahi:\n%s", ippType, name, rs, av.log)
	}
	var txt []string
	var srvPort uint16
	for _, r := range rs {
		switch {
		case r.typ == dnsmessage.TypeSRV && r.name == inst:
			srvPort = r.port
		case r.typ == dnsmessage.TypeTXT && r.name == inst:
			txt = r.txt
		}
	}
	if int(srvPort) != port {
		t.Errorf("SRV port %d, the box serves on %d", srvPort, port)
	}
	t.Logf("avahi answered: %s SRV port %d TXT %q", inst, srvPort, txt)
	keys := map[string]string{}
	for _, kv := range txt {
		k, v, _ := strings.Cut(kv, "=")
		keys[k] = v
	}
	for k, want := range map[string]string{"rp": "ipp/faxout", "rfo": "ipp/faxout", "Fax": "T", "txtvers": "1", "note": "Room 2"} {
		if keys[k] != want {
			t.Errorf("TXT %s=%q, want %q (TXT %q)", k, keys[k], want, txt)
		}
	}
	for _, sub := range []string{"_fax._sub._ipp._tcp.local.", "_fax-ipp._tcp.local."} {
		if got := instance(query(t, q, sub), sub, name); got == "" {
			t.Errorf("no PTR %s → %q", sub, name)
		}
	}

	// The announced resource (rp) on the announced port is the printer.
	c := &client{url: fmt.Sprintf("http://127.0.0.1:%d/%s", srvPort, keys["rp"])}
	_, m := c.do(t, goipp.OpGetPrinterAttributes, nil, nil, nil)
	if m == nil {
		t.Fatalf("Get-Printer-Attributes at %s failed", c.url)
	}
	got := map[string]string{}
	for _, a := range m.Printer {
		if len(a.Values) > 0 {
			got[a.Name] = a.Values[0].V.String()
		}
	}
	if got["printer-name"] != name || got["printer-uuid"] != "urn:uuid:"+keys["UUID"] {
		t.Errorf("printer at %s: name %q uuid %q; announced %q UUID=%s", c.url, got["printer-name"], got["printer-uuid"], name, keys["UUID"])
	}

	// Stopping the box withdraws the file; avahi says goodbye (TTL 0).
	l := av.listener(t)
	stop()
	if _, err := os.Stat(filepath.Join(dir, ipp.ServiceFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("service file after Close: %v", err)
	}
	if !goodbye(l, ippType, inst, 10*time.Second) {
		t.Errorf("no goodbye for %s\navahi:\n%s", inst, av.log)
	} else {
		t.Logf("goodbye (TTL 0) for %s", inst)
	}
	if rs := query(t, q, ippType); instance(rs, ippType, name) != "" {
		t.Errorf("still answered after Close: %+v", rs)
	}
}

// goodbye waits for a multicast answer with PTR name → inst and TTL 0.
func goodbye(l *net.UDPConn, name, inst string, d time.Duration) bool {
	buf := make([]byte, 9000)
	l.SetReadDeadline(time.Now().Add(d))
	for {
		n, _, err := l.ReadFromUDP(buf)
		if err != nil {
			return false
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil || !m.Header.Response {
			continue
		}
		for _, r := range decode(m.Answers) {
			if r.typ == dnsmessage.TypePTR && r.name == name && r.ptr == inst && r.ttl == 0 {
				return true
			}
		}
	}
}
