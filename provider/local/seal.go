package local

// Data at rest.
//
// Every account has a storage key: 32 random bytes, created with the
// account, kept only in storage.key sealed under the account's data key
// (like a secret: "<data key ID>:<base64 envelope>"). From it HKDF-SHA256
// derives one AES-256-GCM key per kind of data (internal/envelope.Derive),
// bound to the account ID:
//
//   - table values: additional data = table name and key, so a value copied
//     to another key, table or account does not open;
//   - blob contents: additional data = bucket name and blob key, likewise;
//   - log records (the logs package asks LogSealer for the key).
//
// Table keys, bucket names and blob keys (file names) stay in plaintext:
// Scan needs keys in order and blobs are files named by their keys.
//
// Deleting the account shreds data.key first: the storage key, and with it
// every table value, blob and log record of the account, no longer opens
// anywhere, whatever copies survive. RotateDataKey reseals storage.key
// under the new data key and so does not re-encrypt the data (as a KMS key
// rotation does not): it retires a data key, not the storage key.
//
// The storage key is unwrapped once per cached copy of the key ring (see
// cache.go) and kept with it, so a warm Get or Put pays one AES-GCM and no
// system call for it.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
	"go.etcd.io/bbolt"
)

const (
	fileStorageKey = "storage.key"
	// fileMigrating marks an account whose data is being sealed by
	// migrateAccount; it is removed when every value and blob is sealed.
	fileMigrating = ".migrating"
	// fileAllSealed, in the provider's directory, records that migrateAll
	// found every account sealed: New then skips the scan of accounts/.
	fileAllSealed = "sealed-at-rest"
	// labelStorageKey is the envelope label of storage.key (a NUL keeps it
	// apart from every secret name).
	labelStorageKey = "\x00storage-key"
	// metaBucket is a bbolt bucket no table can be named (table names start
	// with a letter or digit); it records that the store's values are sealed.
	metaBucket = ".silo"
	metaSealed = "sealed"
)

// storageKeys are an account's derived data-at-rest keys.
type storageKeys struct {
	table, blob, log *envelope.Sealer
}

func deriveKeys(raw []byte, id silo.AccountID) (*storageKeys, error) {
	var sk storageKeys
	var err error
	if sk.table, err = envelope.Derive(raw, id, envelope.PurposeTable); err != nil {
		return nil, err
	}
	if sk.blob, err = envelope.Derive(raw, id, envelope.PurposeBlob); err != nil {
		return nil, err
	}
	if sk.log, err = envelope.Derive(raw, id, envelope.PurposeLog); err != nil {
		return nil, err
	}
	return &sk, nil
}

func errNoStorageKey(id silo.AccountID, dir string) error {
	return silo.Errorf(silo.CodeFailedCheck, "account %s has no %s, so its data cannot be encrypted at rest; it was written by an older silo: stop every silo process on %s, remove %s there, and start one again, which migrates it", id, fileStorageKey, dir, fileAllSealed)
}

// openStorageKey reads storage.key of the account and derives its keys with
// the ring r. stale reports that storage.key names a key not in r, or a key
// of r did not unwrap: the caller reads the ring again.
func (p *Provider) openStorageKey(id silo.AccountID, r *cachedFile) (sk *storageKeys, stale bool, err error) {
	file := fileStorageKey
	b, err := os.ReadFile(filepath.Join(p.accounts, string(id), fileStorageKey))
	if held, ok := r.held[fileStorageKey]; ok && errors.Is(err, fs.ErrNotExist) {
		file, b, err = fileDataKey, held, nil // a new account's, in data.key (keyring.go)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, errNoStorageKey(id, p.cfg.Dir)
	}
	if err != nil {
		return nil, false, fmt.Errorf("read storage key of %s: %w", id, err)
	}
	raw, stale, err := p.openSecret(id, r.ring, r.keys, file, labelStorageKey, strings.TrimSpace(string(b)))
	if err != nil {
		return nil, stale, silo.Errorf(silo.CodeInternal, "the storage key of account %s does not open with its data key; restore %s and %s together from backup: %w", id, fileStorageKey, fileDataKey, err)
	}
	defer clear(raw)
	sk, err = deriveKeys(raw, id)
	return sk, false, err
}

// keysOf returns the account's key ring, as cached, and its storage keys,
// derived once per cached ring. A warm call makes no system call; force
// reads data.key again whatever the age of the cached copy.
//
// # Errors
//
// CodeNotFound if the account does not exist.
func (p *Provider) keysOf(id silo.AccountID, force bool) (*cachedFile, *storageKeys, error) {
	ac := p.cacheOf(id)
	for attempt := 0; ; attempt++ {
		r, err := p.load(ac, id, slotRing, force || attempt > 0)
		if err != nil {
			return nil, nil, err
		}
		if sk := r.storage.Load(); sk != nil {
			return r, sk, nil
		}
		sk, stale, err := p.openStorageKey(id, r)
		if stale && attempt < 3 {
			continue // a rotation (or a create) in another process: read the ring again
		}
		if err != nil {
			return nil, nil, err
		}
		r.storage.Store(sk)
		return r, sk, nil
	}
}

// LogSealer returns the key that seals the log records of account id: it is
// derived from the account's storage key, so it is destroyed with the
// account, and a re-created account of the same ID has another one
// (Sealer.ID differs). The logs package takes it through logs.Config.Keys.
//
// # Errors
//
// CodeNotFound if the account does not exist.
func (p *Provider) LogSealer(id silo.AccountID) (*envelope.Sealer, error) {
	if err := parseID(id); err != nil {
		return nil, err
	}
	_, sk, err := p.keysOf(id, false)
	if err != nil {
		return nil, err
	}
	return sk.log, nil
}

// sealedAD is the additional data binding a table value or a blob to its
// place: kind, container (table or bucket) and key. The account is bound by
// the key derivation.
func sealedAD(kind, container, key string) []byte {
	ad := make([]byte, 0, len(kind)+len(container)+len(key)+2)
	ad = append(ad, kind...)
	ad = append(ad, 0)
	ad = append(ad, container...)
	ad = append(ad, 0)
	return append(ad, key...)
}

func (sk *storageKeys) sealValue(table, key string, v []byte) ([]byte, error) {
	return sk.table.Seal(v, sealedAD("table", table, key))
}

func (sk *storageKeys) openValue(id silo.AccountID, table, key string, env []byte) ([]byte, error) {
	v, err := sk.table.Open(env, sealedAD("table", table, key))
	if err != nil {
		return nil, silo.Errorf(silo.CodeInternal, "the value of key %q in table %q of account %s does not decrypt: the store file was damaged or its data copied from elsewhere; restore %s from backup", clip(key), table, id, fileDB)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (sk *storageKeys) sealBlob(bucket, key string, v []byte) ([]byte, error) {
	return sk.blob.Seal(v, sealedAD("blob", bucket, key))
}

func (sk *storageKeys) openBlob(id silo.AccountID, bucket, key string, env []byte) ([]byte, error) {
	v, err := sk.blob.Open(env, sealedAD("blob", bucket, key))
	if err != nil {
		return nil, silo.Errorf(silo.CodeInternal, "blob %q in bucket %q of account %s does not decrypt: the file was damaged, renamed or copied from elsewhere; restore it from backup or delete it", clip(key), bucket, id)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// writeStorageKey creates the storage key of an account migrated to
// encryption at rest, sealed under dk (the ring entry keyID), and writes
// storage.key; the caller syncs dir before its data is sealed.
func writeStorageKey(dir string, id silo.AccountID, dk *envelope.DataKey, keyID string) error {
	b, err := newStorageKey(id, dk, keyID)
	if err != nil {
		return err
	}
	return replaceFile(dir, fileStorageKey, b)
}

// newStorageKey creates a storage key sealed under dk (the ring entry
// keyID) and returns the contents of storage.key for it.
func newStorageKey(id silo.AccountID, dk *envelope.DataKey, keyID string) ([]byte, error) {
	raw := envelope.NewStorageKey()
	defer clear(raw)
	env, err := dk.Seal(labelStorageKey, raw)
	if err != nil {
		return nil, fmt.Errorf("seal storage key of %s: %w", id, err)
	}
	return []byte(encodeSecret(keyID, env) + "\n"), nil
}

// resealStorageKey reseals storage.key of a under dk (ring entry keyID),
// opening it with the ring old. A data-key rotation calls it with both keys
// in the ring, so a crash on either side of the write leaves it readable.
//
// It runs after the rotation's first writeRing, which wrote a new account's
// storage key out of data.key into storage.key (settle).
func (p *Provider) resealStorageKey(a *account, old keyRing, dk *envelope.DataKey, keyID string) error {
	b, err := os.ReadFile(filepath.Join(a.dir, fileStorageKey))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // migrated at the next start
	}
	if err != nil {
		return fmt.Errorf("read storage key of %s: %w", a.id, err)
	}
	raw, _, err := p.openSecret(a.id, old, nil, fileStorageKey, labelStorageKey, strings.TrimSpace(string(b)))
	if err != nil {
		return silo.Errorf(silo.CodeInternal, "the storage key of account %s does not open, so the old data key is kept; restore %s from backup: %w", a.id, fileStorageKey, err)
	}
	defer clear(raw)
	env, err := dk.Seal(labelStorageKey, raw)
	if err != nil {
		return fmt.Errorf("seal storage key of %s: %w", a.id, err)
	}
	defer p.invalidate(a.id)
	return writeFile(a.dir, fileStorageKey, []byte(encodeSecret(keyID, env)+"\n"))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// migrateAll seals the data of every account written before data at rest
// was encrypted (no storage.key), and finishes a migration a crash
// interrupted (.migrating left behind). New calls it. Once a scan found
// (or left) every account sealed it writes fileAllSealed, and later calls
// return at once: accounts are created sealed, so a command that opens the
// provider costs the same at 50 accounts as at 5,000. Only a silo from
// before encryption at rest creates accounts without storage.key; remove
// the file to have the next start seal what such a silo left.
func (p *Provider) migrateAll() error {
	marker := filepath.Join(p.cfg.Dir, fileAllSealed)
	if exists(marker) {
		return nil // every account was sealed; accounts created since are born sealed
	}
	ents, err := os.ReadDir(p.accounts)
	if err != nil {
		return fmt.Errorf("local provider: list accounts: %w", err)
	}
	for _, e := range ents {
		id := silo.AccountID(e.Name())
		if !e.IsDir() || parseID(id) != nil {
			continue
		}
		dir := filepath.Join(p.accounts, e.Name())
		if !exists(filepath.Join(dir, fileDataKey)) {
			continue // not an account: the remains of a create or delete
		}
		if !exists(filepath.Join(dir, fileMigrating)) {
			if exists(filepath.Join(dir, fileStorageKey)) {
				continue
			}
			if held, err := readHeld(dir); err == nil && held[fileStorageKey] != nil {
				continue // a new account's storage key, in data.key (keyring.go)
			}
		}
		if err := p.migrateAccount(context.Background(), id); err != nil {
			return fmt.Errorf("local provider: encrypt the data of account %s at rest: %w", id, err)
		}
	}
	// From now on New skips the scan: a command opening the provider does
	// no work per account of the fleet (3 stats each).
	return writeFile(p.cfg.Dir, fileAllSealed, []byte("every account in accounts/ has its data sealed at rest\n"))
}

// migrateAccount gives a legacy account a storage key and seals its table
// values and blobs in place. Each step is idempotent and .migrating marks the
// account until the last is done, so a crash at any point is finished by the
// next New.
func (p *Provider) migrateAccount(ctx context.Context, id silo.AccountID) error {
	a := p.ref(id)
	defer p.unref(a)
	unlock, err := p.lockAccount(ctx, a)
	if err != nil {
		return err
	}
	defer unlock()
	// A storage key in data.key (keyring.go) is one: written out, it is
	// found below.
	if err := p.settle(a); err != nil {
		return err
	}
	if !exists(filepath.Join(a.dir, fileStorageKey)) {
		if err := writeFile(a.dir, fileMigrating, nil); err != nil {
			return err
		}
		dk, keyID, err := p.dataKey(a)
		if err != nil {
			return err
		}
		if err := writeStorageKey(a.dir, id, dk, keyID); err != nil {
			return err
		}
		if err := syncDir(a.dir); err != nil {
			return err
		}
	}
	r, err := p.readRing(a)
	if err != nil {
		return err
	}
	sk, _, err := p.openStorageKey(id, &cachedFile{ring: r})
	if err != nil {
		return err
	}
	if err := sealTables(filepath.Join(a.dir, fileDB), sk); err != nil {
		return err
	}
	if err := sealBlobs(filepath.Join(a.dir, dirBlobs), sk); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(a.dir, fileMigrating)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	p.log.Info("account data encrypted at rest", "account", id)
	return syncDir(a.dir)
}

// sealTables seals every value of the store at path. It copies the store
// into a new file with every value sealed and a mark that it is
// (metaBucket), renames that over the store and then overwrites the
// replaced file's blocks: sealing in place would leave the plaintext in
// bbolt's freed pages. A crash before the rename leaves the old store as it
// was (the next run starts over); after it, the mark says it is done.
func sealTables(path string, sk *storageKeys) error {
	if !exists(path) {
		return nil
	}
	src, err := bbolt.Open(path, fileMode, &bbolt.Options{Timeout: storeLockWait, OpenFile: openNoFollow})
	if errors.Is(err, bbolt.ErrTimeout) {
		return silo.Errorf(silo.CodeUnavailable, "%s is open in another silo process; stop it and start again", path)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer src.Close()
	sealed := false
	src.View(func(tx *bbolt.Tx) error {
		m := tx.Bucket([]byte(metaBucket))
		sealed = m != nil && m.Get([]byte(metaSealed)) != nil
		return nil
	})
	if sealed {
		return nil // a log next to it is replayed by the next opener (wal.go)
	}
	// Only a sealed store has a log: sealing the values of an unsealed one
	// here would not reach those of a log, which are sealed already.
	if pending, err := logPending(src, filepath.Join(filepath.Dir(path), fileLog)); err != nil || pending {
		if err == nil {
			err = fmt.Errorf("%s holds writes though the store's values are not sealed; restore the account's directory from a backup", fileLog)
		}
		return fmt.Errorf("seal %s: %w", path, err)
	}
	tmp := path + ".sealing"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dst, err := bbolt.Open(tmp, fileMode, &bbolt.Options{OpenFile: openNoFollow})
	if err != nil {
		return fmt.Errorf("seal %s: %w", path, err)
	}
	err = src.View(func(stx *bbolt.Tx) error {
		return dst.Update(func(dtx *bbolt.Tx) error {
			err := stx.ForEach(func(name []byte, b *bbolt.Bucket) error {
				if string(name) == metaBucket {
					return nil
				}
				nb, err := dtx.CreateBucket(name)
				if err != nil {
					return err
				}
				return b.ForEach(func(k, v []byte) error {
					env, err := sk.sealValue(string(name), string(k), v)
					if err != nil {
						return err
					}
					return nb.Put(k, env)
				})
			})
			if err != nil {
				return err
			}
			meta, err := dtx.CreateBucket([]byte(metaBucket))
			if err != nil {
				return err
			}
			return meta.Put([]byte(metaSealed), []byte("v1"))
		})
	})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("seal %s: %w", path, err)
	}
	return replaceScrubbed(tmp, path)
}

// replaceScrubbed renames tmp over path durably, then overwrites the blocks
// of the file it replaced with zeros, so its old content is not left in
// the file system's free space as far as overwriting in place reaches (a
// copy-on-write file system or an SSD's remapping can keep old blocks; see
// the docs).
func replaceScrubbed(tmp, path string) error {
	old, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer old.Close()
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	return scrub(old)
}

// sealBlobs seals every blob under the blobs directory that does not open
// yet (a plaintext blob never does), each written to a temporary file,
// synced and renamed over it.
func sealBlobs(blobs string, sk *storageKeys) error {
	buckets, err := os.ReadDir(blobs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, bkt := range buckets {
		if !bkt.IsDir() {
			continue
		}
		root, err := os.OpenRoot(filepath.Join(blobs, bkt.Name()))
		if err != nil {
			return err
		}
		err = fs.WalkDir(root.FS(), ".", func(key string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return err
			}
			if strings.HasPrefix(path.Base(key), tmpPrefix) {
				return root.Remove(key) // left by a crashed write
			}
			b, err := root.ReadFile(key)
			if err != nil {
				return err
			}
			if _, err := sk.blob.Open(b, sealedAD("blob", bkt.Name(), key)); err == nil {
				return nil
			}
			env, err := sk.sealBlob(bkt.Name(), key, b)
			if err != nil {
				return err
			}
			old, err := root.OpenFile(key, os.O_RDWR|syscall.O_NOFOLLOW, 0)
			if err != nil {
				return err
			}
			defer old.Close()
			if err := writeRootFile(root, key, env); err != nil {
				return err
			}
			return scrub(old)
		})
		root.Close()
		if err != nil {
			return fmt.Errorf("seal bucket %s: %w", bkt.Name(), err)
		}
	}
	return nil
}

// writeRootFile replaces key in root with data durably: temporary file,
// fsync, rename, directory fsync.
func writeRootFile(root *os.Root, key string, data []byte) error {
	dir := path.Dir(key)
	tmp := path.Join(dir, tmpPrefix+randomSuffix())
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, key)
	}
	if err != nil {
		root.Remove(tmp)
		return err
	}
	return syncRootDir(root, dir)
}
