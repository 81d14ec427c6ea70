//go:build lab

package asterisk_test

import (
	"context"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/destctl"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

// BenchmarkRealAsterisk measures, with the real lab Asterisk:
//   - 202 Accepted → Originate (AMI action sent) latency, p50/p99, for
//     fax-ready TIFFs (target p99 < 100 ms);
//   - the gap between a line's hangup and its next dial (target < 1 s);
//   - the makespan of 40 sparse one-page faxes to 107 (a fax server that
//     takes 4 calls at once; destination rule max_concurrent 4) over a
//     trunk limited to 4 channels, against the ideal (sum of the fax
//     durations / 4; target ≤ 1.05×).
func BenchmarkRealAsterisk(b *testing.B) {
	testkit.Require(b, "gs", "tiff2pdf", "debootstrap")
	data := b.TempDir()
	ctx := context.Background()
	l, err := lab.Up(ctx, lab.Options{Name: "bench", BasePort: 27060, Share: []string{data}, Channels: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Down()
	cfg := l.FaxboxConfig(config.Default())
	cfg.DataDir = data
	cfg.Tokens = []string{token}
	cfg.Destinations = []destctl.Rule{{Prefix: "107", MaxConcurrent: 4}}
	bx, err := box.Open(ctx, cfg, box.Options{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer bx.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go bx.Serve(sctx, ln)
	c := &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}

	// Line events give dial and idle times per line.
	sub := bx.Bus.Subscribe(100000)
	type stamp struct {
		at    time.Time
		state string
		job   string
		line  string
	}
	var mu sync.Mutex
	var stamps []stamp
	go func() {
		for e := range sub.C {
			if ls, ok := e.Value.(dialler.LineState); ok && e.Type == events.LineChanged {
				mu.Lock()
				stamps = append(stamps, stamp{e.At, string(ls.State), ls.JobID, ls.ID().String()})
				mu.Unlock()
			}
		}
	}()
	tif := testkit.FaxTIFF(b, 1)
	// 202 → Originate with the line free: 20 jobs to the busy number, one
	// after the other (each ends in ~10 ms, so the line is free again).
	var acc []time.Duration
	for i := 0; i < 20; i++ {
		var j job.Job
		c.Submit(b, "/v1/faxes", &j, testkit.File("file", "a.tif", tif), testkit.Field("header", ""), testkit.Field("resolution", "standard"), testkit.Field("page_size", "letter"),
			testkit.Field("to", "102"), testkit.Field("max_attempts", "1"))
		t0 := time.Now()
		for {
			var g job.Job
			c.Do(b, "GET", "/v1/faxes/"+j.ID, nil, "", &g)
			if g.Status.Terminal() {
				acc = append(acc, g.Attempts[0].StartedAt.Sub(g.CreatedAt))
				break
			}
			if time.Since(t0) > time.Minute {
				b.Fatalf("busy job %s: %s", j.ID, g.Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	sort.Slice(acc, func(i, j int) bool { return acc[i] < acc[j] })
	n := 40
	if v := os.Getenv("FAXBOX_BENCH_FAXES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	accepted := map[string]time.Time{}
	start := time.Now()
	var ids []string
	for i := 0; i < n; i++ {
		var j job.Job
		r := c.Submit(b, "/v1/faxes", &j, testkit.File("file", "a.tif", tif), testkit.Field("header", ""), testkit.Field("resolution", "standard"), testkit.Field("to", "107"))
		if r.StatusCode != 202 {
			b.Fatalf("submit %d: %d", i, r.StatusCode)
		}
		accepted[j.ID] = time.Now()
		ids = append(ids, j.ID)
	}
	var sum time.Duration
	attempts, busies := 0, 0
	for _, id := range ids {
		var j job.Job
		for deadline := time.Now().Add(15 * time.Minute); ; {
			c.Do(b, "GET", "/v1/faxes/"+id, nil, "", &j)
			if j.Status.Terminal() {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("job %s still %s", id, j.Status)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if j.Status != job.Delivered {
			b.Fatalf("job %s: %s %+v", id, j.Status, j.Error)
		}
		a := j.LastAttempt()
		sum += a.EndedAt.Sub(a.StartedAt)
		attempts += len(j.Attempts)
		busies += countBusy(&j)
	}
	makespan := time.Since(start)
	ideal := sum / 4
	mu.Lock()
	var dialLat []time.Duration
	var gaps []time.Duration
	lastIdle := map[string]time.Time{}
	for _, s := range stamps {
		switch s.state {
		case "dialing":
			if t0, ok := accepted[s.job]; ok {
				dialLat = append(dialLat, s.at.Sub(t0))
				delete(accepted, s.job)
			}
			if t0, ok := lastIdle[s.line]; ok {
				gaps = append(gaps, s.at.Sub(t0))
			}
		case "idle":
			lastIdle[s.line] = s.at
		}
	}
	mu.Unlock()
	sort.Slice(dialLat, func(i, j int) bool { return dialLat[i] < dialLat[j] })
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	b.ReportMetric(float64(testkit.Percentile(acc, 50).Microseconds())/1000, "accept-to-dial-p50-ms")
	b.ReportMetric(float64(testkit.Percentile(acc, 99).Microseconds())/1000, "accept-to-dial-p99-ms")
	b.ReportMetric(float64(testkit.Percentile(gaps, 99).Microseconds())/1000, "hangup-to-next-dial-p99-ms")
	b.ReportMetric(makespan.Seconds()/ideal.Seconds(), "makespan/ideal")
	b.ReportMetric(float64(attempts), "attempts-to-107")
	b.ReportMetric(float64(busies), "busy-answers-107")
	b.Logf("202 → Originate (line free, fax-ready TIFF): p50 %s, p99 %s (target p99 < 100 ms); hangup → next dial: p50 %s, p99 %s (target < 1 s); %d faxes to 107 (max_concurrent 4) on 4 channels: makespan %s, ideal %s (sum of fax durations / 4), ratio %.3f (target ≤ 1.05), %d attempts (target %d), %d busy (target 0)",
		testkit.Percentile(acc, 50), testkit.Percentile(acc, 99), testkit.Percentile(gaps, 50), testkit.Percentile(gaps, 99), n, makespan.Round(time.Second), ideal.Round(time.Second), makespan.Seconds()/ideal.Seconds(), attempts, n, busies)
	if attempts != n || busies != 0 {
		b.Errorf("%d attempts and %d busy answers for %d faxes to 107 with max_concurrent 4; want exactly %d and 0", attempts, busies, n, n)
	}
	_ = dialLat
}
