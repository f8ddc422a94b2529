package local

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/durable"
)

const (
	dirMode  = 0o700
	fileMode = 0o600
)

// writeFile replaces dir/name with data durably: it writes a temporary file
// in dir, syncs it, renames it over name and syncs dir. A full disk is a
// CodeUnavailable error naming the file (diskErr).
func writeFile(dir, name string, data []byte) error {
	return durableWrite(dir, name, data, durable.Options{})
}

// replaceFile is writeFile without the directory sync: the contents are on
// disk before the rename, so after a crash name holds either the old or the
// new contents, never a torn file, but the rename itself is durable only
// once dir is synced. The caller syncs dir before anything that depends on
// the new contents (the manifest that records them: ApplyBatch).
func replaceFile(dir, name string, data []byte) error {
	return durableWrite(dir, name, data, durable.Options{NoDirSync: true})
}

// durableWrite writes dir/name with durable.WriteFile (mode 0600), its
// syncs counted (onSync).
func durableWrite(dir, name string, data []byte, o durable.Options) error {
	path := filepath.Join(dir, name)
	o.Perm = fileMode
	o.BeforeSync = countSync
	if err := durable.WriteFile(path, data, o); err != nil {
		return diskErr(path, fmt.Errorf("write %s: %w", name, err))
	}
	return nil
}

// writeJSON writes v as JSON to dir/name with writeFile.
func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return writeFile(dir, name, append(b, '\n'))
}

// readJSON decodes dir/name into v; a missing file leaves v untouched.
func readJSON(dir, name string, v any) error {
	_, err := readJSONFound(dir, name, v)
	return err
}

// readJSONFound is readJSON that also reports whether the file was there.
func readJSONFound(dir, name string, v any) (bool, error) {
	b, err := readNoFollow(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if errors.Is(err, syscall.EISDIR) {
		return true, &fileDamage{name: name, reason: "a directory is in its place"}
	}
	if errors.Is(err, syscall.ELOOP) {
		return true, &fileDamage{name: name, reason: "a link is in its place (never followed)"}
	}
	if err != nil {
		return true, fmt.Errorf("read %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, &fileDamage{name: name, reason: "not valid JSON: " + err.Error()}
	}
	return true, nil
}

// readNoFollow reads the file at path; a link there is not followed (ELOOP).
func readNoFollow(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// diskErr turns an error writing the file at path into the one to report:
// a full disk, an exceeded quota or a read-only file system names the file
// and what to do rather than passing as an internal error.
func diskErr(path string, err error) error {
	var why string
	switch {
	case errors.Is(err, syscall.ENOSPC):
		why = "the disk is full (no space left on device); free space on the file system that holds it, then retry"
	case errors.Is(err, syscall.EDQUOT):
		why = "the disk quota is exceeded; free space or raise the quota, then retry"
	case errors.Is(err, syscall.EROFS):
		why = "the file system is read-only; remount it read-write, then retry"
	default:
		return err
	}
	return &silo.Error{Code: silo.CodeUnavailable, Message: fmt.Sprintf("cannot write %s: %s", path, why), Err: err}
}

// onSync, if set, is called with the path of every file or directory the
// provider syncs itself, before the sync (bbolt's own syncs inside its
// commits are not seen). Tests count onboarding's syncs with it
// (TestOnboardingSyncs); it is never set otherwise.
var onSync atomic.Pointer[func(path string)]

func countSync(path string) {
	if f := onSync.Load(); f != nil {
		(*f)(path)
	}
}

// syncFile syncs f (a file or a directory) to disk.
func syncFile(f *os.File) error {
	countSync(f.Name())
	return f.Sync()
}

func syncDir(dir string) error {
	countSync(dir)
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// shred overwrites the file at path with random bytes of the same length,
// syncs it and removes it. A missing file is not an error, nor is a file
// where a directory of path should be, or a directory at path: no key is
// there to destroy (the caller removes the account's directory next).
func shred(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) {
		return nil
	}
	if errors.Is(err, syscall.ELOOP) { // a link in a key's place: remove it, never write its target
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("shred %s: %w", path, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("shred %s: %w", path, err)
	}
	st, err := f.Stat()
	if err == nil {
		junk := make([]byte, st.Size())
		rand.Read(junk)
		_, err = f.WriteAt(junk, 0)
	}
	if err == nil {
		err = syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("shred %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("shred %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// openNoFollow opens a file as os.OpenFile does (bbolt opens the store file
// through it), but refuses a symbolic link in its place or in place of its
// directory. The check follows the open and compares what was opened, so a
// link swapped in and out around the open is caught too.
func openNoFollow(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, flag|syscall.O_NOFOLLOW, perm)
	if errors.Is(err, syscall.ELOOP) {
		return nil, errLink(name)
	}
	if err != nil {
		return nil, err
	}
	if afterOpen != nil {
		afterOpen(name)
	}
	dir, base := filepath.Split(name)
	dir = filepath.Clean(dir)
	if _, err := noLinks(filepath.Dir(dir), filepath.Base(dir)); err != nil {
		f.Close()
		return nil, err
	}
	got, err := f.Stat()
	if err == nil {
		var want os.FileInfo
		if want, err = os.Lstat(name); err == nil && !os.SameFile(got, want) {
			err = errLink(name)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", base, err)
	}
	return f, nil
}

// afterOpen, if set (by tests only), is called between opening a file or
// bucket and checking it for links, where a link swapped out again would
// have to be caught.
var afterOpen func(path string)

// beforeOpen, if set (by tests only), is called after a bucket's directories
// were checked and just before the bucket is opened: a link swapped in there
// is what the check after the open must catch.
var beforeOpen func(path string)

func errLink(path string) error {
	return silo.Errorf(silo.CodeInternal, "%s is a symbolic link (or was replaced while opened); silo follows no link in an account's directory tree: replace it with the directory or file it should be", path)
}

// noLinks checks that base/parts[0], base/parts[0]/parts[1], ... are each a
// directory and none a symbolic link (base itself is the operator's and
// trusted), and returns the information of the last.
func noLinks(base string, parts ...string) (os.FileInfo, error) {
	fi, err := os.Lstat(base)
	p := base
	for i := 0; err == nil; i++ {
		if i > 0 && (fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir()) {
			return nil, errLink(p)
		}
		if i == len(parts) {
			return fi, nil
		}
		p = filepath.Join(p, parts[i])
		fi, err = os.Lstat(p)
	}
	return nil, err
}

// checkPrivate makes sure group and others cannot enter the data directory:
// every file under it is 0600, but a directory they can list and traverse
// shows account IDs and is one chmod away from exposing the files. A
// directory open to them (an older silo, or one created by hand) is closed
// to them (chmod go-rwx), and the change logged; if that fails, New refuses
// to start.
func checkPrivate(dir string, log *slog.Logger) error {
	fi, err := os.Stat(dir) // the operator may link it elsewhere
	if err != nil {
		return fmt.Errorf("local provider: %w", err)
	}
	if !fi.IsDir() {
		return silo.Errorf(silo.CodeFailedCheck, "local provider: %s is not a directory; give the provider a directory of its own", dir)
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(dir, perm&^0o077); err != nil {
		return silo.Errorf(silo.CodeFailedCheck, "local provider: data directory %s has mode %04o, open to group or others, and cannot be changed (%v); run chmod 700 %s", dir, perm, err, dir)
	}
	log.Warn("data directory was open to group or others; closed it", "dir", dir, "was", fmt.Sprintf("%04o", perm), "now", fmt.Sprintf("%04o", perm&^0o077))
	return nil
}

// scrub overwrites the whole of f with zeros and syncs it.
func scrub(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(make([]byte, st.Size()), 0); err != nil {
		return err
	}
	return syncFile(f)
}
