package scheduler

import (
	"fmt"
	"testing"
	"time"
)

func limitsFor(m map[string]Limits) Destinations {
	return func(num string) Limits {
		if l, ok := m[num]; ok {
			return l
		}
		return OneAtATime(num)
	}
}

func wide(t *testing.T, channels int) *Scheduler {
	t.Helper()
	s, err := New([]*Group{{Name: "trunk", Channels: channels}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addJob(t *testing.T, s *Scheduler, id, to string, prio int, seq uint64, key string, since time.Time) {
	t.Helper()
	if err := s.Add(&Item{JobID: id, To: to, Group: "trunk", Priority: prio, Seq: seq, BatchKey: key, Since: since}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentLimitPerNumber(t *testing.T) {
	s := wide(t, 8)
	s.SetDestinations(limitsFor(map[string]Limits{"107": {Concurrent: 4}}))
	for i := range 6 {
		addJob(t, s, fmt.Sprint("s", i), "107", 0, uint64(i), "", time.Time{})
	}
	addJob(t, s, "other", "0401", 0, 10, "", time.Time{})
	got := next(s)
	if len(got) != 5 {
		t.Fatalf("assigned %v; want 4 calls to 107 and the other number's job", ids(got))
	}
	if s.InCalls("107") != 4 || s.InCalls("+107") != 4 {
		t.Fatalf("calls to 107 = %d, want 4", s.InCalls("107"))
	}
	if got[4].Item.JobID != "other" {
		t.Fatalf("the job for another number must not wait behind 107's limit: %v", ids(got))
	}
	if again := next(s); len(again) != 0 {
		t.Fatalf("a fifth call to 107 was started: %v", ids(again))
	}
	s.Release("trunk", got[0].Line)
	if again := next(s); len(again) != 1 || again[0].Item.JobID != "s4" {
		t.Fatalf("after one call ended: %v, want s4", ids(again))
	}
	if s.InCalls("107") != 4 {
		t.Fatalf("calls to 107 = %d, want 4", s.InCalls("107"))
	}
}

func TestBatchSharesOneCall(t *testing.T) {
	s := wide(t, 4)
	s.SetDestinations(limitsFor(map[string]Limits{"108": {Concurrent: 1, Batch: 3}}))
	addJob(t, s, "b1", "108", 0, 1, "fine", time.Time{})
	addJob(t, s, "x", "108", 0, 2, "normal", time.Time{}) // other options: not in the batch
	addJob(t, s, "b2", "108", 0, 3, "fine", time.Time{})
	addJob(t, s, "b3", "108", 0, 4, "fine", time.Time{})
	addJob(t, s, "b4", "108", 0, 5, "fine", time.Time{})
	got := next(s)
	if len(got) != 1 {
		t.Fatalf("assignments %v; want one call to 108", ids(got))
	}
	var batch []string
	for _, it := range got[0].Items() {
		batch = append(batch, it.JobID)
	}
	if fmt.Sprint(batch) != "[b1 b2 b3]" {
		t.Fatalf("batch = %v; want [b1 b2 b3] (max_batch 3, same options, queue order)", batch)
	}
	if s.Queued() != 2 || s.InCalls("108") != 1 {
		t.Fatalf("queued %d, calls %d; want x and b4 waiting, one call", s.Queued(), s.InCalls("108"))
	}
	s.Release("trunk", got[0].Line)
	if s.InCalls("108") != 0 {
		t.Fatalf("the batch's call released: calls = %d", s.InCalls("108"))
	}
	got = next(s)
	if len(got) != 1 || got[0].Item.JobID != "x" || len(got[0].Batch) != 0 {
		t.Fatalf("next call = %v; want x alone (b4's options differ)", ids(got))
	}
}

func TestBatchNeverDelaysOtherDestinations(t *testing.T) {
	s := wide(t, 1)
	s.SetDestinations(limitsFor(map[string]Limits{"108": {Concurrent: 1, Batch: 10}}))
	addJob(t, s, "b1", "108", 0, 1, "k", time.Time{})
	addJob(t, s, "b2", "108", 0, 2, "k", time.Time{})
	addJob(t, s, "urgent", "0401", 9, 3, "k", time.Time{})
	got := next(s)
	if len(got) != 1 || got[0].Item.JobID != "urgent" || len(got[0].Batch) != 0 {
		t.Fatalf("first call = %v; want the higher-priority job for the other number, alone", ids(got))
	}
}

func TestBatchWait(t *testing.T) {
	s := wide(t, 2)
	s.SetDestinations(limitsFor(map[string]Limits{"108": {Concurrent: 1, Batch: 3, BatchWait: 10 * time.Second}}))
	t0 := time.Unix(5000, 0)
	addJob(t, s, "b1", "108", 0, 1, "k", t0)
	addJob(t, s, "other", "0401", 0, 2, "k", t0)
	got, wake := s.Next(t0.Add(time.Second))
	if len(got) != 1 || got[0].Item.JobID != "other" {
		t.Fatalf("assigned %v; want only the other number (108 waits for a fuller batch)", ids(got))
	}
	if !wake.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("wake = %v, want %v", wake, t0.Add(10*time.Second))
	}
	addJob(t, s, "b2", "108", 0, 3, "k", t0.Add(2*time.Second))
	if got, _ := s.Next(t0.Add(3 * time.Second)); len(got) != 0 {
		t.Fatalf("two of three before the wait is over: %v", ids(got))
	}
	got, wake = s.Next(t0.Add(10 * time.Second))
	if len(got) != 1 || len(got[0].Items()) != 2 || !wake.IsZero() {
		t.Fatalf("at the end of the wait: %v (wake %v); want b1+b2 in one call", ids(got), wake)
	}

	// A full batch goes at once.
	s2 := wide(t, 1)
	s2.SetDestinations(limitsFor(map[string]Limits{"108": {Concurrent: 1, Batch: 2, BatchWait: time.Hour}}))
	addJob(t, s2, "c1", "108", 0, 1, "k", t0)
	addJob(t, s2, "c2", "108", 0, 2, "k", t0)
	if got, _ := s2.Next(t0); len(got) != 1 || len(got[0].Items()) != 2 {
		t.Fatalf("a full batch must not wait: %v", ids(got))
	}
}
