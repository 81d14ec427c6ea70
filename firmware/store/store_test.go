package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
)

func open(t *testing.T, dir string) *DB {
	t.Helper()
	return openOpts(t, dir, Options{Timeout: 100 * time.Millisecond, Retention: time.Hour})
}

// openOpts opens dir with o and checks the database's consistency after the
// test.
func openOpts(t *testing.T, dir string, o Options) *DB {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if err := CheckDir(dir); err != nil {
			t.Errorf("after the test: %v", err)
		}
	})
	return s
}

func rec(id, ref string, at time.Time) *Record {
	return &Record{Job: &job.Job{ID: id, Kind: job.KindFax, ClientRef: ref, Status: job.Queued, CreatedAt: at, UpdatedAt: at}, Hash: "h-" + id}
}

func TestSecondInstanceIsRefused(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	_, err := Open(dir, Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second open: %v; want ErrLocked naming the directory", err)
	}
}

func TestCreateRefAndVersions(t *testing.T) {
	s := open(t, t.TempDir())
	t0 := time.Now()
	first := rec("fx_1", "ref", t0)
	first.Job.Status = job.Sending // a job that is being sent: delivered next
	if _, err := s.Create(first); err != nil {
		t.Fatal(err)
	}
	got, err := s.Create(rec("fx_2", "ref", t0))
	if !errors.Is(err, ErrRefExists) || got.Job.ID != "fx_1" {
		t.Fatalf("duplicate ref: %v %v", got, err)
	}
	if total, active, _ := s.Count(); total != 1 || active != 1 {
		t.Fatalf("count = %d total, %d active; want 1, 1", total, active)
	}
	if _, err := s.Get("fx_2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the duplicate was stored: %v", err)
	}
	r, _ := s.Get("fx_1")
	r.Job.Status = job.Delivered
	r.Version = 2
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	r.Version = 2
	if err := s.Put(r); !errors.Is(err, ErrStale) {
		t.Fatalf("same version again: %v, want ErrStale", err)
	}
	act, _ := s.Active()
	if len(act) != 0 {
		t.Fatalf("a delivered job is still active: %d", len(act))
	}
}

func TestListPagination(t *testing.T) {
	s := open(t, t.TempDir())
	t0 := time.Now()
	for i := 0; i < 7; i++ {
		r := rec(fmt.Sprintf("fx_%02d", i), "", t0.Add(time.Duration(i)*time.Second))
		if i%2 == 0 {
			r.Job.Status = job.Failed
		}
		if _, err := s.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	cursor := ""
	for {
		items, next, err := s.List(Filter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range items {
			all = append(all, j.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if got := strings.Join(all, ","); got != "fx_06,fx_05,fx_04,fx_03,fx_02,fx_01,fx_00" {
		t.Fatalf("pages = %s", got)
	}
	failed, _, _ := s.List(Filter{Status: job.Failed, Limit: 10})
	if len(failed) != 4 {
		t.Fatalf("status filter: %d", len(failed))
	}
	since, _, _ := s.List(Filter{Since: t0.Add(5 * time.Second), Limit: 10})
	if len(since) != 2 {
		t.Fatalf("since filter: %d", len(since))
	}
}

func TestOutboxAndPurge(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	t0 := time.Now()
	r := rec("fx_1", "", t0)
	if _, _, err := s.WriteDocument("fx_1", "in-00.pdf", strings.NewReader("%PDF-1.4"), 100); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.WriteDocument("fx_1", "in-01.pdf", strings.NewReader(strings.Repeat("x", 200)), 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.DocDir("fx_1"), "in-01.pdf")); !os.IsNotExist(err) {
		t.Fatal("the partial file was left behind")
	}
	r.Job.Status = job.Sending
	s.Create(r)
	r.Job.Status = job.Delivered
	done := t0
	r.Job.CompletedAt = &done
	r.Version = 2
	d := &Delivery{ID: "dl_1", JobID: "fx_1", Event: "fax.delivered", URL: "http://x"}
	if err := s.Put(r, d); err != nil {
		t.Fatal(err)
	}
	ob, _ := s.Outbox()
	if len(ob) != 1 || ob[0].ID != "dl_1" {
		t.Fatalf("outbox = %v", ob)
	}
	if err := s.Delivered(ob[0], false); err != nil {
		t.Fatal(err)
	}
	if ob, _ = s.Outbox(); len(ob) != 0 {
		t.Fatal("delivered item still in outbox")
	}
	if n, _ := s.Purge(t0.Add(30 * time.Minute)); n != 0 {
		t.Fatal("purged before the retention period")
	}
	if n, err := s.Purge(t0.Add(2 * time.Hour)); n != 1 || err != nil {
		t.Fatalf("purge: %d %v", n, err)
	}
	if _, err := os.Stat(s.DocDir("fx_1")); !os.IsNotExist(err) {
		t.Fatal("documents still there after purge")
	}
	got, _ := s.Get("fx_1")
	if !got.Job.Purged || got.Job.Status != job.Delivered {
		t.Fatalf("record after purge: %+v", got.Job)
	}
}

func TestCreateMany(t *testing.T) {
	s := open(t, t.TempDir())
	t0 := time.Now()
	rs := []*Record{rec("fx_a", "r1", t0), rec("fx_b", "", t0)}
	if err := s.CreateMany(rs); err != nil {
		t.Fatal(err)
	}
	if total, active, _ := s.Count(); total != 2 || active != 2 {
		t.Fatalf("count %d/%d", total, active)
	}
	if err := s.CreateMany([]*Record{rec("fx_c", "r1", t0)}); !errors.Is(err, ErrRefExists) {
		t.Fatalf("reused ref: %v", err)
	}
	if _, err := s.Get("fx_c"); !errors.Is(err, ErrNotFound) {
		t.Fatal("a failed batch stored a job")
	}
}
