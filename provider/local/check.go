package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	silo "github.com/silo-run/silo"
)

// CheckAccount looks at every file of the account and returns the damage
// it finds (errors.Join of *silo.Error values, CodeUnavailable, each caused
// by a *DamageError naming the file and what to do), or nil. It reads
// data.key (and unwraps each of its keys with the master key, which tells
// a damaged data.key from a wrong master.key), config.json, secrets.json
// (the form of each value; no value is decrypted) and resources.json, walks
// the structure of data.db (see checkStore) unless a process has it open
// (it was checked when it was opened), and checks that blobs/ and each
// bucket in it are directories. A data.db or bucket directory that is
// missing though the manifest records tables or the bucket (deleted: its
// data is gone) is damage too.
// Damage found is recorded as for damage found in use (see Damaged).
//
// # Errors
//
// CodeInvalid for a malformed ID; CodeNotFound if the account does not
// exist.
func (p *Provider) CheckAccount(ctx context.Context, id silo.AccountID) error {
	if err := parseID(id); err != nil {
		return err
	}
	a := p.ref(id)
	defer p.unref(a)
	if err := p.checkExists(a); err != nil {
		return err
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, p.damageErr(id, err))
		}
	}

	// data.key: decodes, and every key unwraps.
	if _, err := p.load(p.cacheOf(id), id, slotRing, true); err != nil {
		add(err)
	} else if r, err := p.readRingNoFollow(a); err != nil {
		add(err)
	} else {
		ok := true
		for _, e := range r {
			if _, _, err := p.unwrapEntry(id, e); err != nil {
				add(err)
				ok = false
				break
			}
		}
		// The storage key (storage.key, or a new account's copy in
		// data.key) opens with the ring.
		if _, _, err := p.keysOf(id, true); ok && err != nil {
			add(err)
		}
	}

	// The JSON files.
	for _, name := range []string{fileConfig, fileResources} {
		var m map[string]any
		add(a.readJSON(name, &m))
	}
	sec := map[string]string{}
	if err := readJSON(a.dir, fileSecrets, &sec); err != nil {
		add(err)
	} else {
		for name, v := range sec {
			if _, env, err := decodeSecret(v); err != nil || len(env) == 0 {
				add(&fileDamage{name: fileSecrets, reason: fmt.Sprintf("the value of secret %s is not an envelope", name)})
				break
			}
		}
	}

	// data.db, unless open: here (checked when opened) or elsewhere.
	add(p.checkStoreFile(ctx, a))

	// blobs/ and its buckets: each is a directory, and each bucket the
	// manifest records is there.
	blobs := filepath.Join(a.dir, dirBlobs)
	fi, err := os.Lstat(blobs)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		for _, e := range unjoin(p.lostBuckets(ctx, a, "")) {
			add(e)
		}
	}
	if err == nil {
		if !fi.IsDir() {
			add(p.markDamaged(id, dirBlobs, "it is a "+kindOf(fi)+", not a directory"))
		} else if ents, err := os.ReadDir(blobs); err == nil {
			for _, e := range ents {
				if err := p.checkBlobDirs(a, e.Name()); err != nil {
					add(err)
					break
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// readRingNoFollow reads and decodes data.key without following a link.
func (p *Provider) readRingNoFollow(a *account) (keyRing, error) {
	b, err := readNoFollow(filepath.Join(a.dir, fileDataKey))
	if err != nil {
		return nil, &fileDamage{name: fileDataKey, reason: err.Error()}
	}
	r, _, err := decodeAccount(b)
	if err != nil {
		return nil, &fileDamage{name: fileDataKey, reason: err.Error()}
	}
	if why := ringDamage(r); why != "" {
		return nil, &fileDamage{name: fileDataKey, reason: why}
	}
	return r, nil
}

// checkStoreFile checks account a's store file if no process has it open:
// one this process has open was checked when it was opened, and damage
// found in use since is recorded (Damaged); one another process has open
// is not checked here (nil: that process checks it).
func (p *Provider) checkStoreFile(ctx context.Context, a *account) error {
	if err := p.damagedFile(a.id, fileDB); err != nil {
		return err
	}
	if err := a.lockMu(ctx); err != nil {
		return err
	}
	defer a.mu.unlock()
	p.mu.Lock()
	open := a.db != nil
	p.mu.Unlock()
	path := filepath.Join(a.dir, fileDB)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		// Deleted (even while open here: the open store is the unlinked
		// file, which is gone once closed).
		err := p.lostStore(a)
		if fd := (*fileDamage)(nil); errors.As(err, &fd) {
			return nil // resources.json does not read: reported on its own
		}
		return err
	}
	if open {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // no tables yet (or deleted since the look above; the next check reports it)
	case errors.Is(err, syscall.ELOOP):
		return damagedf("not a regular file (a link; never followed)")
	case err != nil:
		return fmt.Errorf("check %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return damagedf("not a regular file (%s)", kindOf(st))
	}
	if st.Size() == 0 {
		return damagedf("it is empty (0 bytes)")
	}
	// A shared lock: no writer is in the middle of a commit.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil
		}
		return fmt.Errorf("check %s: %w", path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return checkStore(f, st.Size())
}

// unjoin returns the errors an errors.Join error holds, err alone if it is
// not one, or none for nil.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
