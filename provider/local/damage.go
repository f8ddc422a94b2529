package local

// Damaged account files. A file of one account that cannot be used as it is
// (a store file that fails checkStore or makes bbolt panic, a key ring,
// config or secrets file that does not decode, something else in a file's
// place) fails that account alone, with a DamageError naming the file and
// what to do, and is remembered: later calls fail at once while the file is
// the same one (same inode, size and modification time), and are tried
// again once it was replaced (restored from a backup). Damaged reports it,
// so the platform can answer the account's requests with 503 without
// running its functions.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
	"go.etcd.io/bbolt"
)

// DamageError says that a file of an account is damaged. The error a caller
// gets is a *silo.Error (CodeUnavailable) whose cause is a *DamageError.
type DamageError struct {
	Account silo.AccountID
	File    string // the file's path in the account directory, such as "data.db" or "blobs/uploads"
	Path    string // the file's path
	Reason  string // what is wrong with it
	Remedy  string // what the operator should do
	Err     error  // the underlying error, if any (envelope.ErrDecrypt for a value that does not open)
}

func (e *DamageError) Unwrap() error { return e.Err }

func (e *DamageError) Error() string {
	return fmt.Sprintf("%s of account %s is damaged: %s; %s", e.Path, e.Account, e.Reason, e.Remedy)
}

// remedies says what to do about a damaged file, by file name.
var remedies = map[string]string{
	fileDB:         "restore it from a backup of the data dir (see docs/operations.md); the other accounts are not affected",
	fileDataKey:    "restore it from a backup of the data dir; master.key is not at fault, and without this file the account's secrets cannot be read",
	fileStorageKey: "restore it and data.key together from a backup of the data dir; without it the account's tables, blobs and logs cannot be read",
	fileConfig:     "restore it from a backup of the data dir (see docs/operations.md)",
	fileSecrets:    "restore it from a backup of the data dir, or move it away and set each of the account's secrets again (silo secret set)",
	fileResources:  "restore it from a backup of the data dir (see docs/operations.md)",
	dirBlobs:       "restore it from a backup of the data dir; it must be a directory holding one directory per bucket",
}

// remedyBucket says what to do about a missing bucket directory
// (blobs/<bucket>).
const remedyBucket = "restore it from a backup of the data dir (see docs/operations.md); the other accounts are not affected"

// damage is one damaged file, as it was when found damaged.
type damage struct {
	fi  os.FileInfo // nil: the file was not there (or not readable)
	err error       // what callers get: a *silo.Error caused by a *DamageError
}

// acctDamage is the damaged files of one account, by file name.
type acctDamage struct {
	mu    sync.Mutex
	files map[string]*damage
}

// markDamaged records that the file name of account id is damaged and
// returns the error to report, once per file logged as an error.
func (p *Provider) markDamaged(id silo.AccountID, name, reason string) error {
	return p.markDamagedErr(id, name, reason, nil)
}

// markDamagedErr is markDamaged with the underlying error cause.
func (p *Provider) markDamagedErr(id silo.AccountID, name, reason string, cause error) error {
	path := filepath.Join(p.accounts, string(id), name)
	remedy, ok := remedies[name]
	if !ok && strings.HasPrefix(name, dirBlobs+"/") {
		remedy = remedyBucket
	}
	de := &DamageError{Account: id, File: name, Path: path, Reason: reason, Remedy: remedy, Err: cause}
	err := &silo.Error{
		Code:    silo.CodeUnavailable,
		Message: fmt.Sprintf("account %s is out of service: its file %s is damaged (%s); %s", id, name, reason, de.Remedy),
		Err:     de,
	}
	fi, _ := os.Lstat(path)
	v, _ := p.damaged.LoadOrStore(id, &acctDamage{files: map[string]*damage{}})
	ad := v.(*acctDamage)
	ad.mu.Lock()
	old := ad.files[name]
	ad.files[name] = &damage{fi: fi, err: err}
	ad.mu.Unlock()
	if old == nil || old.err.Error() != err.Error() {
		p.log.Error("account file damaged; the account is out of service until it is restored", "account", id, "file", path, "reason", reason)
	}
	return err
}

// damagedFile returns the recorded damage of the file name of account id if
// the file is still the one found damaged; else it forgets the record and
// returns nil.
func (p *Provider) damagedFile(id silo.AccountID, name string) error {
	v, ok := p.damaged.Load(id)
	if !ok {
		return nil
	}
	ad := v.(*acctDamage)
	ad.mu.Lock()
	d := ad.files[name]
	ad.mu.Unlock()
	if d == nil {
		return nil
	}
	fi, err := os.Lstat(filepath.Join(p.accounts, string(id), name))
	same := d.fi == nil && err != nil || d.fi != nil && err == nil && sameFile(d.fi, fi) && d.fi.Mode() == fi.Mode()
	if same {
		return d.err
	}
	ad.mu.Lock()
	if ad.files[name] == d {
		delete(ad.files, name)
	}
	ad.mu.Unlock()
	return nil
}

// Damaged returns the error of a damaged file of the account that this
// Provider found in use and that is still in place (a *silo.Error with
// CodeUnavailable, caused by a *DamageError), or nil. It makes no system
// call for an account with no damaged file recorded. Check looks at every
// file of an account.
func (p *Provider) Damaged(id silo.AccountID) error {
	v, ok := p.damaged.Load(id)
	if !ok {
		return nil
	}
	ad := v.(*acctDamage)
	ad.mu.Lock()
	names := make([]string, 0, len(ad.files))
	for n := range ad.files {
		names = append(names, n)
	}
	ad.mu.Unlock()
	for _, n := range names {
		if err := p.damagedFile(id, n); err != nil {
			return err
		}
	}
	return nil
}

// openStoreFile is bbolt's OpenFile for an account's store: it refuses
// anything but a regular file (a link is not followed), takes the file's
// lock as bbolt would (waiting up to storeLockWait for another process, or
// until ctx ends; either is bbolt.ErrTimeout) and
// checks the file's structure (checkStore) under that lock, before bbolt
// maps it. bbolt then takes the same lock on the same open file, which it
// already holds. *fi is set to the file's FileInfo.
func openStoreFile(ctx context.Context, name string, flag int, perm os.FileMode, fi *os.FileInfo) (*os.File, error) {
	f, err := os.OpenFile(name, flag|syscall.O_NOFOLLOW, perm)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EISDIR) {
			return nil, damagedf("not a regular file (%v)", err)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, damagedf("not a regular file (%s)", st.Mode().Type())
	}
	// O_NOFOLLOW covers the file itself; the account directory above it must
	// not be a link either.
	dir := filepath.Dir(name)
	if _, err := noLinks(filepath.Dir(dir), filepath.Base(dir)); err != nil {
		f.Close()
		return nil, err
	}
	deadline := time.Now().Add(storeLockWait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, bbolt.ErrTimeout
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, bbolt.ErrTimeout
		}
	}
	if st, err = f.Stat(); err == nil { // under the lock: the file as bbolt sees it
		err = checkStore(f, st.Size())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	*fi = st
	return f, nil
}

// openBolt opens the store file at path with opts, its OpenFile set to
// openStoreFile (which waits for another process's lock until ctx ends at
// the latest). A panic in bbolt on this goroutine (a damage checkStore
// did not see) is returned as a *storeDamage; the file is
// closed, so its lock is released.
func openBolt(ctx context.Context, path string, opts bbolt.Options) (db *bbolt.DB, fi os.FileInfo, err error) {
	var f *os.File
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		var err error
		f, err = openStoreFile(ctx, name, flag, perm, &fi)
		return f, err
	}
	defer func() {
		if r := recover(); r != nil {
			if f != nil {
				f.Close()
			}
			db, fi, err = nil, nil, damagedf("bbolt failed on it: %v", r)
		}
	}()
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	db, err = bbolt.Open(path, fileMode, &opts)
	if err != nil && isBoltFormatError(err) {
		err = damagedf("%v", err)
	}
	return db, fi, err
}

// isBoltFormatError reports whether bbolt refused the file for its content.
func isBoltFormatError(err error) bool {
	return errors.Is(err, bbolt.ErrInvalid) || errors.Is(err, bbolt.ErrVersionMismatch) || errors.Is(err, bbolt.ErrChecksum)
}

// runTx runs fn in a read-only or read-write transaction of db, the store
// of account a. A panic in bbolt (or a memory fault on its map) on this
// goroutine is recovered: the store is taken out of service, the account
// marked damaged, and the DamageError returned.
func (p *Provider) runTx(a *account, s *store, write bool, fn func(*bbolt.Tx) error) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		p.mu.Lock()
		stale := (*store)(nil)
		if a.db == s {
			stale = p.detachLocked(a)
		}
		p.mu.Unlock()
		if stale != nil {
			go func() {
				defer func() { _ = recover() }()
				stale.abandon() // no checkpoint: its log is replayed by the next opener
			}()
		}
		err = p.markDamaged(a.id, fileDB, fmt.Sprintf("the store faulted while in use: %v", r))
	}()
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	if write {
		return s.db.Update(fn)
	}
	return s.db.View(fn)
}

// fileDamage is the error readJSON returns for a file that does not decode.
type fileDamage struct{ name, reason string }

func (e *fileDamage) Error() string { return e.name + " is damaged: " + e.reason }

// storeErr turns an error opening account a's store into the one to
// return: damage is recorded and reported as a DamageError.
func (p *Provider) storeErr(a *account, err error) error { return p.damageErr(a.id, err) }

// damageErr records a damaged file of account id that err reports (a
// *storeDamage or *fileDamage), and returns the DamageError in its place;
// an error of the file system is replaced by what a user should see
// (osErr); other errors are returned as they are.
func (p *Provider) damageErr(id silo.AccountID, err error) error {
	var sd *storeDamage
	if errors.As(err, &sd) {
		return p.markDamaged(id, fileDB, sd.reason)
	}
	var fd *fileDamage
	if errors.As(err, &fd) {
		return p.markDamaged(id, fd.name, fd.reason)
	}
	var se *silo.Error
	if errors.As(err, &se) && se.Message != "" {
		return err
	}
	if oe := p.osErr(id, err); oe != nil {
		return oe
	}
	return err
}

// osErr returns the error a user sees in place of err when err is an error
// of the file system about a file of account id, or nil when it is not.
// err names the file's full path in the system's words ("stat /…/data.key:
// not a directory"); it stays the cause, for logs, and the message names the
// account, the file within its directory and what to do. Something in the
// place of a file (a directory, a link) is damage (markDamagedErr); a file
// where a directory should be (the account's own directory, or one in it)
// stops every file beneath it.
func (p *Provider) osErr(id silo.AccountID, err error) error {
	var path string
	var pe *fs.PathError
	var le *os.LinkError
	var errno syscall.Errno
	switch {
	case errors.As(err, &pe):
		path = pe.Path
	case errors.As(err, &le):
		path = le.Old
	case errors.As(err, &errno):
	default:
		return nil
	}
	name := "its directory"
	if rel, rerr := filepath.Rel(filepath.Join(p.accounts, string(id)), path); path != "" && rerr == nil && !strings.HasPrefix(rel, "..") {
		if rel != "." {
			name = rel
		}
	} else if path != "" {
		name = filepath.Base(path)
	}
	switch {
	case errors.Is(err, syscall.ENOTDIR):
		return &silo.Error{Code: silo.CodeUnavailable, Message: fmt.Sprintf("the local files of account %s are damaged (%s cannot be reached: a file is where a directory should be); move that file away and restore the account's directory from a backup of the data dir (see docs/operations.md), or delete the account", id, name), Err: err}
	case errors.Is(err, syscall.EISDIR):
		return p.markDamagedErr(id, name, "a directory is in its place", err)
	case errors.Is(err, syscall.ELOOP):
		return p.markDamagedErr(id, name, "a link is in its place (never followed)", err)
	case errors.Is(err, fs.ErrPermission):
		return &silo.Error{Code: silo.CodeUnavailable, Message: fmt.Sprintf("the local files of account %s cannot be used (%s: permission denied); give the user silo runs as read and write access to the data dir", id, name), Err: err}
	}
	why := "an error of the file system"
	if errors.As(err, &errno) {
		why = errno.Error()
	}
	return &silo.Error{Code: silo.CodeUnavailable, Message: fmt.Sprintf("the local files of account %s could not be used (%s: %s); check the disk, and if it persists restore the data dir from a backup (see docs/operations.md)", id, name, why), Err: err}
}

// wrappedKeySize is the size of a data key wrapped by a master key.
const wrappedKeySize = envelope.KeySize + envelope.Overhead

// unwrapFailed returns the error to report when the ring entry e of account
// id opens under no master key, naming the file at fault: a key wrapped by
// a master key that master.key holds, or one too short or long to be a
// wrapped key, means data.key is damaged (restoring master.key would not
// help); a key wrapped by a master key master.key does not hold means
// master.key is not the one it needs.
func (p *Provider) unwrapFailed(id silo.AccountID, e ringEntry, err error) error {
	held := false
	for _, m := range p.masterKeys() {
		held = held || m.Fingerprint() == e.master
	}
	switch {
	case held:
		return p.markDamagedErr(id, fileDataKey, fmt.Sprintf("data key %s does not open with master key %s, which wrapped it", e.id, e.master), err)
	case e.master == "" && len(e.wrapped) != wrappedKeySize:
		return p.markDamaged(id, fileDataKey, "it holds neither a key ring nor a wrapped key")
	case e.master != "":
		return silo.Errorf(silo.CodeFailedCheck, "the data key of account %s was wrapped by master key %s, which %s does not hold; restore the master.key that holds it from a backup: %w", id, e.master, p.masterPath, err)
	}
	return silo.Errorf(silo.CodeFailedCheck, "the data key of account %s does not open with master key %s: either %s is damaged (restore it from a backup) or %s is not the one it was created under (restore that one): %w", id, p.currentMaster().Fingerprint(), filepath.Join(p.accounts, string(id), fileDataKey), p.masterPath, err)
}

// secretFailed returns the error to report when the value of secret name of
// account id does not open: sealed under a key the ring does not hold
// (stale), data.key is not the ring secrets.json was written with, or a
// rotation replaced both between two reads (the caller retries); else the
// value in secrets.json is damaged.
func (p *Provider) secretFailed(id silo.AccountID, file, name, keyID string, stale bool) error {
	if stale { // maybe a rotation between two reads: the caller retries, so nothing is recorded
		return silo.Errorf(silo.CodeUnavailable, "secret %s of account %s is sealed under data key %s, which %s does not hold; if this persists, data.key and secrets.json are not from the same moment: restore both from the same backup: %w", name, id, keyID, filepath.Join(p.accounts, string(id), fileDataKey), envelope.ErrDecrypt)
	}
	if file != fileSecrets {
		return p.markDamagedErr(id, file, "the storage key in it does not decrypt", envelope.ErrDecrypt)
	}
	return p.markDamagedErr(id, fileSecrets, fmt.Sprintf("the value of secret %s does not decrypt", name), envelope.ErrDecrypt)
}

// checkBlobDirs checks that the account's blobs directory and the bucket's
// directory in it, where present, are directories and not links (a link
// would lead the bucket's root elsewhere, another account's bucket
// included): else the account's blobs are damaged. A missing one is left
// to the caller (the bucket does not exist).
func (p *Provider) checkBlobDirs(a *account, bucket string) error {
	for _, path := range []string{filepath.Join(a.dir, dirBlobs), filepath.Join(a.dir, dirBlobs, bucket)} {
		fi, err := os.Lstat(path)
		if err != nil {
			return nil
		}
		if !fi.IsDir() {
			rel, _ := filepath.Rel(a.dir, path)
			return p.markDamaged(a.id, dirBlobs, fmt.Sprintf("%s is a %s, not a directory", rel, kindOf(fi)))
		}
	}
	return nil
}

func kindOf(fi os.FileInfo) string {
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return "link"
	case fi.Mode().IsRegular():
		return "file"
	}
	return fi.Mode().Type().String()
}

// ringDamage says why a decoded key ring cannot be right, or "": every
// wrapped key has the size of one.
func ringDamage(r keyRing) string {
	for _, e := range r {
		if len(e.wrapped) != wrappedKeySize {
			if e.master == "" {
				return "it holds neither a key ring nor a wrapped key"
			}
			return fmt.Sprintf("data key %s is %d bytes, not %d", e.id, len(e.wrapped), wrappedKeySize)
		}
	}
	return ""
}
