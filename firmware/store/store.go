// Package store is faxbox's durable state: jobs with their attempts, the
// documents beside them, and the webhook outbox, in one bbolt file under the
// data directory.
//
// Contracts:
//   - A new job is durable when Create returns: its documents (written with
//     WriteDocument), their directory entries and its record are on disk, and
//     the documents were synced before the record's transaction committed.
//     Concurrent Creates share one sync and one transaction (group commit).
//   - Put writes a job and the webhook deliveries its change produced in one
//     transaction: a result and its notification are durable together.
//   - A job carries a version; Put never replaces a newer version with an
//     older one (ErrStale), so writers outside one lock cannot reorder state.
//   - Only one process opens a data directory (ErrLocked after Options.Timeout).
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// Sentinel errors.
var (
	ErrNotFound  = errors.New("store: not found")
	ErrLocked    = errors.New("store: data directory is in use by another faxbox process")
	ErrStale     = errors.New("store: stale job version")
	ErrRefExists = errors.New("store: client_ref already used")
	ErrPurged    = errors.New("store: the job's documents were purged")
)

var (
	bJobs    = []byte("jobs")
	bActive  = []byte("active") // id → status, for non-terminal jobs
	bRefs    = []byte("refs")   // kind/client_ref → id
	bOutbox  = []byte("outbox") // delivery id → Delivery
	bDead    = []byte("outbox_dead")
	bPurge   = []byte("purge") // big-endian unix nanos + id → nil: documents to purge
	bMeta    = []byte("meta")
	bState   = []byte("state") // name → JSON: small durable state of other parts of the box
	kSeq     = []byte("seq")
	kTotal   = []byte("jobs_total")
	dbName   = "faxbox.db"
	docsName = "documents"
)

// Record is a job as stored: the public record plus bookkeeping.
type Record struct {
	Job     *job.Job `json:"job"`
	Version uint64   `json:"version"`
	Hash    string   `json:"hash,omitempty"`
	Paths   []string `json:"paths,omitempty"` // input files, relative to DocDir
	// Seq is the job's arrival order (job.Job.Seq, which the public JSON of
	// a job leaves out), kept so scheduling ties break the same way after a
	// restart.
	Seq uint64 `json:"seq,omitempty"`
}

// Delivery is one webhook notification waiting in the outbox.
type Delivery struct {
	ID        string            `json:"id"`
	JobID     string            `json:"job_id"`
	Event     job.Event         `json:"event"`
	Method    string            `json:"method"` // POST or GET
	URL       string            `json:"url"`
	Body      []byte            `json:"body,omitempty"`
	Header    map[string]string `json:"header,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	NextAt    time.Time         `json:"next_at"`
	Attempts  int               `json:"attempts"`
	LastError string            `json:"last_error,omitempty"`
}

// Options for Open.
type Options struct {
	// Timeout waits for another process's lock before ErrLocked; default 1s.
	Timeout time.Duration
	// NoSync disables fsync (benchmarks of the non-durable path only).
	NoSync bool
	// Retention: a job's documents are purged this long after it ends
	// (0: never).
	Retention time.Duration
	// syncDocs, when set, replaces the sync of the documents that Create's
	// group commit runs before its transaction (tests).
	syncDocs func() error
}

// DB is an open data directory.
type DB struct {
	db        *bolt.DB
	dir       string
	docs      string
	retention time.Duration
	commits   *committer
	closeOnce sync.Once
	docsFile  *os.File // held open for syncfs's error reporting (nil with NoSync or syncDocs)
}

// Open opens (creating if needed) the data directory dir.
func Open(dir string, o Options) (*DB, error) {
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	docs := filepath.Join(dir, docsName)
	if err := os.MkdirAll(docs, 0o750); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	path := filepath.Join(dir, dbName)
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: o.Timeout, NoSync: o.NoSync, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterr.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (is another faxbox running?)", ErrLocked, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bJobs, bActive, bRefs, bOutbox, bDead, bPurge, bMeta, bState, bInbox, bInboxSrc} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: init %s: %w", path, err)
	}
	s := &DB{db: db, dir: dir, docs: docs, retention: o.Retention}
	syncDocs := o.syncDocs
	switch {
	case syncDocs != nil:
	case o.NoSync:
		syncDocs = func() error { return nil }
	default:
		if syncDocs, s.docsFile, err = syncFS(docs); err != nil {
			db.Close()
			return nil, err
		}
	}
	s.startCommitter(syncDocs)
	return s, nil
}

// Close waits for the group commit under way, then closes the database.
// Creates after Close return ErrClosed.
func (s *DB) Close() error {
	s.closeOnce.Do(func() {
		s.commits.stop()
		if s.docsFile != nil {
			s.docsFile.Close()
		}
	})
	return s.db.Close()
}

// Dir returns the data directory.
func (s *DB) Dir() string { return s.dir }

// DocDir returns the directory holding job id's documents.
func (s *DB) DocDir(id string) string { return filepath.Join(s.docs, id) }

// NextSeq returns a new arrival sequence number (durable with the next commit
// of the caller's job; gaps are harmless).
func (s *DB) nextSeq(tx *bolt.Tx) uint64 {
	m := tx.Bucket(bMeta)
	var n uint64
	if v := m.Get(kSeq); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	n++
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	m.Put(kSeq, b[:])
	return n
}

func refKey(kind job.Kind, ref string) []byte { return []byte(string(kind) + "\x00" + ref) }

// CreateMany stores many new jobs in one transaction (bulk import); a
// client_ref already in use is an error for the whole batch.
func (s *DB) CreateMany(rs []*Record) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range rs {
			j := r.Job
			if j.ClientRef != "" {
				if tx.Bucket(bRefs).Get(refKey(j.Kind, j.ClientRef)) != nil {
					return fmt.Errorf("%w: %s", ErrRefExists, j.ClientRef)
				}
				if err := tx.Bucket(bRefs).Put(refKey(j.Kind, j.ClientRef), []byte(j.ID)); err != nil {
					return err
				}
			}
			j.Seq = s.nextSeq(tx)
			if r.Version == 0 {
				r.Version = 1
			}
			if err := s.putTx(tx, r, nil); err != nil {
				return err
			}
		}
		return addCount(tx, kTotal, int64(len(rs)))
	})
	if err != nil {
		return fmt.Errorf("store: create %d jobs: %w", len(rs), err)
	}
	return nil
}

// Put writes r (if its version is newer than the stored one) and queues the
// deliveries, in one transaction.
func (s *DB) Put(r *Record, deliveries ...*Delivery) error {
	err := s.db.Update(func(tx *bolt.Tx) error { return s.putTx(tx, r, deliveries) })
	if err != nil {
		return fmt.Errorf("store: put %s: %w", r.Job.ID, err)
	}
	return nil
}

// Write is one job change for PutMany.
type Write struct {
	Record     *Record
	Deliveries []*Delivery
}

// PutMany commits several changes in one transaction (group commit). A stale
// record, or one whose status change the lifecycle does not allow
// (job.ErrTransition), is skipped (its deliveries are still queued) and
// reported in the returned slice; any other error aborts the whole
// transaction.
func (s *DB) PutMany(ws []Write) (skipped []error, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		skipped = skipped[:0]
		for _, w := range ws {
			err := s.putTx(tx, w.Record, w.Deliveries)
			if errors.Is(err, ErrStale) || errors.Is(err, job.ErrTransition) {
				skipped = append(skipped, err)
				err = s.putTx(tx, nil, w.Deliveries)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: commit %d changes: %w", len(ws), diskErr(err))
	}
	return skipped, nil
}

func (s *DB) putTx(tx *bolt.Tx, r *Record, deliveries []*Delivery) error {
	if r == nil {
		return putDeliveries(tx, deliveries)
	}
	id := []byte(r.Job.ID)
	jobs := tx.Bucket(bJobs)
	if old := jobs.Get(id); old != nil {
		var o struct {
			Version uint64 `json:"version"`
			Job     struct {
				Status job.Status `json:"status"`
			} `json:"job"`
		}
		if err := json.Unmarshal(old, &o); err == nil {
			if o.Version >= r.Version {
				return fmt.Errorf("%w: have %d, put %d", ErrStale, o.Version, r.Version)
			}
			if err := o.Job.Status.To(r.Job.Status); err != nil {
				return fmt.Errorf("store: job %s: %w", r.Job.ID, err)
			}
		}
	}
	r.Seq = r.Job.Seq
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := jobs.Put(id, b); err != nil {
		return err
	}
	if r.Job.Status.Terminal() {
		if tx.Bucket(bActive).Get(id) != nil {
			if err := tx.Bucket(bActive).Delete(id); err != nil {
				return err
			}
			if s.retention > 0 && !r.Job.Purged {
				end := r.Job.UpdatedAt
				if r.Job.CompletedAt != nil {
					end = *r.Job.CompletedAt
				}
				if err := tx.Bucket(bPurge).Put(purgeKey(end.Add(s.retention), r.Job.ID), nil); err != nil {
					return err
				}
			}
		}
	} else if err := tx.Bucket(bActive).Put(id, []byte(r.Job.Status)); err != nil {
		return err
	}
	return putDeliveries(tx, deliveries)
}

func putDeliveries(tx *bolt.Tx, deliveries []*Delivery) error {
	ob := tx.Bucket(bOutbox)
	for _, d := range deliveries {
		db, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if err := ob.Put([]byte(d.ID), db); err != nil {
			return err
		}
	}
	return nil
}

func getTx(tx *bolt.Tx, id string) (*Record, error) {
	v := tx.Bucket(bJobs).Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("store: decode %s: %w", id, err)
	}
	r.Job.Seq = r.Seq
	return &r, nil
}

// Get returns job id.
func (s *DB) Get(id string) (*Record, error) {
	var r *Record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = getTx(tx, id)
		return err
	})
	return r, err
}

// Active returns every non-terminal job, in arrival order.
func (s *DB) Active() ([]*Record, error) {
	var out []*Record
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bActive).ForEach(func(k, _ []byte) error {
			r, err := getTx(tx, string(k))
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// Filter selects jobs for List.
type Filter struct {
	Kind      job.Kind
	Status    job.Status
	ClientRef string
	Since     time.Time
	Cursor    string // list jobs with IDs before this one (newest first)
	Limit     int
	// Internal includes the box's own jobs (job.Internal: self-test,
	// qualification), left out by default.
	Internal bool
}

// List returns jobs newest first and the cursor for the next page ("" at the
// end). IDs sort by creation time, so Since stops the scan early.
func (s *DB) List(f Filter) ([]*job.Job, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var out []*job.Job
	next := ""
	err := s.db.View(func(tx *bolt.Tx) error {
		if f.ClientRef != "" {
			kind := f.Kind
			if kind == "" {
				kind = job.KindFax
			}
			id := tx.Bucket(bRefs).Get(refKey(kind, f.ClientRef))
			if id == nil {
				return nil
			}
			r, err := getTx(tx, string(id))
			if err != nil {
				return err
			}
			if match(r.Job, f) {
				out = append(out, r.Job)
			}
			return nil
		}
		// Ids sort by creation time within one kind only (each kind has its
		// own prefix), so the scan is kept to the kind's key range and only
		// there may Since end it early.
		prefix := []byte(job.IDPrefix(f.Kind))
		c := tx.Bucket(bJobs).Cursor()
		var k, v []byte
		switch {
		case f.Cursor != "":
			c.Seek([]byte(f.Cursor))
			k, v = c.Prev()
		case len(prefix) > 0:
			end := append(bytes.Clone(prefix), 0xff)
			if k, _ = c.Seek(end); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		default:
			k, v = c.Last()
		}
		for ; k != nil; k, v = c.Prev() {
			if len(prefix) > 0 && !bytes.HasPrefix(k, prefix) {
				if bytes.Compare(k, prefix) < 0 {
					return nil
				}
				continue
			}
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("store: decode %s: %w", k, err)
			}
			if len(prefix) > 0 && !f.Since.IsZero() && r.Job.CreatedAt.Before(f.Since) {
				return nil
			}
			if !match(r.Job, f) {
				continue
			}
			if len(out) == f.Limit {
				next = string(bytes.Clone(lastID(out)))
				return nil
			}
			out = append(out, r.Job)
		}
		return nil
	})
	return out, next, err
}

func lastID(js []*job.Job) []byte { return []byte(js[len(js)-1].ID) }

func match(j *job.Job, f Filter) bool {
	if f.Kind != "" && j.Kind != f.Kind {
		return false
	}
	if f.Status != "" && j.Status != f.Status {
		return false
	}
	if j.Internal != "" && !f.Internal {
		return false
	}
	if !f.Since.IsZero() && j.CreatedAt.Before(f.Since) {
		return false
	}
	return true
}

func addCount(tx *bolt.Tx, key []byte, d int64) error {
	m := tx.Bucket(bMeta)
	var n int64
	if v := m.Get(key); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n+d))
	return m.Put(key, b[:])
}

// Count returns the number of stored jobs and of active ones. It reads a
// counter, not the jobs, so it costs the same with 100,000 jobs stored.
func (s *DB) Count() (total, active int, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(kTotal); len(v) == 8 {
			total = int(binary.BigEndian.Uint64(v))
		}
		active = tx.Bucket(bActive).Stats().KeyN
		return nil
	})
	return
}

// Outbox returns every pending delivery.
func (s *DB) Outbox() ([]*Delivery, error) {
	var out []*Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bOutbox).ForEach(func(k, v []byte) error {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("store: decode delivery %s: %w", k, err)
			}
			out = append(out, &d)
			return nil
		})
	})
	return out, err
}

// UpdateDelivery records a failed try of d.
func (s *DB) UpdateDelivery(d *Delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bOutbox)
		if ob.Get([]byte(d.ID)) == nil {
			return ErrNotFound
		}
		return ob.Put([]byte(d.ID), b)
	})
}

// Delivered removes d from the outbox. With dead set, d is kept in the
// dead-letter bucket instead (the receiver never accepted it).
func (s *DB) Delivered(d *Delivery, dead bool) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bOutbox).Delete([]byte(d.ID)); err != nil {
			return err
		}
		if !dead {
			return nil
		}
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		return tx.Bucket(bDead).Put([]byte(d.ID), b)
	})
}

// DeadLetters returns deliveries that were given up.
func (s *DB) DeadLetters() ([]*Delivery, error) {
	var out []*Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bDead).ForEach(func(k, v []byte) error {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, &d)
			return nil
		})
	})
	return out, err
}

func purgeKey(at time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	return append(k, id...)
}

// SchedulePurge records that job id's documents are to be deleted at at.
func (s *DB) SchedulePurge(id string, at time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bPurge).Put(purgeKey(at, id), nil) })
}

// Reopen brings a terminal job back to life in one transaction: it reads
// job id, refuses it with ErrPurged when its documents are gone, lets reopen
// check and change the job (an error from reopen aborts and is returned),
// and writes it with the next version. Purge and Reopen exclude each other:
// a job is either purged or reopened, never both, so the documents of an
// active job are never deleted.
func (s *DB) Reopen(id string, reopen func(j *job.Job) error) (*Record, error) {
	var out *Record
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := getTx(tx, id)
		if err != nil {
			return err
		}
		if r.Job.Purged {
			return ErrPurged
		}
		if err := reopen(r.Job); err != nil {
			return err
		}
		r.Version++
		if err := s.putTx(tx, r, nil); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reopen %s: %w", id, err)
	}
	return out, nil
}

// Purge deletes the documents of every job whose purge time is not after
// now, marks the records purged, and returns how many it purged. A job that
// was reopened since (not terminal) keeps its documents. The record is
// marked purged in the same transaction that checks it is terminal, and the
// files go only after that commit (see Reopen).
func (s *DB) Purge(now time.Time) (int, error) {
	var due [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bPurge).Cursor()
		for k, _ := c.First(); len(k) > 8; k, _ = c.Next() {
			if int64(binary.BigEndian.Uint64(k[:8])) > now.UnixNano() {
				break
			}
			due = append(due, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range due {
		id := string(k[8:])
		purge := false
		err := s.db.Update(func(tx *bolt.Tx) error {
			purge = false
			if r, err := getTx(tx, id); err == nil && r.Job.Status.Terminal() && !r.Job.Purged {
				r.Job.Purged = true
				r.Version++
				if err := s.putTx(tx, r, nil); err != nil {
					return err
				}
				purge = true
			}
			return tx.Bucket(bPurge).Delete(k)
		})
		if err != nil {
			return n, fmt.Errorf("store: purge %s: %w", id, err)
		}
		if !purge {
			continue
		}
		if err := os.RemoveAll(s.DocDir(id)); err != nil {
			return n, fmt.Errorf("store: purge %s: %w", id, err)
		}
		n++
	}
	return n, nil
}

// Size returns the database file's size in bytes.
func (s *DB) Size() int64 {
	var n int64
	s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}
