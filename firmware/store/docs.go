package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// ErrTooLarge is returned by WriteDocument when the content exceeds the limit.
var ErrTooLarge = errors.New("store: document too large")

// ErrDiskFull is returned when the data directory has no room.
var ErrDiskFull = errors.New("store: disk full")

// WriteDocument copies at most limit bytes of r into name inside job id's
// document directory. It returns the size and the SHA-256. The file is not
// synced here: Create makes it durable together with the job's record. On
// any error the partial file is removed.
func (s *DB) WriteDocument(id, name string, r io.Reader, limit int64) (int64, string, error) {
	dir := s.DocDir(id)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, "", diskErr(fmt.Errorf("store: %w", err))
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return 0, "", diskErr(fmt.Errorf("store: %w", err))
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = ErrTooLarge
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		if errors.Is(err, ErrTooLarge) {
			return n, "", err
		}
		return n, "", diskErr(fmt.Errorf("store: write %s: %w", path, err))
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// RemoveDocuments deletes job id's document directory.
func (s *DB) RemoveDocuments(id string) error { return os.RemoveAll(s.DocDir(id)) }

func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}

// FreeBytes returns the free space of the data directory's filesystem.
func (s *DB) FreeBytes() (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// DiskUsed returns the fraction of the data filesystem in use (0..1).
func (s *DB) DiskUsed() (float64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return 0, err
	}
	if st.Blocks == 0 {
		return 0, nil
	}
	return 1 - float64(st.Bavail)/float64(st.Blocks), nil
}
