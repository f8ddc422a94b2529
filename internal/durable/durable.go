// Package durable is where silo writes a small file so that a crash leaves
// either the old contents or the new ones under the name, never a torn
// file: the data is written to a temporary file in the same directory,
// given its permissions, synced, and renamed over the name (or, to create
// only a file that is not there yet, linked to it); the directory is then
// synced, unless the caller can do without, so that the new name itself
// survives a power loss.
//
// Errors are the operating system's, naming the paths they concern (the
// temporary file's too): callers word them for their users, naming the file
// by what it is, with Cause for the reason without the path.
package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Options say how WriteFile writes. The zero value replaces the file with
// a private one (mode 0600) and syncs the directory.
type Options struct {
	// Perm is the file's permission bits; 0 means 0600. They are set on
	// the temporary file before the data is written, whatever the umask.
	Perm os.FileMode
	// NoDirSync leaves the directory unsynced: after a power loss the name
	// holds the old or the new contents (the new file's data is on disk
	// before the rename), and the rename reaches the disk with the file
	// system's next journal commit or the next sync of the directory. For a
	// caller that syncs the directory itself later, or whose file is
	// recovered without it.
	NoDirSync bool
	// Exclusive creates the file only if nothing is at the path: the
	// complete temporary file is linked into place, which, unlike a
	// rename, never replaces a file another process created meanwhile.
	// WriteFile then fails with an error matching fs.ErrExist and leaves
	// what is there as it is.
	Exclusive bool
	// NoFollow refuses a symbolic link at the path (an error matching
	// ErrLink, the link and what it points to left as they are) rather
	// than replacing the link with the file. Without it the link itself is
	// replaced; the file it points to is never written either way. The
	// path is checked before the rename: a link swapped in between is
	// replaced, not followed.
	NoFollow bool
	// BeforeSync, if set, is called with the path of the temporary file
	// and then of the directory, just before each is synced: tests count
	// the syncs, or stop the process there, with it.
	BeforeSync func(path string)
}

// ErrLink is the reason WriteFile refuses a symbolic link at the path
// with Options.NoFollow.
var ErrLink = errors.New("a symbolic link is in its place (never followed)")

// tempPrefix starts the name of every temporary file, followed by the name
// of the file it is for, a dash and random characters (Temps).
const tempPrefix = ".tmp-"

// WriteFile writes data to the file at path, as o says: a temporary file
// in the same directory (mode o.Perm), synced, renamed over path (linked,
// with o.Exclusive), and the directory synced. A failed write leaves path
// as it was and no temporary file behind; a crash leaves path as it was or
// with all of data, and at most a temporary file (Temps).
func WriteFile(path string, data []byte, o Options) error {
	perm := o.Perm
	if perm == 0 {
		perm = 0o600
	}
	if o.NoFollow && !o.Exclusive { // a link never replaces anything
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return &fs.PathError{Op: "write", Path: path, Err: ErrLink}
		}
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a rename, there is nothing to remove
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		o.beforeSync(tmp)
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if o.Exclusive {
		if err := os.Link(tmp, path); err != nil {
			return err
		}
		// Before the directory sync, so that the sync takes the removal
		// of the temporary name along with the new one.
		os.Remove(tmp)
	} else if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if o.NoDirSync {
		return nil
	}
	o.beforeSync(dir)
	return SyncDir(dir)
}

func (o Options) beforeSync(path string) {
	if o.BeforeSync != nil {
		o.BeforeSync(path)
	}
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

// Temps returns the temporary files of writes to path that have not been
// renamed or linked into place: those of writes in flight, and those a
// crash left behind. A caller whose file holds secrets shreds the ones old
// enough not to be in flight.
func Temps(path string) []string {
	// The pattern is the name's only variable part; a name with glob
	// characters in it is not one silo writes.
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), tempPrefix+filepath.Base(path)+"-*"))
	return tmps
}

// Cause returns the reason of a file system error without the paths it
// names ("permission denied" for "open /srv/silo/.tmp-x-123: permission
// denied"), for a message that names the file by what it is; any other
// error as it is.
func Cause(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	var se *os.SyscallError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	case errors.As(err, &se):
		return se.Err
	}
	return err
}
