package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/inbox"
	bolt "go.etcd.io/bbolt"
)

func rxFax(source string, at time.Time) *inbox.Fax {
	return &inbox.Fax{ID: inbox.NewID(), Status: inbox.Received, Source: source, CallerID: "0301234", DID: "500",
		Pages: 2, CreatedAt: at, EndedAt: at, PDF: true, TIFF: true}
}

func TestReceivedIsRecordedOnce(t *testing.T) {
	s := open(t, t.TempDir())
	now := time.Now()
	f := rxFax("1700000000.1", now)
	d := &Delivery{ID: "dl_rx1", JobID: string(f.ID), Event: inbox.Event, Method: "POST", URL: "http://x/", CreatedAt: now, NextAt: now}
	if _, err := s.PutReceived(f, true, d); err != nil {
		t.Fatal(err)
	}
	// The same reception reported again (the live event after the
	// start-up scan): not recorded twice, the first id comes back.
	again := rxFax("1700000000.1", now)
	id, err := s.PutReceived(again, false)
	if !errors.Is(err, ErrExists) || id != f.ID {
		t.Fatalf("second put: %v %v, want ErrExists with %s", id, err, f.ID)
	}
	if id, ok := s.ReceivedSource("1700000000.1"); !ok || id != f.ID {
		t.Fatalf("source index: %v %v", id, ok)
	}
	got, err := s.GetReceived(f.ID)
	if err != nil || got.CallerID != "0301234" || got.Pages != 2 {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.GetReceived(again.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the duplicate's id: %v", err)
	}
	if ids, _ := s.Unrouted(); len(ids) != 1 || ids[0] != f.ID {
		t.Fatalf("unrouted: %v", ids)
	}
	if err := s.MarkRouted(f.ID); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.Unrouted(); len(ids) != 0 {
		t.Fatalf("unrouted after MarkRouted: %v", ids)
	}
	ob, _ := s.Outbox()
	if len(ob) != 1 || ob[0].JobID != string(f.ID) {
		t.Fatalf("outbox: %+v", ob)
	}
	if _, err := s.PutReceived(&inbox.Fax{ID: "rx_bad", Source: "x"}, false); err == nil {
		t.Fatal("a bad id was stored")
	}
}

func TestReceivedListReadDelete(t *testing.T) {
	s := open(t, t.TempDir())
	t0 := time.Now().Add(-time.Hour)
	var ids []inbox.ID
	for i := 0; i < 5; i++ {
		f := rxFax("src-"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Minute))
		if i == 3 {
			f.Status, f.Pages, f.DID = inbox.Partial, 1, "501"
		}
		if _, err := s.PutReceived(f, false); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.ID)
		time.Sleep(2 * time.Millisecond) // ULIDs of one millisecond do not sort
	}
	page, next, err := s.ListReceived(inbox.Filter{Limit: 2})
	if err != nil || len(page) != 2 || page[0].ID != ids[4] || page[1].ID != ids[3] || next != ids[3] {
		t.Fatalf("page 1: %v next %v err %v", page, next, err)
	}
	page, next, _ = s.ListReceived(inbox.Filter{Limit: 2, Cursor: next})
	if len(page) != 2 || page[0].ID != ids[2] || next != ids[1] {
		t.Fatalf("page 2: %v next %v", page, next)
	}
	page, next, _ = s.ListReceived(inbox.Filter{Limit: 2, Cursor: next})
	if len(page) != 1 || page[0].ID != ids[0] || next != "" {
		t.Fatalf("page 3: %v next %v", page, next)
	}
	if got, _, _ := s.ListReceived(inbox.Filter{Status: inbox.Partial}); len(got) != 1 || got[0].ID != ids[3] {
		t.Fatalf("status filter: %v", got)
	}
	if got, _, _ := s.ListReceived(inbox.Filter{DID: "501"}); len(got) != 1 {
		t.Fatalf("did filter: %v", got)
	}
	if got, _, _ := s.ListReceived(inbox.Filter{Since: t0.Add(150 * time.Second)}); len(got) != 2 {
		t.Fatalf("since filter: %d faxes", len(got))
	}

	if _, err := s.UpdateReceived(ids[1], func(f *inbox.Fax) error { f.Read = true; return nil }); err != nil {
		t.Fatal(err)
	}
	unread := false
	if got, _, _ := s.ListReceived(inbox.Filter{Read: &unread}); len(got) != 4 {
		t.Fatalf("unread: %d", len(got))
	}
	if n, _ := s.CountUnread(); n != 4 {
		t.Fatalf("CountUnread = %d", n)
	}

	dir := s.DocDir(string(ids[2]))
	os.MkdirAll(dir, 0o750)
	os.WriteFile(filepath.Join(dir, inbox.PDFFile), []byte("%PDF"), 0o640)
	if err := s.DeleteReceived(ids[2], time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("documents of a deleted fax: %v", err)
	}
	if _, err := s.GetReceived(ids[2]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := s.DeleteReceived(ids[2], time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if got, _, _ := s.ListReceived(inbox.Filter{}); len(got) != 4 {
		t.Fatalf("list after delete: %d", len(got))
	}
	// A deleted fax's reception reported again is not recorded again.
	if _, err := s.PutReceived(rxFax("src-c", time.Now()), false); !errors.Is(err, ErrExists) {
		t.Fatalf("deleted reception again: %v", err)
	}
}

func TestPurgeReceived(t *testing.T) {
	s := open(t, t.TempDir())
	old, young := rxFax("old", time.Now().Add(-48*time.Hour)), rxFax("young", time.Now())
	for _, f := range []*inbox.Fax{old, young} {
		if _, err := s.PutReceived(f, false); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(s.DocDir(string(f.ID)), 0o750)
	}
	n, err := s.PurgeReceived(time.Now().Add(-24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	got, _ := s.GetReceived(old.ID)
	if !got.Purged || got.PDF || got.TIFF {
		t.Fatalf("purged record: %+v", got)
	}
	if _, err := os.Stat(s.DocDir(string(old.ID))); !os.IsNotExist(err) {
		t.Fatal("the old fax's documents are still there")
	}
	if _, err := os.Stat(s.DocDir(string(young.ID))); err != nil {
		t.Fatal("the young fax's documents went")
	}
}

// TestCheckFindsInboxDamage: Check reports a record missing from the
// source index and an index entry naming no record.
func TestCheckFindsInboxDamage(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := rxFax("src", time.Now())
	if _, err := s.PutReceived(f, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("clean store: %v", err)
	}
	s.db.Update(func(tx *bolt.Tx) error {
		tx.Bucket(bInboxSrc).Delete([]byte("src"))
		return tx.Bucket(bInboxSrc).Put([]byte("other"), []byte("rx_missing"))
	})
	err = s.Check()
	s.Close()
	if !errors.Is(err, ErrInconsistent) {
		t.Fatalf("Check = %v", err)
	}
	for _, want := range []string{"its source", "names missing received fax"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check does not report %q: %v", want, err)
		}
	}
}
