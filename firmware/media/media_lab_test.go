//go:build lab

package media_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

const token = "media-lab-token"

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startBox runs a faxbox on a real Asterisk lab; it returns the API client
// and the box's Asterisk port ranges.
func startBox(t *testing.T, name string, base int, logs ...io.Writer) (*testkit.Client, *config.Asterisk) {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf", "debootstrap", "tshark", "dumpcap")
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Name: name, BasePort: base, Share: []string{data}, Log: testWriter{t}})
	if err != nil {
		t.Fatalf("the Asterisk lab did not come up: %v", err)
	}
	t.Cleanup(l.Down)
	cfg := l.FaxboxConfig(config.Default())
	cfg.DataDir = data
	cfg.Tokens = []string{token}
	cfg.StationID = "FAXBOX LAB"
	log := slog.New(slog.NewTextHandler(io.MultiWriter(append(logs, testWriter{t})...), &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := box.Open(ctx, cfg, box.Options{Version: "lab", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(sctx, ln); close(done) }()
	t.Cleanup(func() { scancel(); <-done; b.Close() })
	return &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}, cfg.Asterisk
}

// dumpcap captures the box's media ranges on lo with Wireshark's dumpcap
// until stop, which returns the file.
func dumpcap(t *testing.T, a *config.Asterisk) (stop func() string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "media.pcap")
	filter := fmt.Sprintf("udp and (portrange %d-%d or portrange %d-%d or port %d)", a.RTPStart, a.RTPEnd, a.UDPTLStart, a.UDPTLEnd, a.SIPPort)
	cmd := exec.Command("dumpcap", "-q", "-i", "lo", "-B", "16", "-f", filter, "-w", file)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "Capturing on") {
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return func() string {
		time.Sleep(time.Second)
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		return file
	}
}

// tsharkCount counts the datagrams from one address to another that
// tshark dissects with filter (t38 or rtp) in file, the box's ranges
// decoded as UDPTL and RTP.
func tsharkCount(t *testing.T, file string, a *config.Asterisk, proto, from, to string) int {
	t.Helper()
	src, err1 := net.ResolveUDPAddr("udp", from)
	dst, err2 := net.ResolveUDPAddr("udp", to)
	if err1 != nil || err2 != nil {
		t.Fatalf("addresses %q %q", from, to)
	}
	filter := fmt.Sprintf("%s && ip.src==%s && udp.srcport==%d && ip.dst==%s && udp.dstport==%d", proto, src.IP, src.Port, dst.IP, dst.Port)
	out, err := exec.Command("tshark", "-n", "-r", file,
		"-d", fmt.Sprintf("udp.port==%d-%d,t38", a.UDPTLStart, a.UDPTLEnd),
		"-d", fmt.Sprintf("udp.port==%d-%d,rtp", a.RTPStart, a.RTPEnd),
		"-o", "t38.dissect_possible_rtpv2_packets_as_rtp:FALSE",
		"-Y", filter, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatalf("tshark -Y %q: %v", filter, err)
	}
	return len(strings.Fields(string(out)))
}

// TestLabMediaReport sends real faxes through a faxbox on the lab, two
// over T.38 (to 100, with redundancy, and 109, without error correction)
// and one over G.711 to 101 at once, with dumpcap capturing the same
// traffic and the box's SIP. Every delivered attempt carries a media
// report, in the API and in its webhook: the T.38 ones their own UDPTL
// streams with no gaps and as many datagrams each way as tshark's T.38
// dissector finds between the same addresses, each direction with the
// T38FaxMaxDatagram its receiver declared in the SDP, as tshark reads it
// (109, without error correction, declares a size of its own, unlike the
// box); the G.711 one its RTP streams without loss, with tshark's RTP
// packet counts.
func TestLabMediaReport(t *testing.T) {
	c, a := startBox(t, "mediarep", 39060)
	rcv := testkit.NewReceiver(t)
	stop := dumpcap(t, a)
	var wg sync.WaitGroup
	jobs := make([]*job.Job, 3)
	for i, to := range []string{"100", "109", "101"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var j job.Job
			r := c.Submit(t, "/v1/faxes", &j, testkit.File("file", "doc.pdf", testkit.PDF(t, 1)), testkit.Field("to", to),
				testkit.Field("max_attempts", "1"), testkit.Field("callback_url", rcv.URL))
			if r.StatusCode != 202 {
				t.Errorf("submit to %s: HTTP %d", to, r.StatusCode)
				return
			}
			jobs[i] = c.WaitJob(t, "/v1/faxes/"+j.ID, job.Delivered, 4*time.Minute, true)
		}()
	}
	wg.Wait()
	file := stop()
	if t.Failed() {
		t.FailNow()
	}
	udptlPorts := map[string]bool{}
	offers := testkit.TsharkT38Offers(t, file, a.SIPPort)
	t.Logf("T.38 streams in the SDPs, by tshark: %v", offers)
	for i, j := range jobs {
		a0 := j.LastAttempt()
		m := a0.Media
		b, _ := json.Marshal(m)
		t.Logf("job %d to %s (%s): media %s", i, j.To, a0.Transport, b)
		if m == nil || m.Unavailable != "" {
			t.Errorf("job %s: no media report: %s", j.ID, b)
			continue
		}
		switch j.To {
		case "100":
			if checkT38(t, file, a, m, [2]int{3, 3}, offers) {
				udptlPorts[m.T38.Sent.From] = true
			}
		case "109":
			// The box sends with its own redundancy; 109 sends without.
			if checkT38(t, file, a, m, [2]int{3, 0}, offers) {
				udptlPorts[m.T38.Sent.From] = true
				if m.T38.Sent.MaxDatagram == m.T38.Received.MaxDatagram {
					t.Errorf("109 and the box declared T38FaxMaxDatagram %d and %d; the lab's 109 declares its own size",
						m.T38.Sent.MaxDatagram, m.T38.Received.MaxDatagram)
				}
			}
		case "101":
			checkG711(t, file, a, m)
		}
		checkWebhook(t, rcv, j.ID, m)
	}
	if len(udptlPorts) != 2 {
		t.Errorf("the two T.38 faxes got UDPTL streams from %v; want two different ones", udptlPorts)
	}
}

// checkT38 checks a T.38 report on clean loopback: redundancy of depth
// at most depths (sent, received; 0: none), and on each direction the
// T38FaxMaxDatagram its receiver declared, as tshark read it in the SDPs
// (offers).
func checkT38(t *testing.T, file string, a *config.Asterisk, m *job.MediaReport, depths [2]int, offers map[string]int) bool {
	t.Helper()
	if m.Transport != "t38" || m.T38 == nil || m.Tie != "rtp-port+sdp" {
		t.Errorf("T.38 fax: transport %s, tie %s, t38 %v", m.Transport, m.Tie, m.T38)
		out, _ := exec.Command("tshark", "-n", "-r", file, "-q", "-z", "conv,udp").Output()
		t.Logf("UDP conversations:\n%s", out)
		return false
	}
	for i, d := range []job.UDPTLDirection{m.T38.Sent, m.T38.Received} {
		name, depth := []string{"sent", "received"}[i], depths[i]
		if d.Gaps != 0 || d.Unrecoverable != 0 || d.Malformed != 0 || d.FCSBad != 0 || d.Packets == 0 || d.LargestDatagram == 0 ||
			(depth == 0) != (d.RedundancyDepth == 0) || d.RedundancyDepth > depth {
			t.Errorf("T.38 %s on clean loopback (redundancy depth up to %d): %+v", name, depth, d)
		}
		if d.MaxDatagram == 0 || d.MaxDatagram != offers[d.To] || d.OverMaxDatagram != (d.LargestDatagram > d.MaxDatagram) {
			t.Errorf("T.38 %s to %s: negotiated T38FaxMaxDatagram %d (over: %v); tshark's SDP for %s says %d",
				name, d.To, d.MaxDatagram, d.OverMaxDatagram, d.To, offers[d.To])
		}
		if n := tsharkCount(t, file, a, "t38", d.From, d.To); n != d.Packets {
			t.Errorf("T.38 %s %s>%s: %d datagrams in the report, tshark dissects %d", name, d.From, d.To, d.Packets, n)
		}
	}
	if m.SwitchToUDPTLMS == nil || *m.SwitchToUDPTLMS < -1000 || *m.SwitchToUDPTLMS > 5000 {
		t.Errorf("switch to first UDPTL packet: %v ms", m.SwitchToUDPTLMS)
	}
	return true
}

func checkG711(t *testing.T, file string, a *config.Asterisk, m *job.MediaReport) {
	t.Helper()
	if m.Transport != "g711" || m.RTP == nil || m.T38 != nil {
		t.Errorf("G.711 fax: transport %s, rtp %v, t38 %v", m.Transport, m.RTP, m.T38)
		return
	}
	for name, d := range map[string]job.RTPDirection{"sent": m.RTP.Sent, "received": m.RTP.Received} {
		if d.Lost != 0 || d.Packets < 500 || d.Expected == 0 || d.JitterMS > 30 {
			t.Errorf("RTP %s on clean loopback: %+v", name, d)
		}
		if n := tsharkCount(t, file, a, "rtp", d.From, d.To); n != d.Packets {
			t.Errorf("RTP %s %s>%s: %d packets in the report, tshark dissects %d", name, d.From, d.To, d.Packets, n)
		}
	}
}

// checkWebhook: the fax.delivered webhook carries the same report.
func checkWebhook(t *testing.T, rcv *testkit.Receiver, id string, want *job.MediaReport) {
	t.Helper()
	var got *job.MediaReport
	rcv.Wait(t, 30*time.Second, "fax.delivered of "+id, func(hs []testkit.Hook) bool {
		for _, ev := range testkit.Events(hs, id) {
			if ev.Event != "fax.delivered" {
				continue
			}
			var j job.Job
			if json.Unmarshal(ev.Data, &j) == nil && j.LastAttempt() != nil {
				got = j.LastAttempt().Media
				return true
			}
		}
		return false
	})
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("webhook of %s: media %s; the API shows %s", id, g, w)
	}
}

// TestLabMediaWithoutCapability runs a faxbox without CAP_NET_RAW (this
// test again, under setpriv with the capability out of the bounding set):
// it starts, says once that media capture is unavailable, delivers a T.38
// fax, and the attempt's media report says why it has nothing.
func TestLabMediaWithoutCapability(t *testing.T) {
	if os.Getenv("FAXBOX_MEDIA_NOCAP") == "" {
		testkit.Require(t, "setpriv")
		cmd := exec.Command("setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--",
			os.Args[0], "-test.run=^TestLabMediaWithoutCapability$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "FAXBOX_MEDIA_NOCAP=1")
		out, err := cmd.CombinedOutput()
		t.Logf("without CAP_NET_RAW:\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestLabMediaWithoutCapability") {
			t.Fatalf("the run without CAP_NET_RAW failed: %v", err)
		}
		return
	}
	if fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, 0); err == nil {
		syscall.Close(fd)
		t.Fatal("an AF_PACKET socket opened: CAP_NET_RAW was not dropped")
	}
	var logs lockedBuffer
	c, _ := startBox(t, "medianocap", 40060, &logs)
	if n := strings.Count(logs.String(), "media capture unavailable"); n != 1 {
		t.Errorf("%d log lines say media capture is unavailable; want 1", n)
	}
	var j job.Job
	if r := c.Submit(t, "/v1/faxes", &j, testkit.File("file", "doc.pdf", testkit.PDF(t, 1)), testkit.Field("to", "100")); r.StatusCode != 202 {
		t.Fatalf("submit: HTTP %d", r.StatusCode)
	}
	got := c.WaitJob(t, "/v1/faxes/"+j.ID, job.Delivered, 4*time.Minute, true)
	m := got.LastAttempt().Media
	if m == nil || !strings.Contains(m.Unavailable, "media capture unavailable") || m.T38 != nil || m.RTP != nil {
		t.Errorf("media report without the capture: %+v", m)
	}
}

// lockedBuffer is a bytes.Buffer safe for the box's concurrent logging.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLabT38Refused: a fax demanding T.38 (t38=on) to 101, a G.711-only
// machine that refuses the box's T.38 re-INVITE, fails; the next job to
// 101, also t38=on, goes G.711 first with no attempt spent on T.38, says
// why on its attempt, and is delivered in one call.
func TestLabT38Refused(t *testing.T) {
	c, _ := startBox(t, "mediat38no", 47060)
	send := func(name string, want job.Status) *job.Job {
		var j job.Job
		r := c.Submit(t, "/v1/faxes", &j, testkit.File("file", "doc.pdf", testkit.PDF(t, 1)), testkit.Field("to", "101"),
			testkit.Field("t38", "on"), testkit.Field("max_attempts", "1"))
		if r.StatusCode != 202 {
			t.Fatalf("%s: submit: HTTP %d", name, r.StatusCode)
		}
		got := c.WaitJob(t, "/v1/faxes/"+j.ID, want, 4*time.Minute, true)
		b, _ := json.Marshal(got.Attempts)
		t.Logf("%s: %s, attempts %s", name, got.Status, b)
		return got
	}
	first := send("first job", job.Failed)
	if a := first.LastAttempt(); len(first.Attempts) != 1 || !a.T38 || a.Transport == "t38" || a.Decision != "" || a.Error == nil {
		t.Fatalf("first job: %s, attempt %+v; want failed on its T.38-only attempt", first.Status, a)
	}
	second := send("second job", job.Delivered)
	a := second.LastAttempt()
	if len(second.Attempts) != 1 || a.T38 || a.Transport != "g711" {
		t.Errorf("second job: %s, attempt %+v; want delivered over G.711 in its first attempt", second.Status, a)
	}
	if !strings.HasPrefix(a.Decision, "G.711 because T.38 negotiation failed to this number on ") {
		t.Errorf("second job's decision: %q", a.Decision)
	}
}
