package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ErrInconsistent wraps every finding of Check.
var ErrInconsistent = errors.New("store: inconsistent")

// Check verifies the database: bbolt's own page structure, and faxbox's
// invariants between its buckets:
//   - the active index holds exactly the non-terminal jobs, each with its
//     current status;
//   - every client_ref entry names an existing job of that kind and ref;
//   - every outbox, dead-letter and purge entry names an existing job
//     (outbox and dead-letter entries may name a received fax instead);
//   - every received fax decodes, is stored under its own id and indexed
//     by its source, and every source index entry names one;
//   - every job record decodes and is stored under its own id.
//
// It returns nil or an error listing (up to 20 of) the findings, each
// wrapping ErrInconsistent. It reads in one transaction and changes nothing.
func (s *DB) Check() error {
	var errs []error
	add := func(format string, a ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInconsistent}, a...)...))
		}
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			add("bbolt: %v", err)
		}
		jobs, active := tx.Bucket(bJobs), tx.Bucket(bActive)
		err := jobs.ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil || r.Job == nil {
				add("job %s does not decode: %v", k, err)
				return nil
			}
			if r.Job.ID != string(k) {
				add("job stored under %s has id %s", k, r.Job.ID)
			}
			st := active.Get(k)
			switch {
			case r.Job.Status.Terminal() && st != nil:
				add("job %s is %s but in the active index", k, r.Job.Status)
			case !r.Job.Status.Terminal() && st == nil:
				add("job %s is %s but not in the active index", k, r.Job.Status)
			case st != nil && string(st) != string(r.Job.Status):
				add("job %s is %s but the active index says %s", k, r.Job.Status, st)
			}
			if r.Job.ClientRef != "" {
				if id := tx.Bucket(bRefs).Get(refKey(r.Job.Kind, r.Job.ClientRef)); id == nil {
					add("job %s has client_ref %q with no index entry", k, r.Job.ClientRef)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		active.ForEach(func(k, _ []byte) error {
			if jobs.Get(k) == nil {
				add("active index names missing job %s", k)
			}
			return nil
		})
		tx.Bucket(bRefs).ForEach(func(k, id []byte) error {
			r, err := getTx(tx, string(id))
			if err != nil {
				add("client_ref %q names job %s: %v", k, id, err)
				return nil
			}
			if !bytes.Equal(refKey(r.Job.Kind, r.Job.ClientRef), k) {
				add("client_ref %q names job %s, whose ref is %q", k, id, r.Job.ClientRef)
			}
			return nil
		})
		for _, b := range [][]byte{bOutbox, bDead} {
			tx.Bucket(b).ForEach(func(k, v []byte) error {
				var d Delivery
				if err := json.Unmarshal(v, &d); err != nil {
					add("%s entry %s does not decode: %v", b, k, err)
				} else if jobs.Get([]byte(d.JobID)) == nil && !inboxHas(tx, []byte(d.JobID)) {
					add("%s entry %s names missing job %s", b, k, d.JobID)
				}
				return nil
			})
		}
		checkInbox(tx, add)
		tx.Bucket(bPurge).ForEach(func(k, _ []byte) error {
			if len(k) <= 8 || jobs.Get(k[8:]) == nil {
				add("purge entry %x names a missing job", k)
			}
			return nil
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: check: %w", err)
	}
	return errors.Join(errs...)
}

// CheckDir opens the data directory dir (which no process may hold open),
// runs Check and closes it again. Tests call it after every test that wrote
// a data directory.
func CheckDir(dir string) error {
	s, err := Open(dir, Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Check()
}
