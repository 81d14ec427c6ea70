// Package atomicfile replaces files so that a reader, or the box after a
// power loss, sees either the old content or the new one, never a part.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with b: a temporary file in path's directory with
// mode perm, fsync, rename over path, fsync of the directory. When it
// returns nil the new content is durable; on error path is unchanged and
// no temporary file is left behind.
func Write(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = Rename(tmp.Name(), path, perm)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	return nil
}

// Rename makes src (a complete file, written by this process or another
// program) the durable content of dst: fsync of src, mode perm, rename, fsync
// of dst's directory. src and dst must be on one filesystem.
func Rename(src, dst string, perm os.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	err = f.Sync()
	f.Close()
	if err == nil {
		err = os.Chmod(src, perm)
	}
	if err == nil {
		err = os.Rename(src, dst)
	}
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	return syncDir(filepath.Dir(dst))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", dir, err)
	}
	return nil
}
