package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/internal/testkit"
)

// BenchmarkStartupAndRSS100k stores 100,000 finished jobs (plus 100 waiting
// ones), then starts the real faxbox binary on that data directory and
// reports the time to ready (first /healthz answer) and the resident memory
// after serving status and list requests. Targets: < 1 s, < 40 MB.
func BenchmarkStartupAndRSS100k(b *testing.B) {
	data := b.TempDir()
	st, err := store.Open(data, store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	const total, waiting = 100_000, 100
	var batch []*store.Record
	for i := 0; i < total; i++ {
		j := &job.Job{ID: fmt.Sprintf("fx_%08d", i), Kind: job.KindFax, To: "99990001", Status: job.Delivered,
			Pages: 2, PagesConfirmed: 2, MaxAttempts: 3, CreatedAt: now, UpdatedAt: now, ExpireAt: now.Add(24 * time.Hour),
			CallbackURL: "http://127.0.0.1:9/hook", ClientRef: "ref-" + strconv.Itoa(i),
			Files:    []job.File{{Name: "letter.pdf", Type: "pdf", Size: 10240, SHA256: strings.Repeat("a", 64)}},
			Attempts: []job.Attempt{{ID: "at_" + strconv.Itoa(i), N: 1, Line: job.LineID{Group: "test", N: 1}, StartedAt: now, Result: "delivered", FirstPage: 1, PagesSent: 2, Transport: "test"}}}
		if i >= total-waiting {
			j.Status = job.RetryWait
			next := now.Add(time.Hour)
			j.NextAttemptAt = &next
			j.Pages, j.PagesConfirmed = 2, 0
		}
		batch = append(batch, &store.Record{Job: j, Version: 1})
		if len(batch) == 5000 || i == total-1 {
			if err := st.CreateMany(batch); err != nil {
				b.Fatal(err)
			}
			batch = nil
		}
	}
	size := st.Size()
	st.Close()
	bin := buildFaxbox(b)
	for i := 0; i < b.N; i++ {
		addr := freeAddrB(b)
		p := startProcB(b, bin, "serve", "-data", data, "-listen", addr, "-token", "bench-token-1")
		ready := waitHealthyB(b, "http://"+addr)
		c := &testkit.Client{Base: "http://" + addr, Token: "bench-token-1"}
		for k := 0; k < 20; k++ {
			c.Do(b, "GET", "/v1/status", nil, "", nil)
			c.Do(b, "GET", "/v1/faxes?limit=100", nil, "", nil)
		}
		rss := rssKB(p.Process.Pid)
		p.Process.Kill()
		p.Wait()
		b.ReportMetric(float64(ready.Milliseconds()), "ms-to-ready")
		b.ReportMetric(float64(rss)/1024, "MB-RSS")
		b.Logf("100,000 stored jobs (db %d MB): ready in %s, RSS %.1f MB (targets < 1 s, < 40 MB)", size>>20, ready.Round(time.Millisecond), float64(rss)/1024)
	}
}

func rssKB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}
