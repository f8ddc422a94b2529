package local

// Key rotation.
//
// data.key is a small key ring: the account's current data key and, only
// while a rotation is unfinished, previous ones. Each entry holds the key's
// ID (the fingerprint of its first wrapped form, stable across master-key
// rotations), the fingerprint of the master key that wraps it, and the
// wrapped key. Binary format:
//
//	"silo-keyring-v2\n"
//	repeated: u8 len, key ID | u8 len, master fingerprint | u16 len (big endian), wrapped key
//
// A data.key without the magic is the format before rotation: one wrapped
// key, whose ID is the fingerprint of those bytes (the fingerprint KeyInfo
// always reported), wrapped by an unrecorded master key. It is read as is
// and rewritten in the new format by the first rotation.
//
// A new account's data.key also holds its first storage.key, config.json
// and resources.json (the account file, written once: one file and one
// sync where four files took four):
//
//	"silo-account-v1\n"
//	u32 len (big endian), the ring in the format above, magic included
//	repeated: u8 len, file name | u32 len, the file's bytes
//
// A file of the account directory, once written, takes the place of its
// copy in data.key (a write never removes one of these files), and the
// first write of data.key (a rotation) writes the copies out as files
// first (settle): the copies are never newer than the files and never
// outlive the ring they were written with. Crypto-shredding is unchanged:
// the storage key in data.key is sealed under the data key next to it, and
// both are overwritten together.
//
// Each value in secrets.json is "<key ID>:<base64 envelope>"; a value with
// no ID (written before rotation) is tried under every key in the ring.
//
// RotateDataKey: (1) ring = new + old, (2) every secret resealed under the
// new key and secrets.json replaced, (3) ring = new only, and the blocks of
// the replaced data.key overwritten. RotateMasterKey: (1) master.key = new +
// old, (2) every account's ring rewrapped under the new master, (3)
// master.key = new only, replaced blocks overwritten. Every file is replaced
// by temp + fsync + rename + dir fsync, so a crash between (or inside) any
// two steps leaves every secret's key in the ring and every ring entry's
// master key in master.key; the next rotation finishes the job.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/internal/envelope"
	"github.com/silo-run/silo/provider"
)

const (
	ringMagic    = "silo-keyring-v2\n"
	accountMagic = "silo-account-v1\n"
)

// heldFiles are the files a new account's data.key holds (accountMagic),
// in the order they are written.
var heldFiles = []string{fileStorageKey, fileConfig, fileResources}

// encodeAccount returns the account file: the ring r and the files held,
// or the ring alone if held is empty.
func encodeAccount(r keyRing, held map[string][]byte) []byte {
	ring := r.encode()
	if len(held) == 0 {
		return ring
	}
	b := binary.BigEndian.AppendUint32([]byte(accountMagic), uint32(len(ring)))
	b = append(b, ring...)
	for _, name := range heldFiles {
		if data, ok := held[name]; ok {
			b = append(b, byte(len(name)))
			b = append(b, name...)
			b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
			b = append(b, data...)
		}
	}
	return b
}

// decodeAccount decodes data.key: its ring and the files it holds (nil
// when it is a ring alone).
func decodeAccount(b []byte) (keyRing, map[string][]byte, error) {
	if !bytes.HasPrefix(b, []byte(accountMagic)) {
		r, err := decodeRing(b)
		return r, nil, err
	}
	b = b[len(accountMagic):]
	if len(b) < 4 || uint64(len(b)-4) < uint64(binary.BigEndian.Uint32(b)) {
		return nil, nil, errors.New("truncated account file")
	}
	n := int(binary.BigEndian.Uint32(b))
	if !bytes.HasPrefix(b[4:4+n], []byte(ringMagic)) {
		return nil, nil, errors.New("account file without a key ring")
	}
	r, err := decodeRing(b[4 : 4+n])
	if err != nil {
		return nil, nil, err
	}
	b = b[4+n:]
	held := map[string][]byte{}
	for len(b) > 0 {
		if len(b) < 1+int(b[0])+4 {
			return nil, nil, errors.New("truncated account file")
		}
		name := string(b[1 : 1+b[0]])
		b = b[1+b[0]:]
		size := binary.BigEndian.Uint32(b)
		if uint64(len(b)-4) < uint64(size) {
			return nil, nil, errors.New("truncated account file")
		}
		if !slices.Contains(heldFiles, name) {
			return nil, nil, fmt.Errorf("account file holds an unknown file %q", name)
		}
		held[name] = bytes.Clone(b[4 : 4+size])
		b = b[4+size:]
	}
	return r, held, nil
}

// Rotation steps passed to Config.OnRotateStep, each after its change is
// durable.
const (
	StepDataKeyAdded       = "data-key:added"       // ring holds the new key and the old ones
	StepDataKeyResealed    = "data-key:resealed"    // secrets.json is sealed under the new key
	StepDataKeyDestroyed   = "data-key:destroyed"   // ring holds only the new key
	StepMasterKeyAdded     = "master-key:added"     // master.key holds the new key and the old ones
	StepMasterKeyRewrap    = "master-key:rewrapped" // one account's ring is wrapped by the new master key
	StepMasterKeyDestroyed = "master-key:destroyed" // master.key holds only the new key
)

// ringEntry is one data key in an account's ring.
type ringEntry struct {
	id      string // stable name of the data key
	master  string // fingerprint of the wrapping master key; "" if unrecorded
	wrapped []byte
}

// keyRing is an account's data keys, the current one first.
type keyRing []ringEntry

func (r keyRing) encode() []byte {
	b := []byte(ringMagic)
	for _, e := range r {
		b = append(b, byte(len(e.id)))
		b = append(b, e.id...)
		b = append(b, byte(len(e.master)))
		b = append(b, e.master...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.wrapped)))
		b = append(b, e.wrapped...)
	}
	return b
}

func decodeRing(b []byte) (keyRing, error) {
	if !bytes.HasPrefix(b, []byte(ringMagic)) {
		if len(b) == 0 {
			return nil, errors.New("empty key file")
		}
		return keyRing{{id: envelope.Fingerprint(b), wrapped: bytes.Clone(b)}}, nil
	}
	b = b[len(ringMagic):]
	var r keyRing
	str := func() (string, bool) {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return "", false
		}
		s := string(b[1 : 1+b[0]])
		b = b[1+b[0]:]
		return s, true
	}
	for len(b) > 0 {
		id, ok1 := str()
		m, ok2 := str()
		if !ok1 || !ok2 || len(b) < 2 {
			return nil, errors.New("truncated key ring")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, errors.New("truncated key ring")
		}
		r = append(r, ringEntry{id: id, master: m, wrapped: bytes.Clone(b[2 : 2+n])})
		b = b[2+n:]
	}
	if len(r) == 0 || r[0].id == "" {
		return nil, errors.New("key ring holds no key")
	}
	return r, nil
}

func (r keyRing) has(id string) bool {
	for _, e := range r {
		if e.id == id {
			return true
		}
	}
	return false
}

// readRing reads the account's key ring. Like load, it reads again when
// what it read does not decode and the file was replaced or changed since
// it was opened (the replaced file overwritten by writeRing).
func (p *Provider) readRing(a *account) (keyRing, error) {
	path := filepath.Join(a.dir, fileDataKey)
	for attempt := 1; ; attempt++ {
		b, fi, err := readFileInfo(path, p.afterOpen)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errNoAccount(a.id)
		}
		if err != nil {
			return nil, p.damageErr(a.id, fmt.Errorf("read data key of %s: %w", a.id, err))
		}
		r, _, err := decodeAccount(b)
		if err == nil && ringDamage(r) == "" {
			return r, nil
		}
		if cur, serr := os.Lstat(path); serr == nil && sameFile(fi, cur) {
			if err != nil {
				return nil, errDamagedRing(a.id, path, err)
			}
			return r, nil // unwrapping its key says what is wrong
		}
		if attempt == maxChangedReads {
			return nil, silo.Errorf(silo.CodeUnavailable, "%s of account %s changed while it was read, %d times in a row; try again", fileDataKey, a.id, attempt)
		}
	}
}

func errDamagedRing(id silo.AccountID, path string, err error) error {
	return silo.Errorf(silo.CodeInternal, "the data key file of account %s is damaged (%v); restore %s from backup", id, err, path)
}

// writeRing replaces the account's data.key durably and overwrites the
// blocks of the file it replaced, so keys left out of r are destroyed. The
// files a new account's data.key holds are written out first (settle). It
// drops this process's cached copy once the file is in place (even if the
// write failed part way). The caller holds the account's lock.
func (p *Provider) writeRing(a *account, r keyRing) error {
	if err := p.settle(a); err != nil {
		return err
	}
	return p.replaceRing(a, r)
}

// settle writes out the files the account's data.key holds (those of a new
// account: keyring.go) that are not in the directory already, each synced,
// syncs the directory, then replaces data.key with its ring alone. A crash
// in between leaves files equal to the copies, which data.key still holds.
// Nothing to do for a data.key that is a ring alone. The caller holds the
// account's lock.
func (p *Provider) settle(a *account) error {
	path := filepath.Join(a.dir, fileDataKey)
	b, err := readNoFollow(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return p.damageErr(a.id, fmt.Errorf("read data key of %s: %w", a.id, err))
	}
	r, held, err := decodeAccount(b)
	if err != nil {
		return errDamagedRing(a.id, path, err)
	}
	if len(held) == 0 {
		return nil
	}
	for _, name := range heldFiles {
		data, ok := held[name]
		if !ok {
			continue
		}
		if _, err := os.Lstat(filepath.Join(a.dir, name)); err == nil {
			continue // written since: it took the copy's place
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("write out %s of %s: %w", name, a.id, err)
		}
		if err := replaceFile(a.dir, name, data); err != nil {
			return fmt.Errorf("write out %s of %s: %w", name, a.id, err)
		}
	}
	if err := syncDir(a.dir); err != nil {
		return fmt.Errorf("write out the files of %s: %w", a.id, err)
	}
	return p.replaceRing(a, r)
}

// replaceRing is writeRing once data.key holds no files.
func (p *Provider) replaceRing(a *account, r keyRing) error {
	defer p.invalidate(a.id)
	path := filepath.Join(a.dir, fileDataKey)
	old, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write data key of %s: %w", a.id, err)
	}
	if old != nil {
		defer old.Close()
	}
	if err := writeFile(a.dir, fileDataKey, r.encode()); err != nil {
		return fmt.Errorf("write data key of %s: %w", a.id, err)
	}
	if err := shredStaleTemps(path); err != nil {
		return err
	}
	if old == nil {
		return nil
	}
	st, err := old.Stat()
	if err == nil {
		junk := make([]byte, st.Size())
		rand.Read(junk)
		if _, err = old.WriteAt(junk, 0); err == nil {
			err = syncFile(old)
		}
	}
	if err != nil {
		return fmt.Errorf("destroy replaced data key of %s: %w", a.id, err)
	}
	return nil
}

// staleAge is how old a temporary key file must be to be taken for the
// leftover of a crashed write rather than one in flight in another process.
const staleAge = time.Minute

// shredStaleTemps shreds the temporary files of writes to the file at key
// (durable.Temps) that were last written staleAge ago or more: copies of
// keys left by a write that crashed between creating its temporary file and
// renaming it.
func shredStaleTemps(key string) error {
	for _, path := range durable.Temps(key) {
		if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() && time.Since(st.ModTime()) >= staleAge {
			if err := shred(path); err != nil {
				return err
			}
		}
	}
	return nil
}

// shredKeys destroys every copy of the account's keys in dir: data.key
// first (once it is gone the account does not exist and the rest opens
// nothing), then storage.key, and temporary files of an interrupted write
// of either.
func shredKeys(dir string) error {
	paths := []string{filepath.Join(dir, fileDataKey), filepath.Join(dir, fileStorageKey)}
	for _, key := range paths[:2] {
		paths = append(paths, durable.Temps(key)...)
	}
	for _, path := range paths {
		if err := shred(path); err != nil {
			return err
		}
	}
	return nil
}

// KeyInfo describes the account's current data key by its ID: the
// fingerprint of its first wrapped form, so it changes with RotateDataKey
// and not with RotateMasterKey (WrappedBy does).
func (p *Provider) KeyInfo(ctx context.Context, id silo.AccountID) (provider.KeyInfo, error) {
	if err := parseID(id); err != nil {
		return provider.KeyInfo{}, err
	}
	a := p.ref(id)
	defer p.unref(a)
	var r keyRing
	var m *envelope.Master
	for attempt := 0; ; attempt++ {
		var err error
		if r, err = p.readRing(a); err != nil {
			return provider.KeyInfo{}, err
		}
		_, m, err = p.unwrapEntry(id, r[0])
		if err == nil {
			break
		}
		if attempt == 2 { // else a master-key rotation may have rewrapped it since: read again
			return provider.KeyInfo{}, err
		}
	}
	return provider.KeyInfo{
		Algorithm:   envelope.Algorithm,
		Fingerprint: r[0].id,
		WrappedBy:   "local master key " + m.Fingerprint(),
	}, nil
}

// masterKeys returns the master keys, the current one first.
func (p *Provider) masterKeys() []*envelope.Master { return *p.masters.Load() }

func (p *Provider) currentMaster() *envelope.Master { return p.masterKeys()[0] }

// MasterFingerprint returns the fingerprint of the current master key.
func (p *Provider) MasterFingerprint() string { return p.currentMaster().Fingerprint() }

// loadMasters reads master.key into p.masters. The caller holds loadMu, so
// that a slow read cannot store an older key list over a newer one.
func (p *Provider) loadMasters() error {
	ms, err := envelope.LoadOrCreateMasters(p.masterPath)
	if err != nil {
		return err
	}
	p.masters.Store(&ms)
	return nil
}

// unwrapEntry opens one ring entry with the master key that wrapped it (any
// of them if unrecorded). If none opens it, master.key is read again, as
// another process may have rotated it, and the keys tried once more.
func (p *Provider) unwrapEntry(id silo.AccountID, e ringEntry) (*envelope.DataKey, *envelope.Master, error) {
	try := func() (*envelope.DataKey, *envelope.Master, error) {
		var last error = envelope.ErrDecrypt
		for _, m := range p.masterKeys() {
			if e.master != "" && m.Fingerprint() != e.master {
				continue
			}
			dk, err := m.Unwrap(id, e.wrapped)
			if err == nil {
				return dk, m, nil
			}
			last = err
		}
		return nil, nil, last
	}
	dk, m, err := try()
	if err == nil {
		return dk, m, nil
	}
	p.loadMu.Lock()
	rerr := p.loadMasters()
	p.loadMu.Unlock()
	if rerr != nil {
		return nil, nil, rerr
	}
	if dk, m, err = try(); err != nil {
		return nil, nil, p.unwrapFailed(id, e, err)
	}
	return dk, m, nil
}

// dataKey returns the account's current data key and its ID.
func (p *Provider) dataKey(a *account) (*envelope.DataKey, string, error) {
	r, err := p.readRing(a)
	if err != nil {
		return nil, "", err
	}
	dk, _, err := p.unwrapEntry(a.id, r[0])
	if err != nil {
		return nil, "", err
	}
	return dk, r[0].id, nil
}

func encodeSecret(keyID string, env []byte) string {
	return keyID + ":" + base64.StdEncoding.EncodeToString(env)
}

// decodeSecret splits a secrets.json value into the ID of the key that
// sealed it ("" if unrecorded) and the envelope.
func decodeSecret(v string) (string, []byte, error) {
	id, b64, ok := strings.Cut(v, ":")
	if !ok {
		id, b64 = "", v
	}
	env, err := base64.StdEncoding.DecodeString(b64)
	return id, env, err
}

// openSecret decrypts the value enc of secret name with the key of r it
// names (every key if it names none). stale reports that enc or r may be
// outdated: enc names a key no longer in r (a data-key rotation replaced it
// after enc was read), or a key of r does not unwrap (a master-key rotation
// rewrapped it after r was read); the caller reads both again. keys, if not
// nil, holds the unwrapped keys of r (cached with it, see cache.go): nil
// ones are unwrapped and stored there.
func (p *Provider) openSecret(acct silo.AccountID, r keyRing, keys []atomic.Pointer[envelope.DataKey], file, name, enc string) (pt []byte, stale bool, err error) {
	id, env, err := decodeSecret(enc)
	if err != nil {
		return nil, false, p.secretFailed(acct, file, name, "", false)
	}
	if id != "" && !r.has(id) {
		return nil, true, p.secretFailed(acct, file, name, id, true)
	}
	err = nil
	for i, e := range r {
		if id != "" && e.id != id {
			continue
		}
		var dk *envelope.DataKey
		if keys != nil {
			dk = keys[i].Load()
		}
		if dk == nil {
			var uerr error
			if dk, _, uerr = p.unwrapEntry(acct, e); uerr != nil {
				return nil, true, uerr
			}
			if keys != nil {
				keys[i].Store(dk)
			}
		}
		if pt, err = dk.Open(name, env); err == nil {
			return pt, false, nil
		}
	}
	return nil, false, p.secretFailed(acct, file, name, id, false)
}

func (p *Provider) step(name string, id silo.AccountID) error {
	if p.cfg.OnRotateStep != nil {
		if err := p.cfg.OnRotateStep(name, id); err != nil {
			return fmt.Errorf("rotation stopped after %s: %w", name, err)
		}
	}
	return nil
}

// RotateDataKey gives the account a new data key, reseals every secret and
// the storage key (seal.go; table values, blobs and logs stay sealed under
// the storage key, which does not change) under it and destroys the
// previous key (overwriting the replaced key
// file). It is crash-safe: after a crash at any point every secret still
// decrypts, and running it again completes a rotation. Config.OnRotateStep
// is called after each durable step.
//
// # Errors
//
// CodeNotFound if the account does not exist; CodeInternal if its key or a
// secret does not open.
func (p *Provider) RotateDataKey(ctx context.Context, id silo.AccountID) error {
	if err := parseID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	unlockMaster, err := p.lockMaster(ctx, false)
	if err != nil {
		return err
	}
	defer unlockMaster()
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
	old, err := p.readRing(a)
	if err != nil {
		return err
	}
	m := p.currentMaster()
	dk, wrapped, err := m.NewDataKey(id)
	if err != nil {
		return fmt.Errorf("rotate data key of %s: %w", id, err)
	}
	cur := ringEntry{id: envelope.Fingerprint(wrapped), master: m.Fingerprint(), wrapped: wrapped}

	// 1. The ring holds the new key and every old one.
	if err := p.writeRing(a, append(keyRing{cur}, old...)); err != nil {
		return fmt.Errorf("rotate data key of %s: %w", id, err)
	}
	if err := p.step(StepDataKeyAdded, id); err != nil {
		return err
	}

	// 2. Every secret resealed under the new key.
	sec := map[string]string{}
	if err := readJSON(a.dir, fileSecrets, &sec); err != nil {
		return fmt.Errorf("rotate data key of %s: %w", id, err)
	}
	if len(sec) > 0 {
		out := make(map[string]string, len(sec))
		for name, enc := range sec {
			pt, _, err := p.openSecret(id, old, nil, fileSecrets, name, enc)
			if err != nil {
				return silo.Errorf(silo.CodeInternal, "rotate data key of %s: secret %s does not decrypt, so the old key is kept; restore secrets.json or set the secret again: %w", id, name, err)
			}
			env, err := dk.Seal(name, pt)
			clear(pt)
			if err != nil {
				return fmt.Errorf("rotate data key of %s: %w", id, err)
			}
			out[name] = encodeSecret(cur.id, env)
		}
		if err := p.writeCached(a, fileSecrets, out); err != nil {
			return fmt.Errorf("rotate data key of %s: %w", id, err)
		}
	}
	if err := p.resealStorageKey(a, old, dk, cur.id); err != nil {
		return fmt.Errorf("rotate data key of %s: %w", id, err)
	}
	if err := p.step(StepDataKeyResealed, id); err != nil {
		return err
	}

	// 3. The old keys destroyed.
	if err := p.writeRing(a, keyRing{cur}); err != nil {
		return fmt.Errorf("rotate data key of %s: %w", id, err)
	}
	if err := p.step(StepDataKeyDestroyed, id); err != nil {
		return err
	}
	p.log.Info("data key rotated", "account", id, "old", old[0].id, "new", cur.id)
	return nil
}

// RotateMasterKey replaces the master key: it adds a new key to master.key,
// rewraps every account's data keys under it, then destroys the previous
// master keys. The data keys do not change, so no secret is resealed. It is
// crash-safe like RotateDataKey, and a second call completes an interrupted
// one. Only one process may rotate at a time; other processes on the same
// directory reread master.key when a data key does not open.
func (p *Provider) RotateMasterKey(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	unlockMaster, err := p.lockMaster(ctx, true)
	if err != nil {
		return err
	}
	defer unlockMaster()
	p.loadMu.Lock()
	ms, err := envelope.AddMaster(p.masterPath)
	if err == nil {
		p.masters.Store(&ms)
	}
	p.loadMu.Unlock()
	if err != nil {
		return err
	}
	if err := p.step(StepMasterKeyAdded, ""); err != nil {
		return err
	}

	// Twice: the second pass catches accounts created meanwhile by another
	// process still wrapping under the old key.
	for pass := 0; pass < 2; pass++ {
		ids, err := p.Accounts(ctx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return err
			}
			changed, err := p.rewrap(ctx, id, ms[0])
			if err != nil {
				return err
			}
			if changed {
				if err := p.step(StepMasterKeyRewrap, id); err != nil {
					return err
				}
			}
		}
	}

	p.loadMu.Lock()
	err = envelope.DropPreviousMasters(p.masterPath)
	if err == nil {
		err = p.loadMasters()
	}
	p.loadMu.Unlock()
	if err != nil {
		return err
	}
	if err := p.step(StepMasterKeyDestroyed, ""); err != nil {
		return err
	}
	p.log.Info("master key rotated", "new", ms[0].Fingerprint())
	return nil
}

// rewrap rewraps every entry of the account's ring not wrapped by to.
func (p *Provider) rewrap(ctx context.Context, id silo.AccountID, to *envelope.Master) (bool, error) {
	a := p.ref(id)
	defer p.unref(a)
	unlock, err := p.lockAccount(ctx, a)
	if err != nil {
		return false, err
	}
	defer unlock()
	r, err := p.readRing(a)
	if silo.ErrorCode(err) == silo.CodeNotFound {
		return false, nil // deleted meanwhile
	}
	if err != nil {
		return false, err
	}
	changed := false
	for i, e := range r {
		if e.master == to.Fingerprint() {
			continue
		}
		_, m, err := p.unwrapEntry(id, e)
		if err != nil {
			return false, err
		}
		w, err := m.Rewrap(id, e.wrapped, to)
		if err != nil {
			return false, fmt.Errorf("rotate master key: %w", err)
		}
		r[i] = ringEntry{id: e.id, master: to.Fingerprint(), wrapped: w}
		changed = true
	}
	if !changed {
		return false, nil
	}
	if err := p.writeRing(a, r); err != nil {
		return false, fmt.Errorf("rotate master key: %w", err)
	}
	return true, nil
}
