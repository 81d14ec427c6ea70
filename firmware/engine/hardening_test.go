package engine

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
)

// A retention purge racing a retry by hand: either the purge wins (the retry
// is refused with ErrNoDocs) or the retry wins (the documents stay while the
// job is active). Never a job back in the queue without its documents.
func TestPurgeRacingRetry(t *testing.T) {
	h := start(t, t.TempDir(), 2)
	for i := 0; i < 40; i++ {
		id := fmt.Sprintf("fx_race%02d", i)
		h.submit(t, id, "99990006", 1, time.Second) // invalid number: fails at once
		h.wait(t, id, job.Failed)
		if err := h.st.SchedulePurge(id, time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var retryErr, purgeErr error
		wg.Add(2)
		go func() { defer wg.Done(); _, purgeErr = h.st.Purge(time.Now()) }()
		go func() { defer wg.Done(); _, retryErr = h.e.Retry(id) }()
		wg.Wait()
		if purgeErr != nil {
			t.Fatal(purgeErr)
		}
		switch {
		case retryErr == nil:
			j := h.wait(t, id, job.Failed) // the retry's dial fails again
			if j.Purged {
				t.Fatalf("%s: retried and purged", id)
			}
			if _, err := os.Stat(h.st.DocDir(id)); err != nil {
				t.Fatalf("%s: retried, but its documents were purged under it: %v", id, err)
			}
			if j.Error == nil || j.Error.Code != "line.invalid_number" {
				t.Fatalf("%s: retried job ended with %+v; want line.invalid_number", id, j.Error)
			}
		case errors.Is(retryErr, ErrNoDocs):
			r, _ := h.st.Get(id)
			if !r.Job.Purged || r.Job.Status != job.Failed {
				t.Fatalf("%s: retry refused but the job is %s purged=%v", id, r.Job.Status, r.Job.Purged)
			}
		default:
			t.Fatalf("%s: retry: %v", id, retryErr)
		}
	}
}
