package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// tmpPrefix starts the names of blobs being written; keys may not use it.
const tmpPrefix = provider.TempPrefix

func errNoBucket(id silo.AccountID, bucket string) error {
	return silo.Errorf(silo.CodeNotFound, "bucket %q does not exist in account %s; declare it in silo.yaml", clip(bucket), id)
}

// bucket opens the root of a bucket of the account and returns it with the
// account's storage keys. No level of the path may be a symbolic link: the
// account directory, blobs/ and the bucket are each checked after the open,
// and the opened root must be the directory reached without links, so a
// link swapped in and out around the open is refused too.
func (d *data) bucket(ctx context.Context, bucket string) (*os.Root, *storageKeys, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if validateStorageName("bucket", bucket) != nil {
		return nil, nil, errNoBucket(d.id, bucket)
	}
	a := d.p.ref(d.id)
	defer d.p.unref(a)
	ring, sk, err := d.p.keysOf(d.id, false)
	if err != nil {
		return nil, nil, err
	}
	if err := d.p.checkBlobDirs(a, bucket); err != nil {
		return nil, nil, err
	}
	// The account exists now (a blob operation sees another process's
	// delete at once), and the keys are this data.key's: after another
	// process deleted and re-created the account, the cached ring may be
	// the previous one's for up to CacheRecheck, and a blob sealed under
	// it would never open again.
	fi, err := os.Stat(filepath.Join(a.dir, fileDataKey))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errNoAccount(d.id)
	}
	if err != nil {
		return nil, nil, d.p.damageErr(d.id, fmt.Errorf("account %s: %w", d.id, err))
	}
	if ring.fi == nil || !sameFile(ring.fi, fi) {
		if _, sk, err = d.p.keysOf(d.id, true); err != nil {
			return nil, nil, err
		}
	}
	if beforeOpen != nil {
		beforeOpen(filepath.Join(a.dir, dirBlobs, bucket))
	}
	root, err := os.OpenRoot(filepath.Join(a.dir, dirBlobs, bucket))
	if errors.Is(err, fs.ErrNotExist) {
		if err := d.p.lostBuckets(ctx, a, bucket); err != nil {
			return nil, nil, err // declared, and its directory deleted
		}
		return nil, nil, errNoBucket(d.id, bucket)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open bucket %s of %s: %w", bucket, d.id, err)
	}
	if afterOpen != nil {
		afterOpen(filepath.Join(a.dir, dirBlobs, bucket))
	}
	want, err := noLinks(d.p.accounts, string(d.id), dirBlobs, bucket)
	if err == nil {
		var got os.FileInfo
		if got, err = root.Stat("."); err == nil && !os.SameFile(got, want) {
			err = errLink(filepath.Join(a.dir, dirBlobs, bucket))
		}
	}
	if err != nil {
		root.Close()
		return nil, nil, err
	}
	return root, sk, nil
}

func errBlobLink(key, bucket string) error {
	return silo.Errorf(silo.CodeInvalid, "blob key %q in bucket %q names a link, not a blob", clip(key), bucket)
}

// keyLinks checks that no part of key before the last names a link in root
// (os.Root follows links that stay inside it): a link there would make the
// key an alias of another blob.
func keyLinks(root *os.Root, bucket, key string) error {
	for i := 0; i < len(key); i++ {
		if key[i] != '/' {
			continue
		}
		fi, err := root.Lstat(key[:i])
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return errBlobLink(key, bucket)
		}
	}
	return nil
}

// blobErr translates a filesystem error on key into a silo error.
func (d *data) blobErr(op, bucket, key string, err error) error {
	if se := (*silo.Error)(nil); errors.As(err, &se) {
		return err // already says what is wrong
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return silo.Errorf(silo.CodeNotFound, "blob %q not found in bucket %q", clip(key), bucket)
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR), errors.Is(err, fs.ErrExist), errors.Is(err, syscall.ENOTEMPTY):
		return silo.Errorf(silo.CodeConflict, "blob key %q conflicts with another blob in bucket %q: a key cannot be both a blob and a prefix followed by '/'", clip(key), bucket)
	case strings.Contains(err.Error(), "escapes"):
		return silo.Errorf(silo.CodeInvalid, "blob key %q in bucket %q resolves outside the bucket", clip(key), bucket)
	}
	return fmt.Errorf("%s blob %q in bucket %s of %s: %w", op, clip(key), bucket, d.id, err)
}

// GetBlob returns the blob key of bucket, decrypted. Only regular files are
// blobs: a link planted in the bucket is never followed.
func (d *data) GetBlob(ctx context.Context, bucket, key string) ([]byte, error) {
	if err := provider.ValidateBlobKey(key); err != nil {
		return nil, err
	}
	root, sk, err := d.bucket(ctx, bucket)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.OpenFile(key, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, errBlobLink(key, bucket)
		}
		return nil, d.blobErr("get", bucket, key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, d.blobErr("get", bucket, key, err)
	}
	if !st.Mode().IsRegular() {
		return nil, silo.Errorf(silo.CodeNotFound, "blob %q not found in bucket %q", clip(key), bucket)
	}
	// os.Root follows a link that stays inside the bucket, O_NOFOLLOW or
	// not: what was opened must be the file at key reached through no link.
	if err := keyLinks(root, bucket, key); err != nil {
		return nil, d.blobErr("get", bucket, key, err)
	}
	if at, err := root.Lstat(key); err != nil || !os.SameFile(st, at) {
		return nil, errBlobLink(key, bucket)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, d.blobErr("get", bucket, key, err)
	}
	return sk.openBlob(d.id, bucket, key, b)
}

// PutBlob stores value as the blob key of bucket, sealed under the
// account's blob key with the bucket and key as additional data (seal.go),
// durably: it writes a temporary file next to it, syncs it, renames it into
// place and syncs the directory.
func (d *data) PutBlob(ctx context.Context, bucket, key string, value []byte) error {
	if err := provider.ValidateBlobKey(key); err != nil {
		return err
	}
	root, sk, err := d.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	defer root.Close()
	env, err := sk.sealBlob(bucket, key, value)
	if err != nil {
		return fmt.Errorf("put blob %q in bucket %s of %s: %w", clip(key), bucket, d.id, err)
	}
	if dir := path.Dir(key); dir != "." {
		if err := root.MkdirAll(dir, dirMode); err != nil {
			return d.blobErr("put", bucket, key, err)
		}
		if err := keyLinks(root, bucket, key); err != nil {
			return d.blobErr("put", bucket, key, err)
		}
	}
	if err := writeRootFile(root, key, env); err != nil {
		return d.blobErr("put", bucket, key, err)
	}
	return nil
}

func syncRootDir(root *os.Root, dir string) error {
	f, err := root.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer f.Close()
	if err := syncFile(f); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// DeleteBlob removes the blob key of bucket and any directories left empty;
// a missing blob is not an error.
func (d *data) DeleteBlob(ctx context.Context, bucket, key string) error {
	if err := provider.ValidateBlobKey(key); err != nil {
		return err
	}
	root, _, err := d.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := keyLinks(root, bucket, key); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return d.blobErr("delete", bucket, key, err)
	}
	st, err := root.Lstat(key)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return d.blobErr("delete", bucket, key, err)
	}
	if st.IsDir() {
		return nil // a prefix, not a blob
	}
	if err := root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return d.blobErr("delete", bucket, key, err)
	}
	dir := path.Dir(key)
	for dir != "." && root.Remove(dir) == nil {
		dir = path.Dir(dir)
	}
	return syncRootDir(root, dir)
}

// ListBlobs returns up to limit keys of bucket that start with prefix
// (DefaultScanLimit if limit <= 0, at most MaxScanLimit), sorted. Links and
// files being written are not listed.
func (d *data) ListBlobs(ctx context.Context, bucket, prefix string, limit int) ([]string, error) {
	limit = clampLimit(limit)
	root, _, err := d.bucket(ctx, bucket)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	keys := []string{}
	err = fs.WalkDir(root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if e.IsDir() {
			// Descend only where keys with the prefix can be.
			if dp := p + "/"; !strings.HasPrefix(dp, prefix) && !strings.HasPrefix(prefix, dp) {
				return fs.SkipDir
			}
			return nil
		}
		if e.Type().IsRegular() && strings.HasPrefix(p, prefix) && !strings.HasPrefix(path.Base(p), tmpPrefix) {
			keys = append(keys, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list bucket %s of %s: %w", bucket, d.id, err)
	}
	sort.Strings(keys)
	if len(keys) > limit {
		keys = keys[:limit]
	}
	return keys, nil
}
