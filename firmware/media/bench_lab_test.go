//go:build lab

package media_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

// The capture-overhead benchmark's lab: its own name and base port, four
// faxes at once to 107 (a fax server taking 4 calls; the lab's rule gives
// it max_concurrent 4), each of ovhPages pages over T.38.
const (
	ovhLabName = "mediabench"
	ovhBase    = 50060
	ovhFaxes   = 4
	ovhNumber  = "107"
	ovhPages   = 2
	// userHZ is the unit of utime and stime in /proc/PID/stat (USER_HZ,
	// 100 on Linux whatever the kernel's HZ).
	userHZ = 100
)

// ovhRound is one round of the load: faxbox with or without its capture.
type ovhRound struct {
	capture bool
	wall    time.Duration // from the first submission to the last fax delivered
	cpu     time.Duration // faxbox's utime+stime over wall
	ours    int           // datagrams in the attempts' media reports
	theirs  int           // datagrams dumpcap saw on the box's media ports
}

func (r ovhRound) pctCore() float64 { return 100 * r.cpu.Seconds() / r.wall.Seconds() }

// ovhEnv is the lab, the faxbox binary and the document the rounds share.
type ovhEnv struct {
	l    *lab.Lab
	bin  string
	tif  []byte
	dirs []string
}

// BenchmarkCaptureOverhead measures what the passive media capture costs
// faxbox while 4 T.38 faxes run at once on the real Asterisk lab, and that
// it misses no packet at that load.
//
// faxbox runs as its own process (cmd/faxbox serve) and the same load runs
// in alternating rounds (on, off, off, on, …) on one lab: with the
// capture, and without it (faxbox started under setpriv with CAP_NET_RAW
// out of its bounding set, so the capture cannot open its socket and
// everything else runs as before). Per-goroutine CPU cannot be read, so
// the capture's cost is the difference of faxbox's CPU time (utime+stime
// of /proc/PID/stat, all threads) per wall second between the two kinds of
// round. Each round runs Wireshark's dumpcap on lo on the box's RTP and
// UDPTL ranges; with the capture on, the datagrams in the attempts' media
// reports must equal what dumpcap saw (missed = dumpcap's − ours = 0).
// FAXBOX_BENCH_ROUNDS sets the number of on/off pairs (default 3).
func BenchmarkCaptureOverhead(b *testing.B) {
	testkit.Require(b, "go", "gs", "tiff2pdf", "debootstrap", "dumpcap", "tshark", "setpriv")
	pairs := 3
	if s := os.Getenv("FAXBOX_BENCH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("FAXBOX_BENCH_ROUNDS=%q: want a positive number", s)
		}
		pairs = n
	}
	e := &ovhEnv{dirs: make([]string, 2*pairs)}
	for i := range e.dirs {
		e.dirs[i] = b.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	l, err := lab.Up(ctx, lab.Options{Name: ovhLabName, BasePort: ovhBase, Share: e.dirs})
	cancel()
	if err != nil {
		b.Fatalf("the Asterisk lab did not come up: %v", err)
	}
	defer l.Down()
	e.l = l
	e.bin = filepath.Join(b.TempDir(), "faxbox")
	if out, err := exec.Command("go", "build", "-o", e.bin, "github.com/faxbox/faxbox/cmd/faxbox").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	e.tif = testkit.FaxTIFF(b, ovhPages)

	b.ResetTimer()
	var rounds []ovhRound
	for i := range 2 * pairs {
		on := i%4 == 0 || i%4 == 3 // on, off, off, on: neither kind always goes first
		rounds = append(rounds, e.round(b, i, on))
	}
	b.StopTimer()
	ovhReport(b, rounds)
}

// round starts faxbox (capture on or off), sends the 4 faxes at once,
// measures its CPU until all are delivered, and counts the datagrams.
func (e *ovhEnv) round(b *testing.B, i int, on bool) ovhRound {
	b.Helper()
	dir := e.dirs[i]
	cfg := e.l.FaxboxConfig(config.Default())
	a := cfg.Asterisk
	p := ovhStart(b, e.bin, dir, cfg, on)
	defer p.stop(b)
	stopDump := ovhDumpcap(b, a)
	time.Sleep(2 * time.Second) // faxbox's start-up work is over

	r := ovhRound{capture: on}
	cpu0, t0 := ovhCPU(b, p.cmd.Process.Pid), time.Now()
	ids := make([]string, ovhFaxes)
	for k := range ids {
		var j job.Job
		resp := p.c.Submit(b, "/v1/faxes", &j, testkit.File("file", "doc.tif", e.tif), testkit.Field("to", ovhNumber),
			testkit.Field("max_attempts", "1"), testkit.Field("t38", "on"))
		if resp.StatusCode != 202 {
			b.Fatalf("round %d: submit: HTTP %d", i+1, resp.StatusCode)
		}
		ids[k] = j.ID
	}
	jobs := ovhWait(b, p.c, ids, 5*time.Minute)
	r.cpu, r.wall = ovhCPU(b, p.cmd.Process.Pid)-cpu0, time.Since(t0)
	theirs := ovhCount(b, stopDump(), a)

	for _, j := range jobs {
		at := j.LastAttempt()
		if j.Status != job.Delivered || len(j.Attempts) != 1 || at.Transport != "t38" {
			buf, _ := json.Marshal(j)
			b.Fatalf("round %d: job %s is %s; want delivered over T.38 in one attempt: %s", i+1, j.ID, j.Status, buf)
		}
		m := at.Media
		switch {
		case !on && (m == nil || !strings.Contains(m.Unavailable, "media capture unavailable")):
			b.Errorf("round %d without the capture: job %s has media report %+v", i+1, j.ID, m)
		case on && (m == nil || m.Unavailable != "" || m.T38 == nil):
			b.Errorf("round %d with the capture: job %s has no T.38 media report: %+v", i+1, j.ID, m)
		case on:
			r.ours += ovhCompare(b, i, m, theirs)
		}
	}
	r.theirs = theirs.udptl + theirs.rtp
	return r
}

// ovhProc is a faxbox process.
type ovhProc struct {
	cmd *exec.Cmd
	c   *testkit.Client
	log string
}

// ovhStart runs faxbox serve on cfg with its data in dir; without on, under
// setpriv with CAP_NET_RAW dropped. It checks the log says which.
func ovhStart(b *testing.B, bin, dir string, cfg config.Config, on bool) *ovhProc {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cfg.Listen = ln.Addr().String()
	ln.Close()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Tokens = []string{token}
	cfg.StationID = "FAXBOX BENCH"
	cfg.Destinations = lab.Destinations()
	conf := filepath.Join(dir, "faxbox.json")
	buf, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(conf, buf, 0o600); err != nil {
		b.Fatal(err)
	}
	args := []string{bin, "serve", "-config", conf}
	if !on {
		args = append([]string{"setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--"}, args...)
	}
	p := &ovhProc{cmd: exec.Command(args[0], args[1:]...), c: &testkit.Client{Base: "http://" + cfg.Listen, Token: token},
		log: filepath.Join(dir, "faxbox.log")}
	logf, err := os.Create(p.log)
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		b.Fatalf("start faxbox: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(p.c.Base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			p.stop(b)
			b.Fatalf("faxbox did not come up; its log:\n%s", ovhReadLog(p.log))
		}
	}
	want := map[bool]string{true: "media capture running", false: "media capture unavailable"}[on]
	if log := ovhReadLog(p.log); !strings.Contains(log, want) {
		p.stop(b)
		b.Fatalf("faxbox's log does not say %q:\n%s", want, log)
	}
	return p
}

func ovhReadLog(file string) string {
	buf, _ := os.ReadFile(file)
	return string(buf)
}

// stop ends faxbox (SIGTERM, then SIGKILL after 20 s).
func (p *ovhProc) stop(b *testing.B) {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		b.Logf("faxbox did not stop on SIGTERM: killed")
		p.cmd.Process.Kill()
		<-done
	}
}

// ovhCPU is the process's CPU time so far, user and system, all threads.
func ovhCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	buf, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("faxbox's CPU time: %v", err)
	}
	// The command name may hold spaces: the fields after it are counted
	// from its closing parenthesis (field 3, state, comes first).
	s := string(buf)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(ut+st) * time.Second / userHZ
}

// ovhWait polls the jobs once a second (a light, equal load in every
// round) until all have ended.
func ovhWait(b *testing.B, c *testkit.Client, ids []string, d time.Duration) []*job.Job {
	b.Helper()
	deadline := time.Now().Add(d)
	for {
		jobs := make([]*job.Job, 0, len(ids))
		for _, id := range ids {
			var j job.Job
			c.Do(b, "GET", "/v1/faxes/"+id, nil, "", &j)
			if !j.Status.Terminal() {
				break
			}
			jobs = append(jobs, &j)
		}
		if len(jobs) == len(ids) {
			return jobs
		}
		if time.Now().After(deadline) {
			b.Fatalf("the faxes did not end within %s", d)
		}
		time.Sleep(time.Second)
	}
}

// ovhDumpcap runs dumpcap on lo on the box's RTP and UDPTL ranges (what
// faxbox's capture filters); stop ends it and returns its file.
func ovhDumpcap(b *testing.B, a *config.Asterisk) (stop func() string) {
	b.Helper()
	file := filepath.Join(b.TempDir(), "media.pcapng")
	filter := fmt.Sprintf("udp and (portrange %d-%d or portrange %d-%d)", a.RTPStart, a.RTPEnd, a.UDPTLStart, a.UDPTLEnd)
	cmd := exec.Command("dumpcap", "-q", "-i", "lo", "-B", "16", "-f", filter, "-w", file)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		b.Fatalf("dumpcap: %v", err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "Capturing on") {
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return func() string {
		time.Sleep(time.Second) // the last datagrams reach the file
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		return file
	}
}

// ovhCounts are the datagrams of a dumpcap file: per direction
// ("127.0.0.1:50360>127.0.0.1:50460") and in total per box range.
type ovhCounts struct {
	flows      map[string]int
	udptl, rtp int
}

// ovhCount counts the UDP datagrams in file with tshark, by addresses and
// ports, whatever they carry.
func ovhCount(b *testing.B, file string, a *config.Asterisk) ovhCounts {
	b.Helper()
	out, err := exec.Command("tshark", "-n", "-r", file, "-Y", "udp",
		"-T", "fields", "-E", "separator=,", "-e", "ip.src", "-e", "udp.srcport", "-e", "ip.dst", "-e", "udp.dstport").Output()
	if err != nil {
		b.Fatalf("tshark -r %s: %v", file, err)
	}
	c := ovhCounts{flows: map[string]int{}}
	in := func(p, first, last int) bool { return p >= first && p <= last }
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) != 4 {
			continue
		}
		c.flows[f[0]+":"+f[1]+">"+f[2]+":"+f[3]]++
		sp, _ := strconv.Atoi(f[1])
		dp, _ := strconv.Atoi(f[3])
		switch {
		case in(sp, a.UDPTLStart, a.UDPTLEnd) || in(dp, a.UDPTLStart, a.UDPTLEnd):
			c.udptl++
		case in(sp, a.RTPStart, a.RTPEnd) || in(dp, a.RTPStart, a.RTPEnd):
			c.rtp++
		}
	}
	return c
}

// ovhCompare checks an attempt's media report direction by direction
// against dumpcap's counts and returns the datagrams it reports.
func ovhCompare(b *testing.B, round int, m *job.MediaReport, theirs ovhCounts) int {
	b.Helper()
	type dir struct {
		name, from, to string
		n              int
	}
	ds := []dir{
		{"UDPTL sent", m.T38.Sent.From, m.T38.Sent.To, m.T38.Sent.Packets + m.T38.Sent.Malformed},
		{"UDPTL received", m.T38.Received.From, m.T38.Received.To, m.T38.Received.Packets + m.T38.Received.Malformed},
	}
	if m.RTP != nil {
		ds = append(ds, dir{"RTP sent", m.RTP.Sent.From, m.RTP.Sent.To, m.RTP.Sent.Packets},
			dir{"RTP received", m.RTP.Received.From, m.RTP.Received.To, m.RTP.Received.Packets})
	}
	total := 0
	for _, d := range ds {
		total += d.n
		if d.n == 0 {
			continue
		}
		if want := theirs.flows[d.from+">"+d.to]; d.n != want {
			b.Errorf("round %d: %s %s>%s: %d datagrams in the media report, dumpcap saw %d", round+1, d.name, d.from, d.to, d.n, want)
		}
	}
	return total
}

// ovhReport prints the rounds and the result, and reports the metrics.
func ovhReport(b *testing.B, rounds []ovhRound) {
	var on, off ovhRound
	var missed int
	fmt.Printf("\ncapture overhead: %d T.38 faxes of %d pages at once to %s per round\n", ovhFaxes, ovhPages, ovhNumber)
	fmt.Printf("%-6s %-8s %9s %11s %8s %22s\n", "round", "capture", "wall", "faxbox CPU", "% core", "datagrams ours/dumpcap")
	for i, r := range rounds {
		sum, kind, counts := &off, "off", "—"
		if r.capture {
			sum, kind, counts = &on, "on", fmt.Sprintf("%d/%d", r.ours, r.theirs)
			missed += r.theirs - r.ours
		}
		sum.wall += r.wall
		sum.cpu += r.cpu
		sum.ours += r.ours
		sum.theirs += r.theirs
		fmt.Printf("%-6d %-8s %9s %11s %7.2f%% %22s\n", i+1, kind, r.wall.Round(10*time.Millisecond),
			r.cpu.Round(10*time.Millisecond), r.pctCore(), counts)
	}
	cost := on.pctCore() - off.pctCore()
	fmt.Printf("faxbox CPU with the capture %.2f%% of one core, without %.2f%%: the capture costs %.2f%% of one core (target < 2%%), ratio %.2f\n",
		on.pctCore(), off.pctCore(), cost, on.pctCore()/off.pctCore())
	fmt.Printf("datagrams: the capture reported %d, dumpcap saw %d (%.0f/s): missed %d\n",
		on.ours, on.theirs, float64(on.theirs)/on.wall.Seconds(), missed)
	b.ReportMetric(on.pctCore(), "%core-on")
	b.ReportMetric(off.pctCore(), "%core-off")
	b.ReportMetric(cost, "%core-capture")
	b.ReportMetric(on.pctCore()/off.pctCore(), "on/off")
	b.ReportMetric(float64(missed), "missed")
	b.ReportMetric(float64(on.theirs), "datagrams")
	if missed != 0 || on.ours != on.theirs {
		b.Errorf("the capture reported %d datagrams, dumpcap saw %d", on.ours, on.theirs)
	}
	if cost >= 2 {
		b.Errorf("the capture costs %.2f%% of one core; the target is under 2%%", cost)
	}
}
