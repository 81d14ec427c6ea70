package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// createPerJob is the durable create as it was before group commit, for
// comparison: each job fsyncs its file, its directory and the documents
// directory, then commits its record with bbolt's Batch (which waits up to
// MaxBatchDelay, 10 ms, for more callers).
func createPerJob(s *DB, r *Record) error {
	dir := s.DocDir(r.Job.ID)
	for _, path := range []string{filepath.Join(dir, r.Paths[0]), dir, s.docs} {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	p := &pending{r: r}
	return s.db.Batch(func(tx *bolt.Tx) error { return s.createTx(tx, p) })
}

// enqueueRound submits n jobs with a 2 KB document each from `workers`
// goroutines through create, on a fresh data directory, and returns the
// throughput and the sorted latencies.
func enqueueRound(b *testing.B, n, workers int, create func(*DB, *Record) error) (float64, []time.Duration) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	doc := bytes.Repeat([]byte("%PDF-1.4 enqueue benchmark\n"), 2048/27)
	next := make(chan int)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				id := fmt.Sprintf("fx_%05d", i)
				if _, _, err := s.WriteDocument(id, "in-00.pdf", bytes.NewReader(doc), 1<<20); err != nil {
					b.Error(err)
					continue
				}
				r := rec(id, "", t0)
				r.Paths = []string{"in-00.pdf"}
				if err := create(s, r); err != nil {
					b.Error(err)
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	el := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return float64(n) / el.Seconds(), lat
}

func pct(lat []time.Duration, p int) time.Duration {
	return lat[min(len(lat)-1, len(lat)*p/100)].Round(10 * time.Microsecond)
}

// BenchmarkCreateGroupCommit compares, side by side in one run, the durable
// create of a job with a 2 KB document from 8 submitters: group commit
// (WriteDocument + Create: one syncfs and one transaction per group) against
// the per-job path it replaced (fsync of the file and both directories, then
// bbolt's Batch). Rounds alternate so both see the same machine; it reports
// the median round of each and their throughput ratio.
func BenchmarkCreateGroupCommit(b *testing.B) {
	const rounds, n, workers = 5, 200, 8
	paths := []struct {
		name   string
		create func(*DB, *Record) error
	}{
		{"per-job", createPerJob},
		{"group", func(s *DB, r *Record) error { _, err := s.Create(r); return err }},
	}
	rate := make([][]float64, len(paths))
	lats := make([][]time.Duration, len(paths))
	for range b.N {
		for round := 0; round < rounds; round++ {
			for i, p := range paths {
				r, lat := enqueueRound(b, n, workers, p.create)
				rate[i] = append(rate[i], r)
				lats[i] = append(lats[i], lat...)
			}
		}
	}
	med := make([]float64, len(paths))
	for i, p := range paths {
		sort.Float64s(rate[i])
		med[i] = rate[i][len(rate[i])/2]
		sort.Slice(lats[i], func(x, y int) bool { return lats[i][x] < lats[i][y] })
		b.Logf("%-7s %4.0f jobs/s (median of %d rounds of %d jobs), p50 %s, p99 %s", p.name, med[i], len(rate[i]), n,
			pct(lats[i], 50), pct(lats[i], 99))
	}
	b.ReportMetric(med[0], "per-job-jobs/s")
	b.ReportMetric(med[1], "group-jobs/s")
	b.ReportMetric(med[1]/med[0], "ratio")
	b.Logf("group commit / per-job: %.2fx the throughput", med[1]/med[0])
}
