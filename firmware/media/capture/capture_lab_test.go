//go:build lab

package capture

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/asterisk"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

// update rewrites the committed lab capture (testdata) and the UDPTL fuzz
// seed corpus from this run: go test -tags lab -run TestLabCapture -update.
var update = flag.Bool("update", false, "rewrite testdata and ../udptl/testdata/fuzz from the lab's real faxes")

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// mediaLab is a lab with a dialler on the box's trunk and a fax TIFF of
// pages pages that Asterisk can read.
type mediaLab struct {
	l    *lab.Lab
	cfg  config.Config
	tif  string
	d    *asterisk.Dialler
	mu   sync.Mutex
	res  map[string]chan dialler.Result
	mcfg MonitorConfig
}

func (m *mediaLab) Progress(dialler.Progress) {}
func (m *mediaLab) Result(r dialler.Result) {
	m.mu.Lock()
	ch := m.res[r.AttemptID]
	m.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

func startMediaLab(t *testing.T, name string, base, pages int) *mediaLab {
	t.Helper()
	testkit.Require(t, "gs", "debootstrap", "dumpcap", "tshark")
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Name: name, BasePort: base, Share: []string{data}, Log: testWriter{t}})
	if err != nil {
		t.Fatalf("the Asterisk lab did not come up: %v", err)
	}
	t.Cleanup(l.Down)
	m := &mediaLab{l: l, cfg: l.FaxboxConfig(config.Default()), tif: filepath.Join(data, "page.tif"), res: map[string]chan dialler.Result{}}
	if err := os.WriteFile(m.tif, testkit.FaxTIFF(t, pages), 0o644); err != nil {
		t.Fatal(err)
	}
	a := m.cfg.Asterisk
	client, err := ami.Dial(context.Background(), ami.Config{Addr: a.AMIAddr, Username: a.AMIUser, Secret: a.AMISecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if m.d, err = asterisk.New(asterisk.Config{Group: lab.TrunkName, Dial: m.cfg.LineGroups[0].Dial, Transport: "ami", UID: -1, GID: -1}, client, m); err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range client.Events() {
			m.d.Handle(ev)
		}
	}()
	m.mcfg = MonitorConfig{UDPTL: []PortRange{{uint16(a.UDPTLStart), uint16(a.UDPTLEnd)}}, RTP: []PortRange{{uint16(a.RTPStart), uint16(a.RTPEnd)}},
		SIP: []PortRange{{uint16(a.SIPPort), uint16(a.SIPPort)}}}
	return m
}

// fax sends the TIFF to number (over T.38 when t38) and returns its result.
func (m *mediaLab) fax(t *testing.T, id, number string, t38 bool) dialler.Result {
	ch := make(chan dialler.Result, 1)
	m.mu.Lock()
	m.res[id] = ch
	m.mu.Unlock()
	err := m.d.Dial(context.Background(), dialler.Request{AttemptID: id, JobID: "fx_" + id, To: number, Line: job.LineAt(lab.TrunkName, 0),
		Fax: &dialler.FaxSpec{TIFF: m.tif, FirstPage: 1, Pages: 1, TotalPages: 1, StationID: "FAXBOX LAB", ECM: true, T38: t38}})
	if err != nil {
		t.Errorf("dial %s: %v", id, err)
		return dialler.Result{}
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(4 * time.Minute):
		t.Errorf("%s: no result", id)
		return dialler.Result{}
	}
}

// dumpcap runs Wireshark's dumpcap on lo with the same port ranges; stop
// ends it and returns its capture (pcap).
func dumpcap(t *testing.T, mc MonitorConfig) (stop func() []byte) {
	t.Helper()
	var expr []string
	for _, r := range append(append(append([]PortRange(nil), mc.UDPTL...), mc.RTP...), mc.SIP...) {
		expr = append(expr, fmt.Sprintf("portrange %d-%d", r.First, r.Last))
	}
	file := filepath.Join(t.TempDir(), "dumpcap.pcap")
	cmd := exec.Command("dumpcap", "-P", "-i", "lo", "-B", "16", "-f", "udp and ("+strings.Join(expr, " or ")+")", "-w", file)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "Capturing on") {
	}
	go func() {
		for sc.Scan() {
			t.Log("dumpcap:", sc.Text())
		}
	}()
	return func() []byte {
		time.Sleep(time.Second) // dumpcap flushes on its own schedule
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// replay feeds a pcap to a fresh monitor.
func replay(t *testing.T, mc MonitorConfig, pcap []byte) *Monitor {
	t.Helper()
	mc.Rate = 1 << 30 // a replay comes at once
	mc.Burst = 1 << 30
	m := NewMonitor(mc)
	if err := ReadPcap(bytes.NewReader(pcap), func(b []byte, at time.Time) error { m.Handle(b, at); return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLabCapture captures the box's media on lo while real faxes run —
// two over T.38 to 100 at once and one over G.711 to 101 — beside
// Wireshark's dumpcap on the same traffic: both see the same packets,
// flow by flow, and the capture misses none (no kernel drops, no rate
// drops).
func TestLabCapture(t *testing.T) {
	m := startMediaLab(t, "mediacap", 38060, 1)
	var mine bytes.Buffer
	pw, _ := NewPcapWriter(&mine)
	c, err := Open(Config{Monitor: m.mcfg, Interface: "lo", Tap: func(b []byte, at time.Time) { pw.Write(b, at) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopDump := dumpcap(t, m.mcfg)

	var wg sync.WaitGroup
	for _, f := range []struct {
		id, number string
		t38        bool
	}{{"at_media_t38_a", "100", true}, {"at_media_t38_b", "100", true}, {"at_media_g711", "101", false}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := m.fax(t, f.id, f.number, f.t38)
			want := map[bool]string{true: "t38", false: "g711"}[f.t38]
			if !r.OK() || r.PagesSent != 1 || r.Transport != want {
				t.Errorf("%s: %+v; want delivered over %s", f.id, r, want)
			}
		}()
	}
	wg.Wait()
	theirs := stopDump()
	time.Sleep(200 * time.Millisecond)
	st := c.Stats()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("capture: %+v", st)

	ref := replay(t, m.mcfg, theirs)
	if rc := ref.Counters(); st.Dispatched != rc.Dispatched || st.KernelDrops != 0 || st.RateDropped != 0 || st.FlowsRefused != 0 {
		t.Errorf("capture dispatched %d packets (kernel drops %d, rate drops %d, refused %d); dumpcap saw %d",
			st.Dispatched, st.KernelDrops, st.RateDropped, st.FlowsRefused, rc.Dispatched)
	}
	compareFlows(t, c.Flows(nil), ref.Flows(nil))
	checkFlows(t, c.Flows(nil))
	// What the capture wrote, read by Wireshark's T.38 dissector: the
	// same datagrams, sequence numbers, IFP types and gap counts.
	crossCheck(t, "live", mine.Bytes(), m.mcfg)
	crossCheckSDP(t, c.Monitor, theirs, m.mcfg)
	if *update {
		writeTestdata(t, mine.Bytes(), m.mcfg)
	}
}

// crossCheckSDP: the T.38 streams and T38FaxMaxDatagram sizes the live
// capture read in the SDPs on the box's SIP port are the ones tshark's SDP
// dissector reads in dumpcap's file (two T.38 calls: four streams), and
// each T.38 call's dialog holds both ends' audio and T.38 streams.
func crossCheckSDP(t *testing.T, live *Monitor, theirs []byte, mc MonitorConfig) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "sip.pcap")
	if err := os.WriteFile(file, theirs, 0o644); err != nil {
		t.Fatal(err)
	}
	want := testkit.TsharkT38Offers(t, file, int(mc.SIP[0].First))
	got := map[string]int{}
	calls := 0
	for _, d := range live.Dialogs() {
		kinds := map[[2]bool]bool{}
		for _, s := range d.Streams {
			kinds[[2]bool{s.Kind == StreamT38, s.Local}] = true
			if s.Kind == StreamT38 && s.MaxDatagram > 0 {
				got[s.Media.String()] = s.MaxDatagram
			}
		}
		if kinds[[2]bool{true, true}] || kinds[[2]bool{true, false}] {
			calls++
			if len(kinds) != 4 {
				t.Errorf("dialog %s lacks an end's audio or T.38 stream: %+v", d.CallID, d.Streams)
			}
		}
	}
	if len(want) != 4 || fmt.Sprint(got) != fmt.Sprint(want) || calls != 2 {
		t.Errorf("T.38 streams in the SDPs: the capture read %v in %d dialogs, tshark %v; want 4 streams of 2 calls", got, calls, want)
	}
}

// compareFlows: the live capture and the replay of dumpcap's file agree
// flow by flow.
func compareFlows(t *testing.T, got, want []FlowSnapshot) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d flows captured, dumpcap's file has %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.Packets != w.Packets || g.UDPTL.Gaps != w.UDPTL.Gaps || g.UDPTL.Recovered != w.UDPTL.Recovered {
			t.Errorf("flow %s: %d packets, %d gaps (%d recovered); dumpcap: %s %d packets, %d gaps (%d recovered)",
				g.Key, g.Packets, g.UDPTL.Gaps, g.UDPTL.Recovered, w.Key, w.Packets, w.UDPTL.Gaps, w.UDPTL.Recovered)
		}
	}
}

// checkFlows: two T.38 faxes make four UDPTL flows (two each way), clean;
// the G.711 fax an RTP flow each way without loss.
func checkFlows(t *testing.T, flows []FlowSnapshot) {
	t.Helper()
	n := map[Kind]int{}
	for _, f := range flows {
		n[f.Kind]++
		t.Logf("%s %s: %d packets", f.Kind, f.Key, f.Packets)
		switch f.Kind {
		case KindUDPTL:
			u := f.UDPTL
			if u.Gaps != 0 || u.Malformed != 0 || u.Packets == 0 || u.FCSBad != 0 {
				t.Errorf("T.38 flow %s on clean loopback: %+v", f.Key, u)
			}
		case KindRTP:
			for _, s := range f.RTP.SSRCs {
				if s.Lost > 0 || s.Duplicates > 0 {
					t.Errorf("RTP flow %s on clean loopback: %+v", f.Key, s)
				}
			}
		}
	}
	if n[KindUDPTL] != 4 || n[KindRTP] < 2 {
		t.Errorf("flows: %v; want 4 UDPTL and at least 2 RTP (the G.711 fax, the T.38 calls' audio before the switch)", n)
	}
}

// writeTestdata keeps the UDPTL packets of the first T.38 call (both
// directions) as testdata/lab-t38-redundancy.pcap, and one
// datagram of each distinct shape as the fuzz seed corpus.
func writeTestdata(t *testing.T, pcap []byte, mc MonitorConfig) {
	t.Helper()
	if t.Failed() {
		t.Fatal("not updating testdata from a failed run")
	}
	flows := replay(t, mc, pcap).Flows(func(_ FlowKey, k Kind) bool { return k == KindUDPTL })
	first := flows[0].Key
	keep := func(k FlowKey) bool { return k == first || k == FlowKey{first.Dst, first.Src} }
	var out bytes.Buffer
	pw, _ := NewPcapWriter(&out)
	seeds := map[string][]byte{}
	err := ReadPcap(bytes.NewReader(pcap), func(b []byte, at time.Time) error {
		key, payload, ok := UDP(b)
		if !ok || !keep(key) {
			return nil
		}
		if shape := shapeOf(payload); seeds[shape] == nil {
			seeds[shape] = append([]byte(nil), payload...)
		}
		return pw.Write(b, at)
	})
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll("testdata", 0o755)
	if err := os.WriteFile(filepath.Join("testdata", "lab-t38-redundancy.pcap"), out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	corpus := filepath.Join("..", "udptl", "testdata", "fuzz", "FuzzParse")
	os.MkdirAll(corpus, 0o755)
	i := 0
	for shape, b := range seeds {
		name := fmt.Sprintf("lab-%02d", i)
		i++
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(corpus, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %s: %s", name, shape)
	}
	t.Logf("wrote %d octets of pcap and %d seeds", out.Len(), len(seeds))
}
