package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// PutState stores v, as JSON, under name: small state other parts of the box
// keep across restarts (the learned capacity of destinations). It is
// durable when PutState returns.
func (s *DB) PutState(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: state %s: %w", name, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bState).Put([]byte(name), b) })
	if err != nil {
		return fmt.Errorf("store: state %s: %w", name, err)
	}
	return nil
}

// GetState reads the state stored under name into v; it reports false (and
// leaves v alone) when there is none.
func (s *DB) GetState(name string, v any) (bool, error) {
	var b []byte
	s.db.View(func(tx *bolt.Tx) error {
		if got := tx.Bucket(bState).Get([]byte(name)); got != nil {
			b = append([]byte(nil), got...)
		}
		return nil
	})
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("store: state %s: %w", name, err)
	}
	return true, nil
}
