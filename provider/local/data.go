package local

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
	"github.com/silo-run/silo/provider"
	"go.etcd.io/bbolt"
)

// data is the data plane of one account.
type data struct {
	p  *Provider
	id silo.AccountID
}

// Data returns the data plane of account id. The handle reaches only that
// account's store file, blob roots, config and secrets; it is safe for
// concurrent use and stays valid across idle closes of the store file. After
// the account is deleted through this Provider its methods return
// CodeNotFound; after another process deleted it, blob methods do at once
// and the others within Config.CacheRecheck.
//
// # Errors
//
// CodeInvalid for a malformed ID; CodeNotFound if the account does not exist.
func (p *Provider) Data(ctx context.Context, id silo.AccountID) (provider.Data, error) {
	if err := parseID(id); err != nil {
		return nil, err
	}
	a := p.ref(id)
	defer p.unref(a)
	if err := p.checkExists(a); err != nil {
		return nil, err
	}
	return &data{p: p, id: id}, nil
}

func errNoTable(id silo.AccountID, table string) error {
	return silo.Errorf(silo.CodeNotFound, "table %q does not exist in account %s; declare it in silo.yaml", clip(table), id)
}

// withTable runs fn on the account's table in a read-only or a read-write
// transaction. A write transaction is shared with the account's other
// writes in flight (commit.go), so fn may run more than once: it must be
// idempotent and seal nothing itself on a second run. On a warm account it makes no system call of its own: the
// account's existence is checked against the cached key ring (see
// cache.go), so an account deleted by another process fails within
// Config.CacheRecheck even while its store file stays open here.
//
// fn gets the table as the operation sees it (the store with the writes
// logged since its last checkpoint, overlay.go) and the account's storage
// keys to seal and open values with (seal.go).
//
// prep, if not nil, runs before the transaction with the storage keys fn
// will get (Put seals its value there, outside the commit).
func (d *data) withTable(ctx context.Context, table string, write bool, prep func(sk *storageKeys) error, fn func(b *tableView, sk *storageKeys) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if validateStorageName("table", table) != nil {
		return errNoTable(d.id, table)
	}
	a := d.p.ref(d.id)
	defer d.p.unref(a)
	var sk *storageKeys
	run := func(v *view) error {
		b := v.table(table)
		if b == nil {
			return errNoTable(d.id, table)
		}
		return fn(b, sk)
	}
	for attempt := 0; ; attempt++ {
		ring, keys, err := d.p.keysOf(d.id, false)
		if err != nil {
			return err
		}
		sk = keys
		if prep != nil {
			if err := prep(sk); err != nil {
				return err
			}
		}
		db, err := d.p.acquireDB(ctx, a, false, ring)
		if errors.Is(err, errNoStore) {
			return errNoTable(d.id, table)
		}
		if err != nil {
			return err
		}
		if write {
			err = d.p.commit(a, db, run)
		} else {
			ov := db.ov.Load() // before the transaction begins (wal.go)
			err = d.p.runTx(a, db, false, func(tx *bbolt.Tx) error { return run(&view{tx: tx, ov: ov}) })
		}
		d.p.releaseDB(a, db)
		if !errors.Is(err, bbolt.ErrDatabaseNotOpen) {
			return err
		}
		// Closed before the transaction began: the account was deleted
		// through this Provider (the next load says so), or its store
		// was found replaced by a re-created account's (the next
		// acquire opens that one). Once only: a transaction never ran.
		if attempt > 0 {
			return errNoAccount(d.id)
		}
	}
}

func validateKey(key string) error {
	if key == "" || len(key) > MaxKeySize {
		return silo.Errorf(silo.CodeInvalid, "invalid key %q: keys are 1-%d bytes", clip(key), MaxKeySize)
	}
	return nil
}

// Get returns the value of key in table.
//
// # Errors
//
// CodeNotFound for a missing table or key; CodeInvalid for an empty or
// overlong key.
func (d *data) Get(ctx context.Context, table, key string) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	var out []byte
	err := d.withTable(ctx, table, false, nil, func(b *tableView, sk *storageKeys) error {
		v := b.Get([]byte(key))
		if v == nil {
			return silo.Errorf(silo.CodeNotFound, "key %q not found in table %q", clip(key), table)
		}
		var err error
		out, err = sk.openValue(d.id, table, key, v) // a new slice: v is valid only in the transaction
		return err
	})
	return out, err
}

// Put sets key in table to value, sealed under the account's table key with
// the table and key as additional data (seal.go).
func (d *data) Put(ctx context.Context, table, key string, value []byte) error {
	return d.PutMetered(ctx, table, key, value, nil)
}

// PutMetered is Put with admit, if not nil, called inside its write
// transaction before the value is written, as AddMetered's is: with the
// size of the value the key holds (-1: none) and of the new one, each
// counting the key's and the plaintext's bytes (a stored value's plaintext
// is sized from its envelope, not opened). An error from admit refuses the
// Put: nothing is written and PutMetered returns that error. The Notes of
// AddMetered apply.
func (d *data) PutMetered(ctx context.Context, table, key string, value []byte, admit func(old, n int64) error) error {
	if err := validateKey(key); err != nil {
		return err
	}
	// Sealed before the transaction, once per key ring: the transaction
	// function runs again if its commit group is retried.
	var env []byte
	var sealedWith *storageKeys
	seal := func(sk *storageKeys) error {
		if sealedWith == sk {
			return nil
		}
		var err error
		if env, err = sk.sealValue(table, key, value); err != nil {
			return fmt.Errorf("put %q in table %s of %s: %w", clip(key), table, d.id, err)
		}
		sealedWith = sk
		return nil
	}
	var refused error
	err := d.withTable(ctx, table, true, seal, func(b *tableView, _ *storageKeys) error {
		refused = nil
		if admit != nil {
			if refused = admit(storedSize(key, b.Get([]byte(key))), int64(len(key)+len(value))); refused != nil {
				return nil // nothing written, and the group's other writes go on
			}
		}
		if err := b.Put([]byte(key), env); err != nil {
			return fmt.Errorf("put %q in table %s of %s: %w", clip(key), table, d.id, err)
		}
		return nil
	})
	if err == nil {
		err = refused
	}
	return err
}

// storedSize is the size a meter counts for the sealed value env of key:
// the key's and the plaintext's bytes, -1 when there is no value.
func storedSize(key string, env []byte) int64 {
	if env == nil {
		return -1
	}
	return int64(len(key) + max(len(env)-envelope.Overhead, 0))
}

// Add adds delta to the integer at key in table (provider.Sum) in one
// write transaction, so concurrent Adds serialize and share commits like
// Puts. Unlike Put's, its value is sealed inside the transaction (it depends
// on the value read there): a few hundred nanoseconds for an integer, again
// if the commit group is retried.
func (d *data) Add(ctx context.Context, table, key string, delta int64) (int64, error) {
	return d.AddMetered(ctx, table, key, delta, nil)
}

// AddMetered is Add with admit, if not nil, called inside its write
// transaction once the sum is known and before it is written, with the
// size of the value the key holds (-1: none) and of the one that replaces
// it, each counting the key's and the plaintext's bytes. A storage meter
// counts the write there from the value it replaces, without reading that
// value in a transaction of its own first; an error from admit refuses the
// Add: nothing is written and AddMetered returns that error.
//
// # Notes
//
// admit runs while the account's commit is held: it must be quick and must
// not call the provider. It is called again if the commit group is retried
// (commit.go), so each call supersedes the one before; when AddMetered
// returns an error the write was not made, whatever admit last allowed.
func (d *data) AddMetered(ctx context.Context, table, key string, delta int64, admit func(old, n int64) error) (int64, error) {
	if err := validateKey(key); err != nil {
		return 0, err
	}
	var sum int64
	var refused error
	err := d.withTable(ctx, table, true, nil, func(b *tableView, sk *storageKeys) error {
		// Each run starts afresh: a retried group runs this again.
		sum, refused = 0, nil
		var old []byte
		env := b.Get([]byte(key))
		if env != nil {
			var err error
			if old, err = sk.openValue(d.id, table, key, env); err != nil {
				return err
			}
		}
		if sum, refused = provider.Sum(table, key, old, env != nil, delta); refused != nil {
			return nil // nothing written, and the group's other writes go on
		}
		digits := strconv.AppendInt(nil, sum, 10)
		if admit != nil {
			size := int64(-1)
			if env != nil {
				size = int64(len(key) + len(old))
			}
			if refused = admit(size, int64(len(key)+len(digits))); refused != nil {
				return nil
			}
		}
		sealed, err := sk.sealValue(table, key, digits)
		if err == nil {
			err = b.Put([]byte(key), sealed)
		}
		if err != nil {
			return fmt.Errorf("add to %q in table %s of %s: %w", clip(key), table, d.id, err)
		}
		return nil
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return 0, err
	}
	return sum, nil
}

// Delete removes key from table; a missing key is not an error, a missing
// table is CodeNotFound.
func (d *data) Delete(ctx context.Context, table, key string) error {
	return d.DeleteMetered(ctx, table, key, nil)
}

// DeleteMetered is Delete with admit, if not nil, called inside its write
// transaction with the size of the value the key holds (-1: none), as
// PutMetered's is, and -1 for the new one. An error from admit refuses the
// Delete. The Notes of AddMetered apply.
func (d *data) DeleteMetered(ctx context.Context, table, key string, admit func(old, n int64) error) error {
	if err := validateKey(key); err != nil {
		return err
	}
	var refused error
	err := d.withTable(ctx, table, true, nil, func(b *tableView, _ *storageKeys) error {
		refused = nil
		if admit != nil {
			if refused = admit(storedSize(key, b.Get([]byte(key))), -1); refused != nil {
				return nil
			}
		}
		return b.Delete([]byte(key))
	})
	if err == nil {
		err = refused
	}
	return err
}

// Scan returns up to limit pairs (DefaultScanLimit if limit <= 0, at most
// MaxScanLimit) whose keys start with prefix and sort after after.
func (d *data) Scan(ctx context.Context, table, prefix, after string, limit int) ([]provider.KV, error) {
	limit = clampLimit(limit)
	out := []provider.KV{}
	err := d.withTable(ctx, table, false, nil, func(b *tableView, sk *storageKeys) error {
		return b.scan(prefix, after, limit, func(key string, env []byte) error {
			pt, err := sk.openValue(d.id, table, key, env)
			if err != nil {
				return err
			}
			out = append(out, provider.KV{Key: key, Value: pt})
			return nil
		})
	})
	return out, err
}

func clampLimit(limit int) int {
	if limit <= 0 {
		return DefaultScanLimit
	}
	return min(limit, MaxScanLimit)
}

// Config returns the resolved value of config key. A warm call is served
// from memory (see cache.go): changes through this Provider are seen at
// once, changes by another process within Config.CacheRecheck.
func (d *data) Config(ctx context.Context, key string) (string, error) {
	ac := d.p.cacheOf(d.id)
	if _, err := d.p.load(ac, d.id, slotRing, false); err != nil { // the account exists
		return "", err
	}
	cfg, err := d.p.load(ac, d.id, slotConfig, false)
	if err != nil {
		return "", err
	}
	v, ok := cfg.m[key]
	if !ok {
		return "", silo.Errorf(silo.CodeNotFound, "config %q is not set in account %s", clip(key), d.id)
	}
	return v, nil
}

// Secret decrypts the secret name. A warm call reads the key ring and
// secrets.json from memory, like Config.
//
// # Errors
//
// CodeNotFound if the secret has no value (undeclared, or never put).
func (d *data) Secret(ctx context.Context, name string) ([]byte, error) {
	ac := d.p.cacheOf(d.id)
	// A data-key rotation (here or in another process) may replace
	// secrets.json and the key ring between our two reads, or after one of
	// them was cached: a value naming a key no longer in the ring, or a ring
	// entry that does not unwrap, is read again from the files, whatever the
	// age of the cached copies (force), so the retry cannot spin on them.
	for attempt := 0; ; attempt++ {
		force := attempt > 0
		r, err := d.p.load(ac, d.id, slotRing, force) // the account exists
		if err != nil {
			return nil, err
		}
		sec, err := d.p.load(ac, d.id, slotSecrets, force)
		if err != nil {
			return nil, err
		}
		enc, ok := sec.m[name]
		if !ok {
			return nil, silo.Errorf(silo.CodeNotFound, "secret %q has no value in account %s; set it with silo secret set %s %s", clip(name), d.id, d.id, clip(name))
		}
		pt, stale, err := d.p.openSecret(d.id, r.ring, r.keys, fileSecrets, name, enc)
		if stale && attempt < 3 {
			continue
		}
		return pt, err
	}
}
