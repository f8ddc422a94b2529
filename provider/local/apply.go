package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/provider"
	"go.etcd.io/bbolt"
)

// manifest is resources.json: what the provider holds, by resource key.
type manifest map[string]silo.Resource

// manifestEntry is how a resource is stored in resources.json: the spec is
// kept as a string so that its bytes come back exactly as applied.
type manifestEntry struct {
	Type silo.ResourceType `json:"type"`
	Name string            `json:"name"`
	Hash string            `json:"hash"`
	Spec string            `json:"spec,omitempty"`
}

func (a *account) manifest() (manifest, error) {
	var entries map[string]manifestEntry
	if err := a.readJSON(fileResources, &entries); err != nil {
		return nil, fmt.Errorf("account %s: %w", a.id, err)
	}
	m := make(manifest, len(entries))
	for k, e := range entries {
		r := silo.Resource{Type: e.Type, Name: e.Name, Hash: e.Hash}
		if e.Spec != "" {
			r.Spec = json.RawMessage(e.Spec)
		}
		m[k] = r
	}
	return m, nil
}

func (a *account) writeManifest(m manifest) error {
	if err := a.replaceManifest(m); err != nil {
		return err
	}
	return syncDir(a.dir)
}

// replaceManifest is writeManifest without the directory sync (replaceFile).
func (a *account) replaceManifest(m manifest) error {
	entries := make(map[string]manifestEntry, len(m))
	for k, r := range m {
		entries[k] = manifestEntry{Type: r.Type, Name: r.Name, Hash: r.Hash, Spec: string(r.Spec)}
	}
	b, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", fileResources, err)
	}
	return a.putFile(fileResources, append(b, '\n'))
}

// Apply makes one change to one resource of the account. Effects by type:
// a table is a bbolt bucket and a bucket a directory (deleting either deletes
// its data; replacing either recreates it empty); a config's spec
// {"value": "..."} is set in config.json; a secret's spec declares its slot
// and deleting it removes its value; functions, routes and exports are only
// recorded. The manifest entry is written after the effect, so repeating an
// Apply interrupted by a crash converges. No-op changes do nothing.
//
// # Errors
//
// CodeNotFound if the account does not exist; CodeInvalid for an unknown
// op or type, a bad name, or a spec that does not decode.
func (p *Provider) Apply(ctx context.Context, id silo.AccountID, c silo.Change) error {
	_, err := p.ApplyBatch(ctx, id, []silo.Change{c})
	return err
}

// ApplyBatch makes the changes to the account in order, as Apply would one
// by one, under one lock of the account and with one write of the manifest
// (temp file, fsync, rename, directory fsync) for the whole batch instead of
// one per change. It returns how many changes, from the first, were applied
// and recorded; on an error that count is below len(cs) and the manifest
// holds exactly those. Each effect still happens before its manifest entry
// is written, so repeating a batch interrupted by a crash converges, as a
// repeated Apply does.
//
// # Errors
//
// As Apply's, for the first change that fails; ctx is checked between
// changes.
func (p *Provider) ApplyBatch(ctx context.Context, id silo.AccountID, cs []silo.Change) (done int, err error) {
	if err := parseID(id); err != nil {
		return 0, err
	}
	defer func() { err = p.damageErr(id, err) }()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// Bad input changes nothing: every name is checked before the first
	// effect. A batch of no-ops needs no lock.
	work := false
	for _, c := range cs {
		if c.Op == silo.OpNoop {
			continue
		}
		if err := validateName(c.Type, c.Name); err != nil {
			return 0, err
		}
		work = true
	}
	if !work {
		return len(cs), nil
	}
	a := p.ref(id)
	defer p.unref(a)
	unlock, err := p.lockAccount(ctx, a)
	if err != nil {
		return 0, err
	}
	defer unlock()
	if err := p.checkExists(a); err != nil {
		return 0, err
	}
	m, err := a.manifest()
	if err != nil {
		return 0, err
	}
	if err := p.newStore(a, cs); err != nil {
		return 0, err
	}
	defer func() { a.fresh = nil }()
	dirty := false
	for _, c := range cs {
		if done > 0 {
			if err = ctx.Err(); err != nil {
				break
			}
		}
		var changed bool
		if changed, err = p.applyLocked(a, m, c); err != nil {
			break
		}
		dirty = dirty || changed
		done++
	}
	// The effects' files are synced; their directory entries are made
	// durable here, once, before the manifest that records them (the
	// manifest's own rename is synced by writeManifest).
	if a.unsynced {
		if serr := syncDir(a.dir); serr != nil {
			return 0, fmt.Errorf("record the resources of %s: %w", id, serr)
		}
		a.unsynced = false
	}
	if dirty {
		if werr := a.writeManifest(m); werr != nil {
			// Nothing of the batch is recorded; the effects stay and a
			// repeated apply records them.
			return 0, fmt.Errorf("record the resources of %s: %w", id, werr)
		}
	}
	return done, err
}

// applyLocked makes the effect of c and updates m (not written) with the
// account locked. It reports whether m changed.
func (p *Provider) applyLocked(a *account, m manifest, c silo.Change) (bool, error) {
	if c.Op == silo.OpNoop {
		return false, nil
	}
	key := c.Key()
	switch c.Op {
	case silo.OpDelete:
		if err := p.remove(a, c.Type, c.Name); err != nil {
			return false, fmt.Errorf("apply %s to %s: %w", key, a.id, err)
		}
		if _, ok := m[key]; !ok {
			return false, nil
		}
		delete(m, key)
	case silo.OpCreate, silo.OpUpdate, silo.OpReplace:
		r := c.Desired
		if r == nil {
			return false, silo.Errorf(silo.CodeInvalid, "%s %s: the change has no desired resource", c.Op, key)
		}
		if r.Type != c.Type || r.Name != c.Name {
			return false, silo.Errorf(silo.CodeInvalid, "%s %s: the desired resource is %s", c.Op, key, r.Key())
		}
		res := *r
		if res.Hash == "" {
			res.Hash = res.ComputeHash()
		}
		if c.Op == silo.OpReplace && (c.Type == silo.TypeTable || c.Type == silo.TypeBucket) {
			if err := p.remove(a, c.Type, c.Name); err != nil {
				return false, fmt.Errorf("apply %s to %s: %w", key, a.id, err)
			}
		}
		if _, ok := m[key]; ok && c.Type == silo.TypeBucket && c.Op != silo.OpReplace {
			// Recorded, so its directory was made: a missing one was
			// deleted, and making it anew would hide that its blobs are
			// gone.
			if err := p.lostBucketsLocked(a, m, c.Name); err != nil {
				return false, err
			}
		}
		if err := p.ensure(a, res); err != nil {
			return false, err
		}
		if old, ok := m[key]; ok && old.Hash == res.Hash && bytes.Equal(old.Spec, res.Spec) {
			return false, nil
		}
		m[key] = res
	default:
		return false, silo.Errorf(silo.CodeInvalid, "unknown change op %q for %s", c.Op, key)
	}
	return true, nil
}

// ensure makes the effect of resource r exist.
func (p *Provider) ensure(a *account, r silo.Resource) error {
	var spec map[string]json.RawMessage
	if len(r.Spec) > 0 {
		if err := json.Unmarshal(r.Spec, &spec); err != nil {
			return silo.Errorf(silo.CodeInvalid, "%s: spec is not a JSON object: %w", r.Key(), err)
		}
	}
	switch r.Type {
	case silo.TypeTable:
		if slices.Contains(a.fresh, r.Name) {
			return nil // in the store newStore has just built
		}
		db, err := p.acquireDBLocked(context.Background(), a, true, nil)
		if err != nil {
			return err
		}
		defer p.releaseDB(a, db)
		exists := false
		if err := p.runTx(a, db, false, func(tx *bbolt.Tx) error { exists = tx.Bucket([]byte(r.Name)) != nil; return nil }); err != nil {
			return err
		}
		if exists {
			return nil // no write transaction, no fsync, for a repeated apply
		}
		err = db.update(func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte(r.Name))
			return err
		})
		if err != nil {
			return fmt.Errorf("create table %s in %s: %w", r.Name, a.id, err)
		}
	case silo.TypeBucket:
		blobs := filepath.Join(a.dir, dirBlobs)
		dir := filepath.Join(blobs, r.Name)
		if _, err := os.Stat(dir); err == nil {
			return nil
		}
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return fmt.Errorf("create bucket %s in %s: %w", r.Name, a.id, err)
		}
		if err := syncDir(blobs); err != nil {
			return err
		}
		return syncDir(a.dir)
	case silo.TypeConfig:
		var value string
		raw, ok := spec["value"]
		if !ok || json.Unmarshal(raw, &value) != nil {
			return silo.Errorf(silo.CodeInvalid, "config %s: spec needs a string \"value\"", r.Name)
		}
		cfg := map[string]string{}
		if err := a.readJSON(fileConfig, &cfg); err != nil {
			return err
		}
		if old, ok := cfg[r.Name]; ok && old == value {
			return nil
		}
		cfg[r.Name] = value
		return p.replaceCached(a, fileConfig, cfg)
	case silo.TypeSecret, silo.TypeFunction, silo.TypeRoute, silo.TypeExport, silo.TypeSchedule:
		// Recorded in the manifest only: a secret's slot is declared by its
		// entry, function artifacts live in the shared artifact store.
	default:
		return silo.Errorf(silo.CodeInvalid, "unknown resource type %q for %s", r.Type, r.Name)
	}
	return nil
}

// newStore creates the table store of an account that has none, with every
// table the batch creates: a copy of the empty store of those tables
// (storeImage) is written under a temporary name, synced once and renamed
// to data.db; the rename is made durable by the directory sync before the
// manifest (ApplyBatch's, or the staging directory's). bbolt creating the
// file in place syncs at its set-up, at each commit and at each growth of
// the file: 4 syncs for a store of one table. A crash before the rename
// leaves a temporary file, removed by the next newStore; a crash after it
// and before the manifest leaves a store whose tables are not yet recorded,
// which the repeated batch finds and keeps (ensure creates only missing
// tables). A batch that stops at a change before one of its tables leaves
// that table in the store but not in the manifest, as a crash would; the
// next apply records it. Without a table to create, or with a store in
// place, newStore does nothing, and ensure works as for any later apply.
func (p *Provider) newStore(a *account, cs []silo.Change) error {
	var tables []string
	for _, c := range cs {
		if c.Op == silo.OpCreate && c.Type == silo.TypeTable {
			tables = append(tables, c.Name)
		}
	}
	if len(tables) == 0 {
		return nil
	}
	path := filepath.Join(a.dir, fileDB)
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // a store, or something in its place that ensure reports
	}
	if err := p.lostStore(a); err != nil {
		return err // deleted: a new store would hide that its tables are gone
	}
	for _, f := range durable.Temps(path) {
		os.Remove(f)
	}
	// A log without its store belongs to no store: replayed into the new
	// one, it would bring back writes of one that is gone (wal.go).
	if err := os.Remove(filepath.Join(a.dir, fileLog)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create the table store of %s: %w", a.id, diskErr(path, err))
	}
	img, err := p.storeImage(a.dir, tables)
	if err != nil {
		return fmt.Errorf("create the table store of %s: %w", a.id, diskErr(path, err))
	}
	if err := replaceFile(a.dir, fileDB, img); err != nil {
		return fmt.Errorf("create the table store of %s: %w", a.id, err)
	}
	a.unsynced = true
	a.fresh = tables
	return nil
}

// maxImages bounds the store images a provider keeps (one per set of
// tables: one or two per stack in use).
const maxImages = 16

// storeImage returns the bytes of a new table store holding exactly the
// given tables. Every new store of a stack is the same empty file, so it is
// built once per set of tables in a process: bbolt adds the tables with its
// syncs off to an empty store written into a scratch file in dir
// (emptyStore: bbolt's own set-up of a new file would sync it), it is
// copied out whole (bbolt.Tx.WriteTo) and the scratch file removed. The
// scratch file is never synced: only the copy in the account is, once.
// The image holds bucket names only, never data.
func (p *Provider) storeImage(dir string, tables []string) ([]byte, error) {
	tables = slices.Clone(tables)
	slices.Sort(tables)
	tables = slices.Compact(tables)
	key := strings.Join(tables, "\x00")
	if v, ok := p.images.Load(key); ok {
		return v.([]byte), nil
	}
	f, err := os.CreateTemp(dir, ".tmp-"+fileDB+"-*")
	if err != nil {
		return nil, err
	}
	scratch := f.Name()
	defer os.Remove(scratch)
	_, err = f.Write(emptyStore(os.Getpagesize()))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	db, _, err := openBolt(context.Background(), scratch, bbolt.Options{
		Timeout:        storeLockWait,
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
		NoSync:         true,
		NoGrowSync:     true,
	})
	if err != nil {
		return nil, err
	}
	var img bytes.Buffer
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, t := range tables {
			if _, err := tx.CreateBucket([]byte(t)); err != nil {
				return fmt.Errorf("table %s: %w", t, err)
			}
		}
		return nil
	})
	if err == nil {
		err = db.View(func(tx *bbolt.Tx) error {
			_, err := tx.WriteTo(&img)
			return err
		})
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if p.imageCount.Add(1) <= maxImages {
		p.images.Store(key, img.Bytes())
	}
	return img.Bytes(), nil
}

// remove undoes the effect of resource typ/name; a missing one is a no-op.
func (p *Provider) remove(a *account, typ silo.ResourceType, name string) error {
	switch typ {
	case silo.TypeTable:
		a.fresh = slices.DeleteFunc(slices.Clone(a.fresh), func(n string) bool { return n == name })
		db, err := p.acquireDBLocked(context.Background(), a, false, nil)
		if errors.Is(err, errNoStore) {
			return nil
		}
		if err != nil {
			return err
		}
		defer p.releaseDB(a, db)
		return db.update(func(tx *bbolt.Tx) error {
			err := tx.DeleteBucket([]byte(name))
			if errors.Is(err, bbolt.ErrBucketNotFound) {
				return nil
			}
			return err
		})
	case silo.TypeBucket:
		return p.toTrash(filepath.Join(a.dir, dirBlobs, name), string(a.id)+"-bucket-"+name)
	case silo.TypeConfig:
		cfg := map[string]string{}
		if err := a.readJSON(fileConfig, &cfg); err != nil {
			return err
		}
		if _, ok := cfg[name]; !ok {
			return nil
		}
		delete(cfg, name)
		return p.writeCached(a, fileConfig, cfg)
	case silo.TypeSecret:
		_, err := p.dropSecret(a, name)
		return err
	case silo.TypeFunction, silo.TypeRoute, silo.TypeExport, silo.TypeSchedule:
		return nil
	}
	return silo.Errorf(silo.CodeInvalid, "unknown resource type %q for %s", typ, name)
}

// Resources returns the manifest of the account, sorted by key.
func (p *Provider) Resources(ctx context.Context, id silo.AccountID) (_ []silo.Resource, err error) {
	if err := parseID(id); err != nil {
		return nil, err
	}
	defer func() { err = p.damageErr(id, err) }()
	a := p.ref(id)
	defer p.unref(a)
	if err := a.lockMu(ctx); err != nil {
		return nil, err
	}
	defer a.mu.unlock()
	if err := p.checkExists(a); err != nil {
		return nil, err
	}
	m, err := a.manifest()
	if err != nil {
		return nil, err
	}
	out := make([]silo.Resource, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

// PutSecret encrypts value under the account's data key, with the account ID
// and the secret's name as additional data, and stores it in secrets.json.
//
// # Errors
//
// CodeNotFound if the account does not exist or the secret is not declared;
// CodeInvalid if value is larger than every provider holds
// (provider.CheckSecretSize).
func (p *Provider) PutSecret(ctx context.Context, id silo.AccountID, name string, value []byte) (err error) {
	if err := parseID(id); err != nil {
		return err
	}
	defer func() { err = p.damageErr(id, err) }()
	if err := validateName(silo.TypeSecret, name); err != nil {
		return err
	}
	if err := provider.CheckSecretSize(name, value); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	a := p.ref(id)
	defer p.unref(a)
	unlock, err := p.lockAccount(ctx, a)
	if err != nil {
		return err
	}
	defer unlock()
	if err := p.checkExists(a); err != nil {
		return err
	}
	m, err := a.manifest()
	if err != nil {
		return err
	}
	if _, ok := m[string(silo.TypeSecret)+"/"+name]; !ok {
		return silo.Errorf(silo.CodeNotFound, "secret %s is not declared in account %s; declare it in silo.yaml and deploy first", name, id)
	}
	dk, keyID, err := p.dataKey(a)
	if err != nil {
		return err
	}
	env, err := dk.Seal(name, value)
	if err != nil {
		return err
	}
	sec := map[string]string{}
	if err := readJSON(a.dir, fileSecrets, &sec); err != nil {
		return err
	}
	sec[name] = encodeSecret(keyID, env)
	if err := p.writeCached(a, fileSecrets, sec); err != nil {
		return fmt.Errorf("put secret %s in %s: %w", name, id, err)
	}
	return nil
}

// validateName checks a resource name. Tables and buckets name a bbolt bucket
// and a directory, so they are restricted to letters, digits, '.', '_' and
// '-', starting with a letter or digit; other names are any printable UTF-8.
func validateName(t silo.ResourceType, name string) error {
	switch t {
	case silo.TypeTable, silo.TypeBucket:
		return validateStorageName(string(t), name)
	}
	if name == "" || len(name) > MaxKeySize || !utf8.ValidString(name) || strings.IndexFunc(name, isControl) >= 0 {
		return silo.Errorf(silo.CodeInvalid, "invalid %s name %q: use 1-%d bytes of printable UTF-8", t, clip(name), MaxKeySize)
	}
	return nil
}

func validateStorageName(what, name string) error {
	ok := name != "" && len(name) <= 128 && isAlnum(name[0])
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = isAlnum(c) || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return silo.Errorf(silo.CodeInvalid, "invalid %s name %q: use 1-128 letters, digits, '.', '_' and '-', starting with a letter or digit", what, clip(name))
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func clip(s string) string {
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
