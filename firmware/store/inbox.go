package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/faxbox/faxbox/firmware/inbox"
	bolt "go.etcd.io/bbolt"
)

// Received faxes live in their own buckets: inbox (id → inbox.Fax as
// JSON) and inbox_src (the reception's key in Asterisk, its Uniqueid → id).
// The source index makes recording idempotent: the live event and the
// start-up scan may both report one reception, and only the first records
// it. A deleted fax keeps its record (Deleted set, documents gone), so a
// reception Asterisk reports again is not recorded twice, and a webhook
// still in the outbox names an existing record.
//
// Contracts:
//   - PutReceived writes the record, its source index entry and the
//     deliveries announcing it in one transaction: nobody is told of a fax
//     whose record is not durable.
//   - A deleted fax is not found by GetReceived, ListReceived or
//     UpdateReceived (ErrNotFound).
var (
	bInbox    = []byte("inbox")
	bInboxSrc = []byte("inbox_src")
)

// ErrExists is returned by PutReceived when the reception is already
// recorded (under the id returned with it).
var ErrExists = errors.New("store: reception already recorded")

// receivedRecord is a received fax as stored.
type receivedRecord struct {
	Fax       *inbox.Fax `json:"fax"`
	Deleted   bool       `json:"deleted,omitempty"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
	// Unrouted: the fax waits for its routing (the Router) to finish.
	Unrouted bool `json:"unrouted,omitempty"`
}

func inboxBuckets(tx *bolt.Tx) (*bolt.Bucket, *bolt.Bucket, error) {
	in, err := tx.CreateBucketIfNotExists(bInbox)
	if err != nil {
		return nil, nil, err
	}
	src, err := tx.CreateBucketIfNotExists(bInboxSrc)
	return in, src, err
}

// ReceivedSource reports whether the reception with Asterisk key source is
// recorded, and under which id.
func (s *DB) ReceivedSource(source string) (inbox.ID, bool) {
	var id inbox.ID
	s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bInboxSrc); b != nil {
			id = inbox.ID(b.Get([]byte(source)))
		}
		return nil
	})
	return id, id != ""
}

// PutReceived records a new received fax and queues the deliveries that
// announce it, in one transaction; route marks it as waiting for its
// routing (MarkRouted ends the wait, Unrouted lists the waiting). A
// reception already recorded (same Source) is not written again: it
// returns its id with ErrExists.
func (s *DB) PutReceived(f *inbox.Fax, route bool, deliveries ...*Delivery) (inbox.ID, error) {
	if !f.ID.Valid() || f.Source == "" {
		return "", fmt.Errorf("store: put received fax %q: no valid id or source", f.ID)
	}
	var have inbox.ID
	err := s.db.Update(func(tx *bolt.Tx) error {
		in, src, err := inboxBuckets(tx)
		if err != nil {
			return err
		}
		if v := src.Get([]byte(f.Source)); v != nil {
			have = inbox.ID(v)
			return ErrExists
		}
		if in.Get([]byte(f.ID)) != nil {
			return fmt.Errorf("store: received fax id %s in use", f.ID)
		}
		if err := putReceived(in, &receivedRecord{Fax: f, Unrouted: route}); err != nil {
			return err
		}
		if err := src.Put([]byte(f.Source), []byte(f.ID)); err != nil {
			return err
		}
		return putDeliveries(tx, deliveries)
	})
	if errors.Is(err, ErrExists) {
		return have, fmt.Errorf("%w: source %s is %s", ErrExists, f.Source, have)
	}
	if err != nil {
		return "", fmt.Errorf("store: put received fax %s: %w", f.ID, diskErr(err))
	}
	return f.ID, nil
}

func putReceived(in *bolt.Bucket, r *receivedRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return in.Put([]byte(r.Fax.ID), b)
}

func getReceived(tx *bolt.Tx, id inbox.ID) (*receivedRecord, error) {
	b := tx.Bucket(bInbox)
	if b == nil {
		return nil, ErrNotFound
	}
	v := b.Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	var r receivedRecord
	if err := json.Unmarshal(v, &r); err != nil || r.Fax == nil {
		return nil, fmt.Errorf("store: decode received fax %s: %v", id, err)
	}
	return &r, nil
}

// liveReceived is getReceived for a fax that is not deleted: a deleted one
// is ErrNotFound.
func liveReceived(tx *bolt.Tx, id inbox.ID) (*receivedRecord, error) {
	r, err := getReceived(tx, id)
	if err == nil && r.Deleted {
		return nil, ErrNotFound
	}
	return r, err
}

// GetReceived returns received fax id (ErrNotFound when there is none or
// it was deleted).
func (s *DB) GetReceived(id inbox.ID) (*inbox.Fax, error) {
	var f *inbox.Fax
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := liveReceived(tx, id)
		if err != nil {
			return err
		}
		f = r.Fax
		return nil
	})
	return f, err
}

// UpdateReceived applies change to received fax id in one transaction and
// returns the result; an error from change aborts and is returned.
func (s *DB) UpdateReceived(id inbox.ID, change func(f *inbox.Fax) error) (*inbox.Fax, error) {
	var out *inbox.Fax
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := liveReceived(tx, id)
		if err != nil {
			return err
		}
		if err := change(r.Fax); err != nil {
			return err
		}
		out = r.Fax
		return putReceived(tx.Bucket(bInbox), r)
	})
	if err != nil {
		return nil, fmt.Errorf("store: update received fax %s: %w", id, err)
	}
	return out, nil
}

// DeleteReceived deletes received fax id: the record is marked deleted (it
// keeps its place in the source index) and, once that is committed, its
// documents are removed.
func (s *DB) DeleteReceived(id inbox.ID, now time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := liveReceived(tx, id)
		if err != nil {
			return err
		}
		r.Deleted, r.DeletedAt = true, &now
		r.Fax.PDF, r.Fax.TIFF = false, false
		return putReceived(tx.Bucket(bInbox), r)
	})
	if err != nil {
		return fmt.Errorf("store: delete received fax %s: %w", id, err)
	}
	if err := os.RemoveAll(s.DocDir(string(id))); err != nil {
		return fmt.Errorf("store: delete received fax %s: %w", id, err)
	}
	return nil
}

// ListReceived returns received faxes newest first and the cursor of the
// next page ("" at the end). Ids sort by creation time, so Since ends the
// scan early.
func (s *DB) ListReceived(f inbox.Filter) ([]*inbox.Fax, inbox.ID, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	out := []*inbox.Fax{}
	var next inbox.ID
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bInbox)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		if f.Cursor != "" {
			c.Seek([]byte(f.Cursor))
			k, v = c.Prev()
		} else {
			k, v = c.Last()
		}
		for ; k != nil; k, v = c.Prev() {
			var r receivedRecord
			if err := json.Unmarshal(v, &r); err != nil || r.Fax == nil {
				return fmt.Errorf("store: decode received fax %s: %v", k, err)
			}
			if !f.Since.IsZero() && r.Fax.CreatedAt.Before(f.Since) {
				return nil
			}
			if r.Deleted || !f.Match(r.Fax) {
				continue
			}
			if len(out) == f.Limit {
				next = out[len(out)-1].ID
				return nil
			}
			out = append(out, r.Fax)
		}
		return nil
	})
	return out, next, err
}

// MarkRouted records that received fax id was routed.
func (s *DB) MarkRouted(id inbox.ID) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := getReceived(tx, id)
		if err != nil || !r.Unrouted {
			return err
		}
		r.Unrouted = false
		return putReceived(tx.Bucket(bInbox), r)
	})
	if err != nil {
		return fmt.Errorf("store: mark received fax %s routed: %w", id, err)
	}
	return nil
}

// RouteReceived ends the wait of received fax id for its routing and
// queues the routing's deliveries, in one transaction. It reports false
// (and queues nothing) when the fax was routed before or is deleted, so a
// routing repeated after a crash delivers once.
func (s *DB) RouteReceived(id inbox.ID, deliveries ...*Delivery) (bool, error) {
	queued := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := getReceived(tx, id)
		if err != nil || !r.Unrouted || r.Deleted {
			return err
		}
		r.Unrouted = false
		if err := putReceived(tx.Bucket(bInbox), r); err != nil {
			return err
		}
		queued = true
		return putDeliveries(tx, deliveries)
	})
	if err != nil {
		return false, fmt.Errorf("store: route received fax %s: %w", id, diskErr(err))
	}
	return queued, nil
}

// Unrouted returns the received faxes (not deleted) waiting for their
// routing, oldest first.
func (s *DB) Unrouted() ([]inbox.ID, error) {
	var out []inbox.ID
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bInbox).ForEach(func(k, v []byte) error {
			var r receivedRecord
			if json.Unmarshal(v, &r) == nil && r.Fax != nil && r.Unrouted && !r.Deleted {
				out = append(out, r.Fax.ID)
			}
			return nil
		})
	})
	return out, err
}

// CountUnread returns how many received faxes are not marked read.
func (s *DB) CountUnread() (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bInbox)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r receivedRecord
			if err := json.Unmarshal(v, &r); err != nil || r.Fax == nil {
				return fmt.Errorf("store: decode received fax %s: %v", k, err)
			}
			if !r.Deleted && !r.Fax.Read {
				n++
			}
			return nil
		})
	})
	return n, err
}

// PurgeReceived deletes the documents of received faxes recorded before
// cutoff (the retention period) and marks them purged; it returns how many.
func (s *DB) PurgeReceived(cutoff time.Time) (int, error) {
	var due []inbox.ID
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bInbox)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r receivedRecord
			if json.Unmarshal(v, &r) == nil && r.Fax != nil && !r.Deleted && !r.Fax.Purged && r.Fax.CreatedAt.Before(cutoff) {
				due = append(due, r.Fax.ID)
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range due {
		if _, err := s.UpdateReceived(id, func(f *inbox.Fax) error {
			f.Purged, f.PDF, f.TIFF = true, false, false
			return nil
		}); err != nil {
			return n, err
		}
		if err := os.RemoveAll(s.DocDir(string(id))); err != nil {
			return n, fmt.Errorf("store: purge received fax %s: %w", id, err)
		}
		n++
	}
	return n, nil
}

// checkInbox adds the findings about the inbox buckets to Check: every
// record decodes, is stored under its own id and is named by its source's
// index entry; every index entry names an existing record.
func checkInbox(tx *bolt.Tx, add func(format string, a ...any)) {
	in, src := tx.Bucket(bInbox), tx.Bucket(bInboxSrc)
	if in == nil && src == nil {
		return
	}
	if in == nil || src == nil {
		add("only one of the inbox buckets exists")
		return
	}
	in.ForEach(func(k, v []byte) error {
		var r receivedRecord
		if err := json.Unmarshal(v, &r); err != nil || r.Fax == nil {
			add("received fax %s does not decode: %v", k, err)
			return nil
		}
		if string(r.Fax.ID) != string(k) {
			add("received fax stored under %s has id %s", k, r.Fax.ID)
		}
		if id := src.Get([]byte(r.Fax.Source)); !bytes.Equal(id, k) {
			add("received fax %s: its source %q is indexed as %q", k, r.Fax.Source, id)
		}
		return nil
	})
	src.ForEach(func(k, id []byte) error {
		if in.Get(id) == nil {
			add("inbox source %q names missing received fax %s", k, id)
		}
		return nil
	})
}

// inboxHas reports whether a received fax (deleted ones included) is
// stored under id; Check accepts outbox entries naming one.
func inboxHas(tx *bolt.Tx, id []byte) bool {
	b := tx.Bucket(bInbox)
	return b != nil && b.Get(id) != nil
}
