//go:build lab

package media_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

// startImpaired runs a faxbox on a real Asterisk lab whose media passes
// the impairing relay (seeded with seed).
func startImpaired(t *testing.T, name string, base int, seed uint64) (*testkit.Client, *lab.Relay) {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf", "debootstrap", "nft")
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Name: name, BasePort: base, Share: []string{data}, Log: testWriter{t}, Relay: true, RelaySeed: seed})
	if err != nil {
		t.Fatalf("the Asterisk lab did not come up: %v", err)
	}
	t.Cleanup(l.Down)
	cfg := l.FaxboxConfig(config.Default())
	cfg.DataDir = data
	cfg.Tokens = []string{token}
	cfg.StationID = "FAXBOX LAB"
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b, err := box.Open(ctx, cfg, box.Options{Version: "lab", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(sctx, ln); close(done) }()
	t.Cleanup(func() { scancel(); <-done; b.Close() })
	return &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}, l.Relay
}

// submit sends a one-page fax to to with extra fields and returns its id.
func submit(t *testing.T, c *testkit.Client, to string, fields ...testkit.Part) string {
	t.Helper()
	var j job.Job
	parts := append([]testkit.Part{testkit.File("file", "doc.pdf", testkit.PDF(t, 1)), testkit.Field("to", to)}, fields...)
	if r := c.Submit(t, "/v1/faxes", &j, parts...); r.StatusCode != 202 {
		t.Fatalf("submit to %s: HTTP %d", to, r.StatusCode)
	}
	return j.ID
}

// waitEnd polls the job until it ended (or until cond holds, when given).
func waitEnd(t *testing.T, c *testkit.Client, id string, d time.Duration, cond func(*job.Job) bool) *job.Job {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var j job.Job
		c.Do(t, "GET", "/v1/faxes/"+id, nil, "", &j)
		if j.Status.Terminal() || (cond != nil && cond(&j)) {
			return &j
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(j)
			t.Fatalf("job %s still %s after %v: %s", id, j.Status, d, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func logJob(t *testing.T, j *job.Job) {
	b, _ := json.MarshalIndent(j.Attempts, "", " ")
	t.Logf("job %s to %s: %s, attempts %s", j.ID, j.To, j.Status, b)
}

// TestLabT38RedundancyLoss: 5% random loss of the UDPTL datagrams each way
// (seeded) on a T.38 call with redundancy (the lab's default: three
// secondary IFPs per datagram). The fax is delivered; what the box
// received shows as many sequence gaps as the relay dropped towards it
// (tolerance: 2, the drops before the stream's first or after its last
// datagram are no gaps), every one recovered from redundancy, none
// unrecoverable; the injected loss is within 1% to 12% of the datagrams
// (5% of ~100-300: the binomial spread).
func TestLabT38RedundancyLoss(t *testing.T) {
	c, relay := startImpaired(t, "impairred", 48060, 5)
	udptl := lab.KindUDPTL
	for _, d := range []lab.Direction{lab.ToRemote, lab.ToBox} {
		relay.Set(d, lab.Impairment{LossPct: 5, Only: &udptl})
	}
	id := submit(t, c, "100", testkit.Field("max_attempts", "1"))
	j := waitEnd(t, c, id, 4*time.Minute, nil)
	logJob(t, j)
	in := relay.Counts(lab.ToBox, lab.KindUDPTL)
	out := relay.Counts(lab.ToRemote, lab.KindUDPTL)
	t.Logf("relay to the box: %+v; to the remote: %+v", in, out)
	if j.Status != job.Delivered {
		t.Fatalf("not delivered through 5%% loss with redundancy: %s", j.Status)
	}
	m := j.LastAttempt().Media
	if m == nil || m.T38 == nil {
		t.Fatalf("no T.38 media report: %+v", m)
	}
	r := m.T38.Received
	if in.Lost == 0 || out.Lost == 0 {
		t.Fatalf("the relay dropped nothing (%d, %d): the media did not pass it", in.Lost, out.Lost)
	}
	if rate := 100 * float64(in.Lost) / float64(in.In); rate < 1 || rate > 12 {
		t.Errorf("injected loss %.1f%% (%d of %d)", rate, in.Lost, in.In)
	}
	if r.Gaps > in.Lost || r.Gaps < in.Lost-2 {
		t.Errorf("received gaps %d, the relay dropped %d towards the box", r.Gaps, in.Lost)
	}
	if r.Recovered != r.Gaps || r.Unrecoverable != 0 {
		t.Errorf("received: %d gaps, %d recovered, %d unrecoverable; want all recovered", r.Gaps, r.Recovered, r.Unrecoverable)
	}
	if r.Packets != in.Sent {
		t.Errorf("received %d datagrams, the relay sent %d to the box", r.Packets, in.Sent)
	}
	if sent := m.T38.Sent.Packets; sent != out.In {
		t.Errorf("sent %d datagrams, the relay got %d from the box", sent, out.In)
	}
	if reported, injected := 100*float64(r.Gaps)/float64(r.Packets+r.Gaps), 100*float64(in.Lost)/float64(in.In); math.Abs(reported-injected) > 1.5 {
		t.Errorf("reported loss %.2f%%, injected %.2f%%", reported, injected)
	}
	if a := j.LastAttempt(); a.Decision != "" {
		t.Errorf("a clean history's attempt has a decision: %q", a.Decision)
	}
}

// TestLabBurstyLossAdapts: heavy bursty loss (a burst starts at 10% of
// the datagrams and lasts 10 on average: about half of them lost) of the
// UDPTL datagrams each way to 109, T.38 without error correction: the
// first attempt fails, its media report shows the unrecoverable gaps; the
// relay is then cleared, and the second attempt goes with ECM on and at
// most 9600 bit/s and says why in its decision (whether it stays on T.38
// is the job's own fallback ladder's matter: the lost T.30 preamble makes
// Asterisk report the first call as "not a fax", which the ladder does not
// step on). The trunk's alarm is up in /v1/status and /metrics.
func TestLabBurstyLossAdapts(t *testing.T) {
	c, relay := startImpaired(t, "impairburst", 49060, 9)
	udptl := lab.KindUDPTL
	for _, d := range []lab.Direction{lab.ToRemote, lab.ToBox} {
		relay.Set(d, lab.Impairment{BurstPct: 10, BurstLen: 10, Only: &udptl})
	}
	id := submit(t, c, "109", testkit.Field("max_attempts", "2"), testkit.Field("retry_interval", "15s"))
	first := waitEnd(t, c, id, 4*time.Minute, func(j *job.Job) bool {
		return len(j.Attempts) > 0 && j.Attempts[0].Result != job.AttemptInProgress
	})
	for _, d := range []lab.Direction{lab.ToRemote, lab.ToBox} {
		relay.Set(d, lab.Impairment{})
	}
	logJob(t, first)
	a1 := first.Attempts[0]
	if a1.Result != job.AttemptFailed || !a1.T38 {
		t.Fatalf("first attempt through heavy bursty loss without redundancy: %s (T.38 offered %v)", a1.Result, a1.T38)
	}
	if a1.Media == nil || a1.Media.T38 == nil || a1.Media.T38.Received.Unrecoverable == 0 || a1.Media.T38.Received.RedundancyDepth != 0 {
		b, _ := json.Marshal(a1.Media)
		t.Fatalf("first attempt's media report shows no unrecoverable gaps without redundancy: %s", b)
	}
	j := waitEnd(t, c, id, 5*time.Minute, nil)
	logJob(t, j)
	if len(j.Attempts) != 2 {
		t.Fatalf("%d attempts", len(j.Attempts))
	}
	a2 := j.Attempts[1]
	if !a2.ECM || a2.MaxRate != 9600 || !strings.HasPrefix(a2.Decision, "ECM on, 9600 because of ") || !strings.Contains(a2.Decision, "% unrecoverable loss to this number on ") {
		t.Errorf("second attempt: ECM %v, max rate %d, decision %q", a2.ECM, a2.MaxRate, a2.Decision)
	}
	if j.Status != job.Delivered {
		t.Errorf("second attempt on a clean path: %s", j.Status)
	}
	var st struct {
		Extra struct {
			Alarms      []string `json:"alarms"`
			MediaHealth struct {
				Alarm bool `json:"alarm"`
			} `json:"media_health"`
		} `json:"extra"`
	}
	c.Do(t, "GET", "/v1/status", nil, "", &st)
	if !st.Extra.MediaHealth.Alarm || !strings.Contains(strings.Join(st.Extra.Alarms, ","), "T.38 health bad") {
		t.Errorf("/v1/status: media alarm %v, alarms %v", st.Extra.MediaHealth.Alarm, st.Extra.Alarms)
	}
	r := c.Do(t, "GET", "/metrics", nil, "", nil)
	body, _ := io.ReadAll(r.Body)
	if !strings.Contains(string(body), `faxbox_media_alarm{trunk="trunk"} 1`) {
		t.Errorf("/metrics lacks the trunk's alarm:\n%s", body)
	}
}

// TestLabG711Loss: 1% random loss (seeded) of the RTP packets towards the
// box on a G.711 fax (101, no T.38): the report's received RTP loss is
// what the relay dropped (tolerance 2 packets, at the stream's ends) and
// about 1% (0.5% to 1.6%: ~2000+ packets).
func TestLabG711Loss(t *testing.T) {
	c, relay := startImpaired(t, "impairg711", 51060, 3)
	rtp := lab.KindRTP
	relay.Set(lab.ToBox, lab.Impairment{LossPct: 1, Only: &rtp})
	id := submit(t, c, "101", testkit.Field("max_attempts", "1"))
	j := waitEnd(t, c, id, 4*time.Minute, nil)
	logJob(t, j)
	in := relay.Counts(lab.ToBox, lab.KindRTP)
	t.Logf("relay to the box: %+v", in)
	m := j.LastAttempt().Media
	if m == nil || m.RTP == nil {
		t.Fatalf("no RTP media report: %+v", m)
	}
	r := m.RTP.Received
	if in.Lost == 0 {
		t.Fatal("the relay dropped nothing: the media did not pass it")
	}
	if r.Lost > in.Lost || r.Lost < in.Lost-2 {
		t.Errorf("reported %d RTP packets lost, the relay dropped %d", r.Lost, in.Lost)
	}
	if r.LossPct < 0.5 || r.LossPct > 1.6 {
		t.Errorf("reported RTP loss %.2f%%, want about 1%%", r.LossPct)
	}
	if s := m.RTP.Sent; s.Lost != 0 {
		t.Errorf("sent direction (not impaired) lost %d", s.Lost)
	}
}
