package store

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	bolt "go.etcd.io/bbolt"
)

// Listing one kind with since must not stop at an older job of another kind:
// call ids (cl_) sort before fax ids (fx_) whatever their age.
func TestListSinceByKindAcrossKinds(t *testing.T) {
	s := open(t, t.TempDir())
	t0 := time.Now().Add(-time.Hour)
	oldFax := rec(job.NewFaxID(), "", t0)
	call := rec(job.NewCallID(), "", t0.Add(30*time.Minute))
	call.Job.Kind = job.KindCall
	call.Job.Status = job.Failed
	newFax := rec(job.NewFaxID(), "", t0.Add(40*time.Minute))
	for _, r := range []*Record{oldFax, call, newFax} {
		if _, err := s.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	since := t0.Add(10 * time.Minute)
	calls, _, err := s.List(Filter{Kind: job.KindCall, Since: since, Limit: 10})
	if err != nil || len(calls) != 1 || calls[0].ID != call.Job.ID {
		t.Fatalf("calls since: %v %v; want the one call", ids(calls), err)
	}
	failed, _, _ := s.List(Filter{Kind: job.KindCall, Status: job.Failed, Since: since, Limit: 10})
	if len(failed) != 1 {
		t.Fatalf("failed calls since: %v", ids(failed))
	}
	faxes, _, _ := s.List(Filter{Kind: job.KindFax, Since: since, Limit: 10})
	if len(faxes) != 1 || faxes[0].ID != newFax.Job.ID {
		t.Fatalf("faxes since: %v; want only the new fax", ids(faxes))
	}
	all, _, _ := s.List(Filter{Since: since, Limit: 10})
	if len(all) != 2 {
		t.Fatalf("all kinds since: %v; want the call and the new fax", ids(all))
	}
}

func ids(js []*job.Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

// Arrival order (Seq) survives a restart, so equal-priority jobs keep their
// order.
func TestSeqSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"fx_b", "fx_a", "fx_c"} {
		if _, err := s.Create(rec(id, "", time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, dir)
	act, err := s.Active()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, r := range act {
		got[r.Job.ID] = r.Job.Seq
	}
	if got["fx_b"] != 1 || got["fx_a"] != 2 || got["fx_c"] != 3 {
		t.Fatalf("seq after reopen: %v; want fx_b=1 fx_a=2 fx_c=3", got)
	}
	r, _ := s.Get("fx_a")
	if r.Job.Seq != 2 {
		t.Fatalf("Get: seq %d, want 2", r.Job.Seq)
	}
}

// Purge and Reopen exclude each other: a purged job cannot be reopened, and
// a reopened job's documents are not purged.
func TestPurgeAndReopenExclude(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	t0 := time.Now()
	mk := func(id string) *Record {
		if _, _, err := s.WriteDocument(id, "in-00.pdf", strings.NewReader("%PDF-1.4"), 100); err != nil {
			t.Fatal(err)
		}
		r := rec(id, "", t0)
		s.Create(r)
		r.Job.Status = job.Failed
		r.Job.CompletedAt = &t0
		r.Version++
		if err := s.Put(r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	mk("fx_purged")
	mk("fx_reopened")
	reopen := func(j *job.Job) error { j.Status = job.Ready; return nil }
	if _, err := s.Reopen("fx_reopened", reopen); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(t0.Add(2 * time.Hour)); n != 1 || err != nil {
		t.Fatalf("purge: %d %v; want only the failed job purged", n, err)
	}
	if _, err := os.Stat(s.DocDir("fx_reopened")); err != nil {
		t.Fatalf("the reopened job's documents were purged: %v", err)
	}
	if _, err := s.Reopen("fx_purged", reopen); !errors.Is(err, ErrPurged) {
		t.Fatalf("reopen after purge: %v; want ErrPurged", err)
	}
	if r, _ := s.Get("fx_purged"); r.Job.Status != job.Failed || !r.Job.Purged {
		t.Fatalf("purged job after a refused reopen: %+v", r.Job)
	}
	// A check refusing the reopen aborts it.
	no := errors.New("no")
	if _, err := s.Reopen("fx_reopened", func(*job.Job) error { return no }); !errors.Is(err, no) {
		t.Fatalf("refused reopen: %v", err)
	}
}

// Check finds every broken invariant between the buckets.
func TestCheckFindsInconsistencies(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := rec("fx_1", "ref1", time.Now())
	s.Create(r)
	if err := s.Check(); err != nil {
		t.Fatalf("a consistent store: %v", err)
	}
	s.db.Update(func(tx *bolt.Tx) error {
		tx.Bucket(bActive).Delete([]byte("fx_1"))
		tx.Bucket(bActive).Put([]byte("fx_gone"), []byte("queued"))
		tx.Bucket(bRefs).Put(refKey(job.KindFax, "dangling"), []byte("fx_gone"))
		tx.Bucket(bOutbox).Put([]byte("dl_1"), []byte(`{"id":"dl_1","job_id":"fx_gone"}`))
		tx.Bucket(bPurge).Put(purgeKey(time.Now(), "fx_gone"), nil)
		return nil
	})
	err = s.Check()
	if !errors.Is(err, ErrInconsistent) {
		t.Fatalf("check: %v", err)
	}
	for _, want := range []string{"fx_1 is queued but not in the active index", "active index names missing job fx_gone",
		`client_ref "fax\x00dangling"`, "outbox entry dl_1 names missing job fx_gone", "purge entry"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("check did not report %q:\n%v", want, err)
		}
	}
}

// Every save checks the lifecycle table: a delivered job never becomes
// active again, whoever writes it; PutMany skips such a change (keeping its
// deliveries) and reports it.
func TestPutEnforcesTransitions(t *testing.T) {
	s := open(t, t.TempDir())
	r := rec("fx_1", "", time.Now())
	r.Job.Status = job.Sending
	s.Create(r)
	r.Job.Status = job.Delivered
	r.Version++
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	r.Job.Status = job.Dialing
	r.Version++
	if err := s.Put(r); !errors.Is(err, job.ErrTransition) {
		t.Fatalf("delivered → dialing: %v", err)
	}
	skipped, err := s.PutMany([]Write{{Record: r, Deliveries: []*Delivery{{ID: "dl_x", JobID: "fx_1"}}}})
	if err != nil || len(skipped) != 1 || !errors.Is(skipped[0], job.ErrTransition) {
		t.Fatalf("PutMany: %v %v", skipped, err)
	}
	if got, _ := s.Get("fx_1"); got.Job.Status != job.Delivered {
		t.Fatalf("stored status %s", got.Job.Status)
	}
	if ob, _ := s.Outbox(); len(ob) != 1 {
		t.Fatalf("outbox %d; the skipped change's delivery is kept", len(ob))
	}
}
