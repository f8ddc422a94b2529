package local

// The in-memory cache of data.key (the wrapped key ring, whose presence
// makes the account exist), config.json and secrets.json. The data plane
// needs them on every Config and Secret call, and data.key (existence) on
// every table read; reading and decoding a file costs ~13 µs, a stat ~4 µs
// on a VM with slow system calls, a cached read no system call at all.
//
// Freshness: a cached file is used without looking at the disk for
// Config.CacheRecheck (DefaultCacheRecheck, 1 s) after it was last checked.
// Then the next call stats it and keeps the cached copy if the file is the
// same one (os.SameFile: device and inode), with the same size and
// modification time, as when it was read; else it reads it again. The files
// are only ever replaced by rename (writeFile), which gives them a new inode,
// so a change by another process on the same directory (the CLI writing
// while `silo up` serves) is seen within CacheRecheck. (writeRing then
// overwrites the replaced data.key in place with random bytes: a read that
// opened it just before may read those, and reads the file again rather
// than take it for damaged.) To be safe from a write that lands within one
// tick of the file system's clock after a read (same size, inode number
// reused, same mtime), a copy is trusted at a recheck only if the file's
// mtime was racyWindow older than the moment the read began, as git does
// with its index; a younger one is read again at every recheck.
//
// Writes of this process are seen at once: every write of these files
// (writeCached, writeRing, CreateAccount) bumps the account's generation
// after the file is in place, and a cached copy is used only under the
// generation that was current before it was read. So a read that raced with
// a write and stored what it read before the write is never served after
// the write returned. DeleteAccount drops the account's entry after its
// files are gone: the next read finds nothing cached, stats data.key and
// returns CodeNotFound. Forget bumps the generation the same way for a
// change another process made and told this one about (servers sharing the
// data dir and a PostgreSQL store announce their changes; the platform
// calls Forget when an announcement arrives), so that change too is seen
// at once rather than within CacheRecheck.
//
// Secret's retry, when a value names a key no longer in the ring (a
// data-key rotation, here or in another process, between or after the two
// reads) or a ring entry no longer unwraps (a master-key rotation), checks
// both files on the disk whatever their age (load with force), so it cannot
// spin on a stale copy.
//
// Keys: the ring is cached as on disk (wrapped keys, useless without the
// master key), and with it each data key once Secret has unwrapped it
// (unwrapping costs ~1 µs, most of a Secret call). An unwrapped key lives
// exactly as long as the cached ring it came from: it is dropped with it
// when this process writes data.key, when a recheck finds another file,
// when the account is deleted, and when the entry goes idle. It grants
// nothing the master key, which the process holds anyway, does not.
// Entries unused for about IdleTimeout are dropped by the janitor, so idle
// accounts hold no memory here; a used one holds one small struct, its
// three decoded files and its unwrapped data key.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
)

// racyWindow is how much older than the start of a read a file's mtime must
// be for the read to be trusted at a later recheck. It covers the kernel's
// coarse file-time clock (one tick, at most 10 ms on Linux) with a wide
// margin, on file systems with sub-second timestamps; coarseRacyWindow
// covers file systems with 1 s or 2 s ones (FAT), recognized by an mtime on
// a whole second.
const (
	racyWindow       = 100 * time.Millisecond
	coarseRacyWindow = 3 * time.Second
)

// cacheable reports whether a file read at start may be trusted at a
// recheck if it is still the same file.
func cacheable(fi os.FileInfo, start time.Time) bool {
	w := racyWindow
	if fi.ModTime().Nanosecond() == 0 {
		w = coarseRacyWindow
	}
	return fi.ModTime().Before(start.Add(-w))
}

// The cached files of an account, indexes into acctCache.files.
const (
	slotRing    = iota // data.key
	slotConfig         // config.json
	slotSecrets        // secrets.json
	numSlots
)

var slotFiles = [numSlots]string{fileDataKey, fileConfig, fileSecrets}

// acctCache is the cached files of one account.
type acctCache struct {
	gen   atomic.Uint64 // bumped by every write of this process to the files
	used  atomic.Int64  // the janitor's epoch at the last use
	files [numSlots]atomic.Pointer[cachedFile]
}

// cachedFile is one decoded file and the file it was read from. Only
// checked and keys change once it is stored.
type cachedFile struct {
	gen     uint64      // acctCache.gen before the file was read
	fi      os.FileInfo // nil if the file did not exist
	trusted bool        // fi identifies the content at a recheck (cacheable)
	m       map[string]string
	ring    keyRing                            // slotRing only
	held    map[string][]byte                  // slotRing only: the files data.key holds (keyring.go)
	from    *cachedFile                        // slotConfig only: the ring whose copy of config.json this is (fi nil)
	keys    []atomic.Pointer[envelope.DataKey] // slotRing only: ring[i] unwrapped, once used
	storage atomic.Pointer[storageKeys]        // slotRing only: the storage keys, once used (seal.go)
	checked atomic.Int64                       // Provider.now() before the last stat or read that found the file unchanged
}

// now is the provider's monotonic clock, in nanoseconds since New. It reads
// only the monotonic clock (vDSO, no system call).
func (p *Provider) now() int64 { return int64(time.Since(p.born)) }

// cacheOf returns the cache entry of an account, creating it.
func (p *Provider) cacheOf(id silo.AccountID) *acctCache {
	var ac *acctCache
	if v, ok := p.cache.Load(id); ok {
		ac = v.(*acctCache)
	} else {
		v, _ := p.cache.LoadOrStore(id, &acctCache{})
		ac = v.(*acctCache)
	}
	if e := p.epoch.Load(); ac.used.Load() != e { // no shared write per call
		ac.used.Store(e)
	}
	return ac
}

// dropCache forgets everything cached for the account (DeleteAccount, after
// its files are gone); a read still running cannot serve what it stores.
func (p *Provider) dropCache(id silo.AccountID) {
	if v, ok := p.cache.LoadAndDelete(id); ok {
		ac := v.(*acctCache)
		ac.gen.Add(1)
		for i := range ac.files {
			ac.files[i].Store(nil)
		}
	}
}

// invalidate forgets the cached files of the account after this process
// wrote one of them; it must run after the file is in place.
func (p *Provider) invalidate(id silo.AccountID) {
	if v, ok := p.cache.Load(id); ok {
		ac := v.(*acctCache)
		ac.gen.Add(1)
		for i := range ac.files {
			ac.files[i].Store(nil)
		}
	}
}

// Forget drops what this process has cached of the account's config.json,
// secrets.json and data.key (of every account if id is ""), so that the
// next call reads the files. A change made by another process on the same
// directory is otherwise seen only within Config.CacheRecheck; a caller
// told of such a change (a server sharing the data dir announced it) calls
// Forget to see it at once. A read already running does not keep what it
// read. It is safe for concurrent use.
func (p *Provider) Forget(id silo.AccountID) {
	if id != "" {
		p.invalidate(id)
		return
	}
	p.cache.Range(func(k, _ any) bool {
		p.invalidate(k.(silo.AccountID))
		return true
	})
}

// sweepCache drops the entries not used for about IdleTimeout; the janitor
// calls it every IdleTimeout/2.
func (p *Provider) sweepCache() {
	now := p.epoch.Add(1)
	p.cache.Range(func(k, v any) bool {
		if v.(*acctCache).used.Load() < now-2 {
			p.cache.Delete(k)
		}
		return true
	})
}

// load returns the account's file in slot, decoded. It is served from
// memory, without a system call, if this process has not written the
// account's files since it was read and it was checked less than
// CacheRecheck ago, unless force is set (a retry that suspects a stale
// copy). Else the file is stated, and read again unless it is the one in
// memory. A missing data.key is CodeNotFound (the account does not exist); a
// missing config.json or secrets.json is an empty map. The map and ring
// must not be modified.
func (p *Provider) load(ac *acctCache, id silo.AccountID, slot int, force bool) (*cachedFile, error) {
	now := p.now()
	c := ac.files[slot].Load()
	gen := ac.gen.Load()
	if c != nil && c.gen == gen && !force && now-c.checked.Load() < p.recheck {
		return c, nil
	}
	if c != nil && c.gen != gen {
		c = nil
	}
	name := slotFiles[slot]
	path := filepath.Join(p.accounts, string(id), name)
	absent := func() (*cachedFile, error) {
		if slot == slotRing {
			ac.files[slot].CompareAndSwap(c, nil)
			return nil, errNoAccount(id)
		}
		// A new account's config.json is in its data.key until written
		// (keyring.go): the copy is served, bound to the ring it came from.
		var from *cachedFile
		if slot == slotConfig {
			r, err := p.load(ac, id, slotRing, force)
			if err != nil && silo.ErrorCode(err) != silo.CodeNotFound {
				return nil, err
			}
			from = r
		}
		if c != nil && c.fi == nil && c.from == from {
			c.checked.Store(now)
			return c, nil
		}
		nc := &cachedFile{gen: gen, m: map[string]string{}, from: from}
		if from != nil && from.held[fileConfig] != nil {
			if err := json.Unmarshal(from.held[fileConfig], &nc.m); err != nil {
				return nil, p.markDamaged(id, fileDataKey, "its copy of "+fileConfig+" is not valid JSON: "+err.Error())
			}
		}
		return p.store(ac, slot, nc, now), nil
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return absent()
	case err != nil:
		return nil, fmt.Errorf("read %s of %s: %w", name, id, err)
	case c != nil && c.trusted && c.fi != nil && sameFile(c.fi, fi):
		c.checked.Store(now)
		return c, nil
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		b, fi, err := readFileInfo(path, p.afterOpen)
		if errors.Is(err, fs.ErrNotExist) { // removed since the stat
			return absent()
		}
		if errors.Is(err, syscall.EISDIR) {
			return nil, p.markDamaged(id, name, "a directory is in its place")
		}
		if errors.Is(err, syscall.ELOOP) {
			return nil, p.markDamaged(id, name, "a link is in its place (never followed)")
		}
		if err != nil {
			return nil, fmt.Errorf("read %s of %s: %w", name, id, err)
		}
		nc, why := decodeSlot(slot, b)
		if why == "" {
			nc.gen, nc.fi, nc.trusted = gen, fi, cacheable(fi, start)
			return p.store(ac, slot, nc, now), nil
		}
		// What was read does not decode. It is damage only if it is what
		// the file holds at rest: the file read must still be the one at
		// path, unchanged. A writer replaces data.key by rename and then
		// overwrites the replaced file with random bytes (writeRing), so a
		// read that opened the replaced file may read those bytes; it reads
		// the file again.
		if cur, err := os.Lstat(path); err == nil && sameFile(fi, cur) {
			return nil, p.markDamaged(id, name, why)
		}
		if attempt == maxChangedReads {
			return nil, silo.Errorf(silo.CodeUnavailable, "%s of account %s changed while it was read, %d times in a row; try again", name, id, attempt)
		}
	}
}

// maxChangedReads is how many reads of a file load makes while the file
// changes under each read before it gives up.
const maxChangedReads = 5

// decodeSlot decodes the bytes of the file of slot into a cachedFile (its
// gen, fi and trusted left for the caller), or says why they cannot be
// that file.
func decodeSlot(slot int, b []byte) (*cachedFile, string) {
	nc := &cachedFile{}
	if slot == slotRing {
		var err error
		if nc.ring, nc.held, err = decodeAccount(b); err != nil {
			return nil, err.Error()
		}
		if why := ringDamage(nc.ring); why != "" {
			return nil, why
		}
		nc.keys = make([]atomic.Pointer[envelope.DataKey], len(nc.ring))
		return nc, ""
	}
	nc.m = map[string]string{}
	if err := json.Unmarshal(b, &nc.m); err != nil {
		return nil, "not valid JSON: " + err.Error()
	}
	return nc, ""
}

// store caches c, read under c.gen and checked at now, unless a write of
// this process came in between; it returns c either way.
func (p *Provider) store(ac *acctCache, slot int, c *cachedFile, now int64) *cachedFile {
	c.checked.Store(now)
	if ac.gen.Load() == c.gen {
		ac.files[slot].Store(c)
	}
	return c
}

func sameFile(a, b os.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && os.SameFile(a, b)
}

// readFileInfo reads the file at path and returns the FileInfo of the very
// file it read, taken before the read. afterOpen, if not nil, runs between
// the open and the read (tests put a write there).
func readFileInfo(path string, afterOpen func(path string)) ([]byte, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if afterOpen != nil {
		afterOpen(path)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return b, fi, nil
}

// writeCached is writeJSON for config.json and secrets.json: it also drops
// this process's cached copy once the file is in place (even if the write
// failed part way, as the file may have been replaced).
func (p *Provider) writeCached(a *account, name string, v any) error {
	if a.held != nil {
		return p.replaceCached(a, name, v)
	}
	defer p.invalidate(a.id)
	return writeJSON(a.dir, name, v)
}

// replaceCached is writeCached without the directory sync (replaceFile): for
// an effect of ApplyBatch, which syncs the directory once before it writes
// the manifest. The caller holds the account's lock.
func (p *Provider) replaceCached(a *account, name string, v any) error {
	defer p.invalidate(a.id)
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	if err := a.putFile(name, append(b, '\n')); err != nil {
		return err
	}
	a.unsynced = a.held == nil
	return nil
}
