//go:build lab

package asterisk_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net"
	"os/exec"
	"slices"
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

// startThroughputEnv is a box on the real lab with 8 trunk channels and
// destination rules for the remote's 107 (a fax server taking 4 calls at
// once, told to the box as 8 so that it must learn the 4), 108 (a one-line
// machine, batches of up to 10) and 105 (hangs up after a call's first
// page; batches of up to 3).
func startThroughputEnv(t *testing.T, base int) *env {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf", "tiffinfo", "debootstrap")
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Name: "thru", BasePort: base, Share: []string{data}, Channels: 8, Log: testWriter{t}})
	if err != nil {
		t.Fatalf("the Asterisk lab did not come up: %v", err)
	}
	t.Cleanup(l.Down)
	cfg := l.FaxboxConfig(config.Default())
	cfg.DataDir, cfg.Tokens, cfg.StationID = data, []string{token}, "FAXBOX LAB"
	cfg.Destinations = []destctl.Rule{
		{Prefix: "107", MaxConcurrent: 8, RetryWaits: map[failure.Code]job.Duration{failure.LineBusy: job.Duration(2 * time.Second)}},
		{Prefix: "108", MaxBatch: 10, BatchWait: job.Duration(5 * time.Second)},
		{Prefix: "105", MaxBatch: 3, BatchWait: job.Duration(5 * time.Second)},
	}
	b, err := box.Open(ctx, cfg, box.Options{Version: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(sctx, ln); close(done) }()
	t.Cleanup(func() { scancel(); <-done; b.Close() })
	return &env{l: l, box: b, c: &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}}
}

// TestThroughputOnRealLab: jobs to one number go out as fast as that number
// takes them. Ten one-page faxes to 108 (one line, max_batch 10) go in one
// call carrying all ten documents; twelve to 107 (a server taking 4 calls at
// once, configured as 8) are sent four at a time once the box has learned
// the 4 from its busy answers, within 1.5 times the ideal makespan.
func TestThroughputOnRealLab(t *testing.T) {
	e := startThroughputEnv(t, 37060)
	t.Run("batch to a one-line machine", func(t *testing.T) {
		t.Parallel()
		before, _ := e.l.Calls("108")
		hooks := testkit.NewReceiver(t)
		var jobs []*job.Job
		for range 10 {
			jobs = append(jobs, e.submit(t, 1, testkit.Field("to", "108"), testkit.Field("callback_url", hooks.URL+"/hook")))
		}
		call := ""
		var firstT38 *job.T38Report
		for i, j := range jobs {
			got := e.wait(t, j.ID, job.Delivered, 5*time.Minute)
			a := got.Attempts[len(got.Attempts)-1]
			if call == "" {
				call = a.Call
			}
			if len(got.Attempts) != 1 || a.Call == "" || a.Call != call || a.PagesSent != 1 || a.Transport != "t38" {
				t.Errorf("job %d: %d attempts, call %q (first %q), pages %d, transport %s", i, len(got.Attempts), a.Call, call, a.PagesSent, a.Transport)
			}
			// Each job's attempt carries the shared call's media report:
			// its UDPTL streams, the same for all ten.
			if m := a.Media; m == nil || m.T38 == nil || m.T38.Sent.Packets == 0 || m.T38.Received.Packets == 0 {
				t.Errorf("job %d: no media report of the call's UDPTL streams: %+v", i, m)
			} else if firstT38 == nil {
				firstT38 = m.T38
			} else if *firstT38 != *m.T38 {
				t.Errorf("job %d's media report differs from the first job's in the same call: %+v vs %+v", i, *m.T38, *firstT38)
			}
		}
		after, _ := e.l.Calls("108")
		if after-before != 1 {
			t.Fatalf("108 was called %d times for 10 jobs with max_batch 10; want one call", after-before)
		}
		files := e.l.ReceivedFiles("108")
		if len(files) != 1 {
			t.Fatalf("108 received %d files, want one holding all pages", len(files))
		}
		out, err := exec.Command("tiffinfo", files[0]).CombinedOutput()
		if n := strings.Count(string(out), "TIFF Directory"); err != nil || n != 10 {
			t.Fatalf("the received fax has %d pages (%v), want 10 (one per job)", n, err)
		}
		// Each job of the shared call has its own webhook: one
		// fax.delivered with its own id and page count, nothing else.
		hooks.Wait(t, time.Minute, "a fax.delivered per job", func(hs []testkit.Hook) bool { return len(hs) >= len(jobs) })
		time.Sleep(2 * time.Second) // room for a duplicate to show
		hs := hooks.Hooks()
		deliveries := map[string]bool{}
		for _, h := range hs {
			deliveries[h.Header.Get("X-Faxbox-Delivery")] = true
		}
		if len(hs) != len(jobs) || len(deliveries) != len(jobs) {
			t.Errorf("%d webhooks (%d delivery ids) for %d jobs; want one each", len(hs), len(deliveries), len(jobs))
		}
		for i, j := range jobs {
			evs := testkit.Events(hs, j.ID)
			if len(evs) != 1 || evs[0].Event != "fax.delivered" || evs[0].Job.Pages != 1 || evs[0].Job.PagesConfirmed != 1 || evs[0].Job.Status != "delivered" {
				t.Errorf("job %d (%s) webhooks: %+v; want one fax.delivered of its 1 page", i, j.ID, evs)
			}
		}
	})
	t.Run("batch broken by 105 resumes the right jobs", func(t *testing.T) {
		t.Parallel()
		testBrokenBatch(t, e)
	})
	t.Run("learned capacity of a fax server", func(t *testing.T) {
		t.Parallel()
		const n = 12
		start := time.Now()
		var ids []string
		for range n {
			ids = append(ids, e.submit(t, 1, testkit.Field("to", "107")).ID)
		}
		var got []*job.Job
		for _, id := range ids { // the box sends them all at once; this waits for the last
			got = append(got, e.wait(t, id, job.Delivered, 8*time.Minute))
		}
		makespan := time.Since(start)
		busies, fax := 0, time.Duration(0)
		for _, j := range got {
			for _, a := range j.Attempts {
				if a.Error != nil && a.Error.Code == failure.LineBusy {
					busies++
				}
			}
			a := j.Attempts[len(j.Attempts)-1]
			fax += a.EndedAt.Sub(a.StartedAt)
		}
		mean := fax / n
		ideal := time.Duration(math.Ceil(n/4.0)) * mean
		ratio := float64(makespan) / float64(ideal)
		t.Logf("12 faxes to a 4-call server on 8 channels: makespan %s, ideal %s (3 rounds of %s), ratio %.2f, %d busy answers",
			makespan.Round(time.Second), ideal.Round(time.Second), mean.Round(time.Second), ratio, busies)
		if busies > 6 {
			t.Errorf("%d busy answers: the box kept dialling into the busy tone instead of learning the server's 4", busies)
		}
		var st struct {
			Destinations []struct {
				Number string
				Limit  int
			}
		}
		e.c.Do(t, "GET", "/v1/status", nil, "", &st)
		capped := false
		for _, d := range st.Destinations {
			capped = capped || (d.Number == "107" && d.Limit == 4)
		}
		if !capped {
			t.Errorf("status destinations %+v; want 107 capped at 4", st.Destinations)
		}
		if ratio > 1.5 {
			t.Errorf("makespan %s is %.2f times the ideal %s", makespan, ratio, ideal)
		}
	})
}

// callLeg is one job's attempt in a call.
type callLeg struct {
	job string
	a   job.Attempt
}

// testBrokenBatch sends three two-page jobs to 105 in batches of up to 3.
// 105 hangs up after the first page of a call the first time it sees the
// call's caller id name, which is the job id for a call of one job and the
// call's own id (new for every call) for a batch: every batch call to it
// breaks after its first page. So the first call (x1 x2 y1 y2 z1 z2) breaks
// with x's first page confirmed and nothing of y's and z's; x resumes from
// its page 2 and y and z from their first, in the next call, and so on.
// Checked, whatever page the far end hung up in: each job is delivered
// once, with one fax.delivered webhook of its own (its id, its 2 pages) and
// one fax.attempt_failed per broken attempt; no page of a job goes in two
// attempts that both count it (each attempt starts at the first page the
// earlier ones did not confirm); every call carries exactly the jobs not
// yet delivered, in order, each at the page offset the jobs before it take.
func testBrokenBatch(t *testing.T, e *env) {
	hooks := testkit.NewReceiver(t)
	var ids []string
	for range 3 {
		j := e.submit(t, 2, testkit.Field("to", "105"), testkit.Field("max_attempts", "10"),
			testkit.Field("retry_interval", "2s"), testkit.Field("callback_url", hooks.URL+"/hook"))
		ids = append(ids, j.ID)
	}
	jobs := map[string]*job.Job{}
	for _, id := range ids {
		jobs[id] = e.wait(t, id, job.Delivered, 10*time.Minute)
	}
	calls := map[string][]callLeg{}
	for _, id := range ids {
		j := jobs[id]
		checkResumeChain(t, j)
		for _, a := range j.Attempts {
			key := a.Call
			if key == "" {
				key = a.ID
			}
			calls[key] = append(calls[key], callLeg{job: id, a: a})
		}
	}
	order := slices.Collect(maps.Keys(calls))
	slices.SortFunc(order, func(a, b string) int { return calls[a][0].a.StartedAt.Compare(calls[b][0].a.StartedAt) })
	pending := slices.Clone(ids)
	for n, key := range order {
		legs := calls[key]
		slices.SortFunc(legs, func(a, b callLeg) int { return a.a.CallOffset - b.a.CallOffset })
		var in, desc []string
		offset := 0
		for _, l := range legs {
			in = append(in, l.job)
			desc = append(desc, fmt.Sprintf("%s p%d-%d confirmed %d", l.job[len(l.job)-4:], l.a.FirstPage, jobs[l.job].Pages, l.a.PagesSent))
			if len(legs) > 1 && l.a.CallOffset != offset {
				t.Errorf("call %d: job %s at page offset %d, want %d (the pages of the jobs before it)", n+1, l.job, l.a.CallOffset, offset)
			}
			offset += jobs[l.job].Pages - l.a.FirstPage + 1
		}
		t.Logf("call %d: %s", n+1, strings.Join(desc, ", "))
		if !slices.Equal(in, pending) {
			t.Fatalf("call %d carried %v; want the jobs not yet delivered, in order: %v", n+1, in, pending)
		}
		for _, l := range legs {
			if l.a.Result == job.AttemptDelivered {
				pending = slices.DeleteFunc(pending, func(id string) bool { return id == l.job })
			}
		}
		if n == 0 && len(pending) == 0 {
			t.Fatalf("105 did not break the first call: all three jobs were delivered in it")
		}
	}
	if len(pending) != 0 {
		t.Fatalf("jobs %v were never delivered in a call", pending)
	}
	checkOwnWebhooks(t, hooks, ids, jobs)
}

// checkOwnWebhooks checks that each job got its own webhooks: one
// fax.delivered with its 2 pages and one fax.attempt_failed per earlier
// attempt, nothing else, and nothing for another job's attempts.
func checkOwnWebhooks(t *testing.T, hooks *testkit.Receiver, ids []string, jobs map[string]*job.Job) {
	t.Helper()
	want := 0
	for _, id := range ids {
		want += len(jobs[id].Attempts)
	}
	hooks.Wait(t, time.Minute, "every job's webhooks", func(hs []testkit.Hook) bool { return len(hs) >= want })
	time.Sleep(2 * time.Second) // room for a duplicate to show
	hs := hooks.Hooks()
	if len(hs) != want {
		t.Errorf("%d webhooks; want %d (one per attempt of each job)", len(hs), want)
	}
	for _, id := range ids {
		j := jobs[id]
		delivered, failed := 0, 0
		for _, ev := range testkit.Events(hs, id) {
			switch ev.Event {
			case "fax.delivered":
				delivered++
				if ev.Job.Pages != 2 || ev.Job.PagesConfirmed != 2 {
					t.Errorf("job %s: fax.delivered with pages %d, confirmed %d; want its own 2", id, ev.Job.Pages, ev.Job.PagesConfirmed)
				}
			case "fax.attempt_failed":
				failed++
			default:
				t.Errorf("job %s: webhook %s", id, ev.Event)
			}
		}
		if delivered != 1 || failed != len(j.Attempts)-1 {
			t.Errorf("job %s: %d fax.delivered, %d fax.attempt_failed for %d attempts; want 1 and %d", id, delivered, failed, len(j.Attempts), len(j.Attempts)-1)
		}
	}
}

// checkResumeChain checks that j's attempts resumed where the earlier ones
// stopped: the first at page 1, each next one at the first page not yet
// confirmed, every attempt but the last failed, the last delivered, and the
// pages confirmed adding up to the job's pages.
func checkResumeChain(t *testing.T, j *job.Job) {
	t.Helper()
	next, sent := 1, 0
	for i, a := range j.Attempts {
		last := i == len(j.Attempts)-1
		if a.FirstPage != next {
			t.Errorf("job %s attempt %d starts at page %d; want %d (the first unconfirmed)", j.ID, i+1, a.FirstPage, next)
		}
		if last != (a.Result == job.AttemptDelivered) {
			t.Errorf("job %s attempt %d of %d: result %s", j.ID, i+1, len(j.Attempts), a.Result)
		}
		next += a.PagesSent
		sent += a.PagesSent
	}
	if sent != j.Pages || j.PagesConfirmed != j.Pages || j.Pages != 2 {
		t.Errorf("job %s: %d pages confirmed over its attempts, %d/%d recorded; want 2", j.ID, sent, j.PagesConfirmed, j.Pages)
	}
}
