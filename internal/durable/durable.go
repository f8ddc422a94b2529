// Package durable writes small files so that a crash leaves either the old
// contents or the new ones under the name, never a torn file: the data is
// written to a temporary file in the same directory, synced, and renamed
// over the name; the directory is then synced, when asked, so that the
// rename itself survives a power loss.
//
// Errors are the operating system's (with the path they name): callers word
// them for their users.
package durable

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, with permissions perm: temporary file,
// fsync, rename, and, with syncDir, an fsync of the directory. Without
// syncDir the name holds the old or the new contents after a crash, and the
// rename reaches the disk with the file system's next journal commit or the
// next sync of the directory. A failed write leaves path as it was and no
// temporary file behind.
func WriteFile(path string, data []byte, perm os.FileMode, syncDir bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a rename, there is nothing to remove
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil || !syncDir {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs directory dir, so that the names created, renamed or
// removed in it survive a power loss.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
