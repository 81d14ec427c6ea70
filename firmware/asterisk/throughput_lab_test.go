//go:build lab

package asterisk_test

import (
	"context"
	"math"
	"net"
	"os/exec"
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
// once, told to the box as 8 so that it must learn the 4) and 108 (a
// one-line machine, batches of up to 10).
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
		var jobs []*job.Job
		for range 10 {
			jobs = append(jobs, e.submit(t, 1, testkit.Field("to", "108")))
		}
		call := ""
		for i, j := range jobs {
			got := e.wait(t, j.ID, job.Delivered, 5*time.Minute)
			a := got.Attempts[len(got.Attempts)-1]
			if call == "" {
				call = a.Call
			}
			if len(got.Attempts) != 1 || a.Call == "" || a.Call != call || a.PagesSent != 1 || a.Transport != "t38" {
				t.Errorf("job %d: %d attempts, call %q (first %q), pages %d, transport %s", i, len(got.Attempts), a.Call, call, a.PagesSent, a.Transport)
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
		if len(st.Destinations) == 0 || st.Destinations[0].Number != "107" || st.Destinations[0].Limit != 4 {
			t.Errorf("status destinations %+v; want 107 capped at 4", st.Destinations)
		}
		if ratio > 1.5 {
			t.Errorf("makespan %s is %.2f times the ideal %s", makespan, ratio, ideal)
		}
	})
}
