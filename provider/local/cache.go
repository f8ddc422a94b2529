package local

// The in-memory cache of config.json and secrets.json (the data plane reads
// them on every Config and Secret call: reading and decoding the file cost
// ~13 µs, a stat ~1 µs).
//
// Validity: every read stats the file and uses the cached map only if the
// file is the same one (os.SameFile: device and inode), with the same size
// and modification time, as when it was read. The files are only ever
// replaced by rename (writeFile), which gives them a new inode, so a change
// by this process or another one on the same directory (the CLI writing
// while `silo up` serves) is seen at the next call. To be safe from a write
// that lands within one tick of the file system's clock after a read (same
// size, inode number reused, same mtime), a file is cached only once its
// mtime is racyWindow older than the moment the read began, as git does
// with its index: a later write then always gets a different mtime.
//
// Deletion: DeleteAccount drops the account's entry and marks it dead, so a
// read racing with the deletion cannot put it back; the account's handle
// returns CodeNotFound because every Config and Secret call first checks
// that the data key exists (a stat), as before. The data key itself is
// never cached. Entries unused for IdleTimeout are dropped by the janitor,
// so idle accounts hold no memory here.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	silo "github.com/silo-run/silo"
)

// racyWindow is how much older than the start of a read a file's mtime must
// be for the read to be cached. It covers the kernel's coarse file-time
// clock (one tick, at most 10 ms on Linux) with a wide margin, on file
// systems with sub-second timestamps; coarseRacyWindow covers file systems
// with 1 s or 2 s ones (FAT), recognized by an mtime on a whole second.
const (
	racyWindow       = 100 * time.Millisecond
	coarseRacyWindow = 3 * time.Second
)

// cacheable reports whether a file read at start may be cached.
func cacheable(fi os.FileInfo, start time.Time) bool {
	w := racyWindow
	if fi.ModTime().Nanosecond() == 0 {
		w = coarseRacyWindow
	}
	return fi.ModTime().Before(start.Add(-w))
}

// acctCache is the cached files of one account.
type acctCache struct {
	dead    atomic.Bool  // the account was deleted; store nothing more
	used    atomic.Int64 // the janitor's epoch at the last use
	config  atomic.Pointer[cachedFile]
	secrets atomic.Pointer[cachedFile]
}

// cachedFile is one decoded JSON file and the file it was read from. It is
// never modified once stored.
type cachedFile struct {
	fi os.FileInfo
	m  map[string]string
}

func (ac *acctCache) slot(name string) *atomic.Pointer[cachedFile] {
	if name == fileSecrets {
		return &ac.secrets
	}
	return &ac.config
}

// cacheOf returns the cache entry of an account, creating it.
func (p *Provider) cacheOf(id silo.AccountID) *acctCache {
	if v, ok := p.cache.Load(id); ok {
		return v.(*acctCache)
	}
	v, _ := p.cache.LoadOrStore(id, &acctCache{})
	return v.(*acctCache)
}

// dropCache forgets everything cached for the account; a read still running
// cannot store into the dropped entry.
func (p *Provider) dropCache(id silo.AccountID) {
	if v, ok := p.cache.LoadAndDelete(id); ok {
		ac := v.(*acctCache)
		ac.dead.Store(true)
		ac.config.Store(nil)
		ac.secrets.Store(nil)
	}
}

// invalidate forgets the cached copy of one file of the account (after this
// process wrote it).
func (p *Provider) invalidate(id silo.AccountID, name string) {
	if v, ok := p.cache.Load(id); ok {
		v.(*acctCache).slot(name).Store(nil)
	}
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

// cachedJSON returns the string map in the account's file name (config.json
// or secrets.json), empty if the file does not exist. The caller has checked
// that the account exists; the map must not be modified.
func (p *Provider) cachedJSON(a *account, name string) (map[string]string, error) {
	ac := p.cacheOf(a.id)
	ac.used.Store(p.epoch.Load())
	slot := ac.slot(name)
	path := filepath.Join(a.dir, name)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		slot.Store(nil)
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if c := slot.Load(); c != nil && sameFile(c.fi, fi) {
		return c.m, nil
	}
	start := time.Now()
	m, fi, err := readJSONFile(path)
	if err != nil || fi == nil {
		return m, err
	}
	if cacheable(fi, start) {
		slot.Store(&cachedFile{fi: fi, m: m})
		if ac.dead.Load() {
			slot.Store(nil)
		}
	}
	return m, nil
}

func sameFile(a, b os.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && os.SameFile(a, b)
}

// readJSONFile decodes the file at path into a string map and returns the
// FileInfo of the very file it read (nil if there is none).
func readJSONFile(path string) (map[string]string, os.FileInfo, error) {
	m := map[string]string{}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return m, fi, nil
}

// writeCached is writeJSON for config.json and secrets.json: it also drops
// this process's cached copy.
func (p *Provider) writeCached(a *account, name string, v any) error {
	defer p.invalidate(a.id, name)
	return writeJSON(a.dir, name, v)
}
