package store

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// gate is an injected document sync that blocks until the test lets it go:
// each call announces itself on entered and returns what release sends. Once
// stopped, it blocks no more, so a failed test can still close its store.
type gate struct {
	entered chan struct{}
	release chan error
	done    chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan error), done: make(chan struct{})}
}

// stop is registered after the store's cleanup, so it runs before the store
// closes.
func (g *gate) stop() { close(g.done) }

func (g *gate) sync() error {
	select {
	case g.entered <- struct{}{}:
	case <-g.done:
		return errors.New("the test has ended")
	}
	select {
	case err := <-g.release:
		return err
	case <-g.done:
		return errors.New("the test has ended")
	}
}

func openWith(t *testing.T, dir string, syncDocs func() error) *DB {
	t.Helper()
	return openOpts(t, dir, Options{Timeout: 100 * time.Millisecond, syncDocs: syncDocs})
}

// createAsync writes a document for id and starts its Create; the result
// arrives on the returned channel.
func createAsync(t *testing.T, s *DB, id string) <-chan error {
	t.Helper()
	if _, _, err := s.WriteDocument(id, "in-00.pdf", strings.NewReader("%PDF-1.4 "+id), 1<<10); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		r := rec(id, "", time.Now())
		r.Paths = []string{"in-00.pdf"}
		_, err := s.Create(r)
		done <- err
	}()
	return done
}

func wait(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func result(t *testing.T, what string, c <-chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

func notStored(t *testing.T, s *DB, id, when string) {
	t.Helper()
	if _, err := s.Get(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("%s is committed %s: %v", id, when, err)
	}
}

// A record is committed only after a document sync that began after its
// documents were written: not while its group's sync runs, and not with a
// sync that was already under way when it arrived.
func TestCreateCommitsOnlyAfterItsGroupSync(t *testing.T) {
	g := newGate()
	s := openWith(t, t.TempDir(), g.sync)
	t.Cleanup(g.stop)

	a := createAsync(t, s, "fx_a")
	wait(t, "the sync of fx_a's group", g.entered)
	notStored(t, s, "fx_a", "while its group's sync runs")

	// fx_b arrives while fx_a's sync is under way: that sync may have missed
	// its documents, so fx_b must wait for the next one.
	b := createAsync(t, s, "fx_b")
	select {
	case err := <-a:
		t.Fatalf("Create(fx_a) returned before its sync ended: %v", err)
	case err := <-b:
		t.Fatalf("Create(fx_b) returned before any sync of it: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.release <- nil
	if err := result(t, "Create(fx_a)", a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("fx_a"); err != nil {
		t.Fatalf("fx_a after Create returned: %v", err)
	}
	wait(t, "the sync of fx_b's group", g.entered)
	notStored(t, s, "fx_b", "with the sync that began before it arrived")
	g.release <- nil
	if err := result(t, "Create(fx_b)", b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("fx_b"); err != nil {
		t.Fatalf("fx_b after Create returned: %v", err)
	}
}

// A failed document sync fails the group's Creates (a full disk as
// ErrDiskFull) and commits none of their records; the next group commits.
func TestCreateFailsWithItsSync(t *testing.T) {
	g := newGate()
	s := openWith(t, t.TempDir(), g.sync)
	t.Cleanup(g.stop)
	a := createAsync(t, s, "fx_a")
	wait(t, "the sync", g.entered)
	g.release <- syscall.ENOSPC
	if err := result(t, "Create(fx_a)", a); !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "fx_a") {
		t.Fatalf("Create with a failed sync: %v; want ErrDiskFull naming the job", err)
	}
	notStored(t, s, "fx_a", "although its sync failed")
	if total, _, _ := s.Count(); total != 0 {
		t.Fatalf("%d jobs counted after a failed sync", total)
	}
	b := createAsync(t, s, "fx_b")
	wait(t, "the next sync", g.entered)
	g.release <- nil
	if err := result(t, "Create(fx_b)", b); err != nil {
		t.Fatal(err)
	}
}

// A record that cannot be stored fails alone: the rest of its group is
// committed.
func TestCommitGroupIsolatesABadRecord(t *testing.T) {
	s := openWith(t, t.TempDir(), func() error { return nil })
	good1, good2 := rec("fx_good1", "r1", time.Now()), rec("fx_good2", "", time.Now())
	bad := rec("", "", time.Now()) // an empty key: bbolt refuses it
	group := []*pending{{r: good1}, {r: bad}, {r: good2}}
	s.commitRecords(group)
	if group[1].err == nil {
		t.Fatal("the record with no id was stored")
	}
	for _, p := range []*pending{group[0], group[2]} {
		if p.err != nil {
			t.Fatalf("%s failed with the bad record of its group: %v", p.r.Job.ID, p.err)
		}
		if _, err := s.Get(p.r.Job.ID); err != nil {
			t.Fatal(err)
		}
	}
	if total, active, _ := s.Count(); total != 2 || active != 2 {
		t.Fatalf("count = %d total, %d active; want 2, 2", total, active)
	}
}

// Many submitters at once, on the real filesystem: every job is stored once
// with its own arrival number, each client_ref goes to exactly one job, the
// jobs share syncs, and no record is ever visible before a sync that began
// after its documents were written (checked at the start of every sync and
// at the end).
func TestCreateConcurrentSubmitters(t *testing.T) {
	dir := t.TempDir()
	var (
		clock    atomic.Int64 // orders document writes and sync starts
		mu       sync.Mutex
		written  = map[string]int64{} // job → clock after its documents were written
		lastSync int64                // clock at the start of the previous sync
		syncs    int
		s        *DB
		d        *os.File
		bad      []string
	)
	// check: every visible record's documents were written before the
	// previous sync began (so that sync, or a later one, covered them and
	// ended before the record committed).
	check := func(prev int64) {
		s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bJobs).ForEach(func(k, _ []byte) error {
				if w, ok := written[string(k)]; !ok || w >= prev {
					bad = append(bad, fmt.Sprintf("%s (written at %d, last sync began at %d)", k, w, prev))
				}
				return nil
			})
		})
	}
	syncDocs := func() error {
		now := clock.Add(1)
		mu.Lock()
		check(lastSync)
		lastSync, syncs = now, syncs+1
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // a slow disk: later jobs gather behind this one
		return unix.Syncfs(int(d.Fd()))
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s = openWith(t, dir, syncDocs)

	const workers, each = 16, 20
	type outcome struct {
		id, ref string
		got     *Record
		err     error
	}
	out := make(chan outcome, workers*each)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("fx_%02d_%02d", w, i)
				ref := ""
				if i%5 == 0 {
					ref = fmt.Sprintf("shared-%d", i) // every worker submits it
				}
				if _, _, err := s.WriteDocument(id, "in-00.pdf", strings.NewReader("%PDF-1.4 "+id), 1<<10); err != nil {
					out <- outcome{id: id, err: err}
					continue
				}
				mu.Lock()
				written[id] = clock.Add(1)
				mu.Unlock()
				r := rec(id, ref, time.Now())
				r.Paths = []string{"in-00.pdf"}
				got, err := s.Create(r)
				out <- outcome{id, ref, got, err}
			}
		}()
	}
	wg.Wait()
	close(out)
	mu.Lock()
	check(lastSync)
	if len(bad) > 0 {
		t.Errorf("records visible before a sync that began after their documents were written: %v", bad)
	}
	nsyncs := syncs
	mu.Unlock()

	winners := map[string]string{}
	stored := 0
	for o := range out {
		switch {
		case errors.Is(o.err, ErrRefExists):
			if o.ref == "" || o.got == nil || o.got.Job.ClientRef != o.ref {
				t.Errorf("%s: ErrRefExists with %+v for ref %q", o.id, o.got, o.ref)
			}
			notStored(t, s, o.id, "although its client_ref was taken")
		case o.err != nil:
			t.Fatalf("%s: %v", o.id, o.err)
		default:
			stored++
			if o.ref != "" {
				if w, dup := winners[o.ref]; dup {
					t.Errorf("client_ref %s stored for %s and %s", o.ref, w, o.id)
				}
				winners[o.ref] = o.id
			}
		}
	}
	const refs = each / 5
	if want := workers*each - (workers-1)*refs; stored != want || len(winners) != refs {
		t.Fatalf("%d stored, %d refs won; want %d and %d", stored, len(winners), want, refs)
	}
	if total, active, _ := s.Count(); total != stored || active != stored {
		t.Fatalf("count = %d total, %d active; want %d", total, active, stored)
	}
	act, _ := s.Active()
	seqs := map[uint64]bool{}
	for _, r := range act {
		if seqs[r.Job.Seq] || r.Job.Seq == 0 {
			t.Fatalf("arrival number %d given twice or not at all", r.Job.Seq)
		}
		seqs[r.Job.Seq] = true
	}
	if nsyncs > workers*each/2 {
		t.Fatalf("%d syncs for %d Creates: they were not grouped", nsyncs, workers*each)
	}
	t.Logf("%d Creates, %d stored, %d syncs", workers*each, stored, nsyncs)
}

// Close lets the group under way finish; a Create after Close is refused.
func TestCloseFinishesTheGroupUnderWay(t *testing.T) {
	dir := t.TempDir()
	g := newGate()
	s, err := Open(dir, Options{Timeout: 100 * time.Millisecond, syncDocs: g.sync})
	if err != nil {
		t.Fatal(err)
	}
	first := s
	t.Cleanup(func() { g.stop(); first.Close() })
	a := createAsync(t, s, "fx_a")
	wait(t, "the sync", g.entered)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned while a group was being synced: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.release <- nil
	if err := result(t, "Create(fx_a)", a); err != nil {
		t.Fatal(err)
	}
	if err := result(t, "Close", closed); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(rec("fx_b", "", time.Now())); !errors.Is(err, ErrClosed) {
		t.Fatalf("Create after Close: %v; want ErrClosed", err)
	}
	s = open(t, dir)
	if _, err := s.Get("fx_a"); err != nil {
		t.Fatalf("fx_a after reopening: %v", err)
	}
}
