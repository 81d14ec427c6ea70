package store

import (
	"errors"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Create after Close.
var ErrClosed = errors.New("store: closed")

// maxGroup bounds the jobs committed in one transaction.
const maxGroup = 256

// pending is one Create waiting for its group's commit.
type pending struct {
	r        *Record
	existing *Record // set with ErrRefExists
	err      error
	done     chan struct{}
}

// committer makes new jobs durable in groups, in two stages that overlap.
// The syncer takes every Create waiting when it is free (their documents are
// written) and makes their documents durable with one sync; the committer
// then writes the records of every synced group waiting in one transaction
// and only then answers each Create. While one group's transaction commits,
// the next group's documents are synced. A job never waits for a timer: a
// group is whatever arrived while the previous one was on its way to disk.
type committer struct {
	reqs    chan *pending
	synced  chan []*pending
	closing chan struct{}
	stopped chan struct{}
	// sync makes every document written so far durable: the files' data,
	// the job directories and their entries in the documents directory.
	sync func() error
}

// syncFS returns a sync that flushes the whole filesystem holding dir with
// one syncfs(2). dir stays open for the life of the store so that syncfs
// reports every write-back error that happened since Open (the kernel
// reports an error to the descriptors opened before it).
func syncFS(dir string) (func() error, *os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	return func() error { return unix.Syncfs(int(d.Fd())) }, d, nil
}

func (s *DB) startCommitter(sync func() error) {
	c := &committer{reqs: make(chan *pending), synced: make(chan []*pending), closing: make(chan struct{}),
		stopped: make(chan struct{}), sync: sync}
	s.commits = c
	go c.syncLoop()
	go s.commitLoop(c)
}

// stop lets the groups under way finish, then ends both stages; later
// Creates return ErrClosed.
func (c *committer) stop() {
	close(c.closing)
	<-c.stopped
}

// syncLoop is the first stage: gather a group, sync, pass it on.
func (c *committer) syncLoop() {
	defer close(c.synced)
	for {
		var group []*pending
		select {
		case p := <-c.reqs:
			group = append(group, p)
		case <-c.closing:
			return
		}
	gather:
		for len(group) < maxGroup {
			select {
			case p := <-c.reqs:
				group = append(group, p)
			default:
				break gather
			}
		}
		if err := c.sync(); err != nil {
			answer(group, diskErr(fmt.Errorf("store: sync documents: %w", err)))
			continue
		}
		c.synced <- group
	}
}

// commitLoop is the second stage: the records of every synced group waiting,
// in one transaction.
func (s *DB) commitLoop(c *committer) {
	defer close(c.stopped)
	for group := range c.synced {
	merge:
		for len(group) < maxGroup {
			select {
			case more, ok := <-c.synced:
				if !ok {
					break merge
				}
				group = append(group, more...)
			default:
				break merge
			}
		}
		s.commitRecords(group)
		answer(group, nil)
	}
}

// answer ends the Creates of group; a non-nil err is each one's error.
func answer(group []*pending, err error) {
	for _, p := range group {
		if err != nil {
			p.err = err
		}
		close(p.done)
	}
}

// commitRecords writes the group's records in one transaction. If that
// transaction fails, each record is committed alone so that one bad record
// fails only its own Create (as bbolt's Batch does).
func (s *DB) commitRecords(group []*pending) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, p := range group {
			if err := s.createTx(tx, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return
	}
	if len(group) == 1 {
		group[0].err = diskErr(err)
		return
	}
	for _, p := range group {
		p.err = diskErr(s.db.Update(func(tx *bolt.Tx) error { return s.createTx(tx, p) }))
	}
}

// createTx stores p's new job, or finds the job that already has its
// client_ref (p.existing).
func (s *DB) createTx(tx *bolt.Tx, p *pending) error {
	p.existing = nil
	j := p.r.Job
	if j.ClientRef != "" {
		if id := tx.Bucket(bRefs).Get(refKey(j.Kind, j.ClientRef)); id != nil {
			rec, err := getTx(tx, string(id))
			if err != nil {
				return err
			}
			p.existing = rec
			return nil
		}
		if err := tx.Bucket(bRefs).Put(refKey(j.Kind, j.ClientRef), []byte(j.ID)); err != nil {
			return err
		}
	}
	j.Seq = s.nextSeq(tx)
	if err := addCount(tx, kTotal, 1); err != nil {
		return err
	}
	if p.r.Version == 0 {
		p.r.Version = 1
	}
	return s.putTx(tx, p.r, nil)
}

// Create stores a new job and makes it durable together with its documents.
// When it returns nil, the files WriteDocument wrote into the job's document
// directory, that directory's entry and the job's record are all on disk
// (with Options.NoSync, none of them is synced). The documents are synced
// before the record's transaction commits, so a record never names a file
// that a crash could lose.
//
// Concurrent Creates are committed as a group: one sync of the data
// filesystem and one transaction for all of them, so many submitters cost
// about as much as one.
//
// When the job has a client_ref already used for the same kind, Create
// stores nothing and returns the existing record with ErrRefExists (its
// documents are left for the caller to remove).
func (s *DB) Create(r *Record) (*Record, error) {
	p := &pending{r: r, done: make(chan struct{})}
	select {
	case s.commits.reqs <- p:
	case <-s.commits.closing:
		return nil, fmt.Errorf("store: create %s: %w", r.Job.ID, ErrClosed)
	}
	<-p.done
	if p.err != nil {
		return nil, fmt.Errorf("store: create %s: %w", r.Job.ID, p.err)
	}
	if p.existing != nil {
		return p.existing, ErrRefExists
	}
	return r, nil
}
