//go:build lab

package asterisk_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/destctl"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

// benchChannels is the trunk's size in BenchmarkThroughput.
const benchChannels = 4

// BenchmarkThroughput measures on the real lab, in one run, one box after
// the other on one lab (4 trunk channels):
//   - n one-page faxes to 108 (a one-line machine, busy while in a call)
//     without batching and with max_batch 10: makespans side by side and
//     their ratio (target ≤ 0.5), busy answers (target 0);
//   - mixed: n one-page faxes spread over 100, 101 and 107 (107 a server
//     taking 4 calls, rule max_concurrent 4) plus n/4 to 102 (busy) and 103
//     (no answer) with max_attempts 3: the channel-seconds a line stood
//     idle while a job that could have been dialled waited (ready, its
//     number under its limit), as a share of the makespan (target < 2%),
//     and the attempts started over a number's limit or over the trunk's
//     channels (target 0).
//
// n is 40, or FAXBOX_BENCH_FAXES for a quicker run.
func BenchmarkThroughput(b *testing.B) {
	testkit.Require(b, "gs", "tiff2pdf", "debootstrap")
	n := benchFaxes(40)
	dirs := []string{b.TempDir(), b.TempDir(), b.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	l, err := lab.Up(ctx, lab.Options{Name: "tbench", BasePort: 41060, Share: dirs, Channels: benchChannels})
	cancel()
	if err != nil {
		b.Fatalf("the Asterisk lab did not come up: %v", err)
	}
	defer l.Down()
	tif := testkit.FaxTIFF(b, 1)

	single := runFaxes(b, l, dirs[0], []destctl.Rule{{Prefix: "108"}}, nil, spread(n, "108"), tif, "5m")
	batched := runFaxes(b, l, dirs[1], []destctl.Rule{{Prefix: "108", MaxBatch: 10, BatchWait: job.Duration(2 * time.Second)}}, nil, spread(n, "108"), tif, "5m")
	ratio := batched.makespan.Seconds() / single.makespan.Seconds()

	mixedRules := []destctl.Rule{{Prefix: "107", MaxConcurrent: 4}}
	limit := func(num string) int {
		if num == "107" {
			return 4
		}
		return 1
	}
	failing := spread(n/4, "102", "103")
	mixed := runFaxes(b, l, dirs[2], mixedRules, func(c *config.Config) {
		c.LineGroups[0].RingTimeout = job.Duration(15 * time.Second)
	}, append(spread(n, "100", "101", "107"), failing...), tif, "5s")
	use := lineUsage(mixed.jobs, benchChannels, limit)
	idleShare := use.idle.Seconds() / mixed.makespan.Seconds()

	b.ReportMetric(single.makespan.Seconds(), "108-unbatched-s")
	b.ReportMetric(batched.makespan.Seconds(), "108-batched-s")
	b.ReportMetric(ratio, "108-batched/unbatched")
	b.ReportMetric(float64(single.busy+batched.busy), "108-busy-answers")
	b.ReportMetric(mixed.makespan.Seconds(), "mixed-makespan-s")
	b.ReportMetric(use.idle.Seconds(), "mixed-idle-while-dialable-s")
	b.ReportMetric(100*idleShare, "mixed-idle-%-of-makespan")
	b.ReportMetric(float64(use.overLimit+use.overChannels), "mixed-attempts-over-limit")
	var t strings.Builder
	fmt.Fprintf(&t, "\n| benchmark | result | target |\n|---|---|---|\n")
	fmt.Fprintf(&t, "| %d one-page faxes to 108, unbatched vs max_batch 10 | %s vs %s (%d vs %d calls): ratio %.2f; %d busy answers | ≤ 0.5; 0 busy |\n",
		n, single.makespan.Round(time.Second), batched.makespan.Round(time.Second), single.calls, batched.calls, ratio, single.busy+batched.busy)
	fmt.Fprintf(&t, "| mixed: %d faxes over 100/101/107 + %d to 102/103 (max_attempts 3), %d channels | makespan %s, %d attempts (%d delivered, %d failed); idle channel-seconds while a dialable job waited %.1f s = %.2f%% of the makespan; %d attempts over a number's limit, %d over the channels | < 2%%; 0 |\n",
		n, len(failing), benchChannels, mixed.makespan.Round(time.Second), mixed.attempts, mixed.delivered, mixed.failed, use.idle.Seconds(), 100*idleShare, use.overLimit, use.overChannels)
	b.Log(t.String())
	if single.busy+batched.busy != 0 || use.overLimit+use.overChannels != 0 {
		b.Errorf("108: %d busy answers; mixed: %d attempts over a number's limit, %d over the channels; want none", single.busy+batched.busy, use.overLimit, use.overChannels)
	}
	if want := n + len(failing)*3; mixed.delivered != n || mixed.attempts != want {
		b.Errorf("mixed: %d delivered in %d attempts; want %d delivered in %d (each failing job 3 attempts)", mixed.delivered, mixed.attempts, n, want)
	}
}

// benchFaxes is def, or FAXBOX_BENCH_FAXES when set.
func benchFaxes(def int) int {
	if v, err := strconv.Atoi(os.Getenv("FAXBOX_BENCH_FAXES")); err == nil && v > 0 {
		return v
	}
	return def
}

// spread is n numbers taken from nums in turn.
func spread(n int, nums ...string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = nums[i%len(nums)]
	}
	return out
}

// runResult is what one box did with its faxes.
type runResult struct {
	jobs              []*job.Job
	makespan          time.Duration // first submission → last job ended
	attempts, busy    int
	calls             int // distinct calls (a batch is one)
	delivered, failed int
}

// runFaxes opens a box on l with data directory data and the destination
// rules, submits a one-page fax-ready TIFF to each number of to (max_attempts
// 3, retry_interval retry), waits until every job has ended and closes the
// box.
func runFaxes(b *testing.B, l *lab.Lab, data string, rules []destctl.Rule, tune func(*config.Config), to []string, tif []byte, retry string) runResult {
	b.Helper()
	cfg := l.FaxboxConfig(config.Default())
	cfg.DataDir, cfg.Tokens, cfg.Destinations = data, []string{token}, rules
	if tune != nil {
		tune(&cfg)
	}
	ctx := context.Background()
	bx, err := box.Open(ctx, cfg, box.Options{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer bx.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { bx.Serve(sctx, ln); close(done) }()
	defer func() { cancel(); <-done }()
	c := &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}

	start := time.Now()
	var ids []string
	for i, num := range to {
		var j job.Job
		r := c.Submit(b, "/v1/faxes", &j, testkit.File("file", "a.tif", tif), testkit.Field("header", ""), testkit.Field("resolution", "standard"),
			testkit.Field("page_size", "letter"), testkit.Field("to", num), testkit.Field("max_attempts", "3"), testkit.Field("retry_interval", retry))
		if r.StatusCode != 202 {
			b.Fatalf("submit %d to %s: HTTP %d", i, num, r.StatusCode)
		}
		ids = append(ids, j.ID)
	}
	var res runResult
	calls := map[string]bool{}
	end := start
	for _, id := range ids {
		var j job.Job
		for deadline := time.Now().Add(30 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
			c.Do(b, "GET", "/v1/faxes/"+id, nil, "", &j)
			if j.Status.Terminal() {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("job %s to %s still %s", id, j.To, j.Status)
			}
		}
		switch j.Status {
		case job.Delivered:
			res.delivered++
		case job.Failed:
			res.failed++
		}
		if j.CompletedAt != nil && j.CompletedAt.After(end) {
			end = *j.CompletedAt
		}
		res.attempts += len(j.Attempts)
		res.busy += countBusy(&j)
		for _, a := range j.Attempts {
			calls[cmpOr(a.Call, a.ID)] = true
		}
		res.jobs = append(res.jobs, &j)
	}
	res.makespan, res.calls = end.Sub(start), len(calls)
	return res
}

// countBusy is how many of j's attempts were answered busy.
func countBusy(j *job.Job) int {
	n := 0
	for _, a := range j.Attempts {
		if a.Error != nil && a.Error.Code == failure.LineBusy {
			n++
		}
	}
	return n
}
