package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/providertest"
)

// age sets the mtime of the account's config.json and secrets.json an hour
// back, as if they were written long ago: only then is a cached copy trusted
// at a recheck without reading the file again (see racyWindow).
func age(t testing.TB, p *Provider, id silo.AccountID) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, name := range []string{fileConfig, fileSecrets} {
		path := filepath.Join(p.accounts, string(id), name)
		if _, err := os.Stat(path); err == nil {
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func setConfig(t testing.TB, p *Provider, id silo.AccountID, key, value string) {
	t.Helper()
	spec := []byte(`{"value":"` + value + `"}`)
	err := p.Apply(context.Background(), id, silo.Change{Op: silo.OpUpdate, Type: silo.TypeConfig, Name: key,
		Desired: &silo.Resource{Type: silo.TypeConfig, Name: key, Spec: spec}})
	if err != nil {
		t.Fatal(err)
	}
}

func declareSecret(t testing.TB, p *Provider, id silo.AccountID, name string) {
	t.Helper()
	err := p.Apply(context.Background(), id, silo.Change{Op: silo.OpCreate, Type: silo.TypeSecret, Name: name,
		Desired: &silo.Resource{Type: silo.TypeSecret, Name: name, Spec: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
}

func wantConfig(t *testing.T, d provider.Data, key, want string) {
	t.Helper()
	if err := configIs(d, key, want); err != nil {
		t.Fatal(err)
	}
}

func wantSecret(t *testing.T, d provider.Data, name, want string) {
	t.Helper()
	if err := secretIs(d, name, want); err != nil {
		t.Fatal(err)
	}
}

func configIs(d provider.Data, key, want string) error {
	got, err := d.Config(context.Background(), key)
	if err != nil {
		return fmt.Errorf("Config(%q): %w", key, err)
	}
	if got != want {
		return fmt.Errorf("Config(%q) = %q; want %q", key, got, want)
	}
	return nil
}

func secretIs(d provider.Data, name, want string) error {
	got, err := d.Secret(context.Background(), name)
	if err != nil {
		return fmt.Errorf("Secret(%q): %w", name, err)
	}
	if string(got) != want {
		return fmt.Errorf("Secret(%q) = %q; want %q", name, got, want)
	}
	return nil
}

// isCode returns nil if err has code c.
func isCode(err error, c silo.Code) error {
	if silo.ErrorCode(err) != c {
		return fmt.Errorf("got error %v, want %s", err, c)
	}
	return nil
}

// eventually calls f until it returns nil, and fails the test if it still
// does not after a deadline far beyond any CacheRecheck used in the tests.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func slotOf(name string) int {
	for i, f := range slotFiles {
		if f == name {
			return i
		}
	}
	panic("no cache slot for " + name)
}

// cachedFileOf returns the copy of the account's file p would serve from
// memory, nil if none.
func cachedFileOf(p *Provider, id silo.AccountID, name string) *cachedFile {
	v, ok := p.cache.Load(id)
	if !ok {
		return nil
	}
	ac := v.(*acctCache)
	c := ac.files[slotOf(name)].Load()
	if c == nil || c.gen != ac.gen.Load() {
		return nil
	}
	return c
}

// cached reports whether p holds the account's file name in memory.
func cached(p *Provider, id silo.AccountID, name string) bool {
	return cachedFileOf(p, id, name) != nil
}

// expire makes the named cached files of the account (all if none) due for
// a recheck at their next read, as if CacheRecheck had passed.
func expire(p *Provider, id silo.AccountID, names ...string) {
	if len(names) == 0 {
		names = slotFiles[:]
	}
	if v, ok := p.cache.Load(id); ok {
		for _, name := range names {
			if c := v.(*acctCache).files[slotOf(name)].Load(); c != nil {
				c.checked.Store(-1 << 62)
			}
		}
	}
}

// expireAll is expire for every account p caches.
func expireAll(p *Provider) {
	p.cache.Range(func(k, _ any) bool {
		expire(p, k.(silo.AccountID))
		return true
	})
}

// TestConfigCacheRecheck: zero means the default, a negative value a check
// at every call.
func TestConfigCacheRecheck(t *testing.T) {
	for _, tc := range []struct {
		in, want time.Duration
		recheck  int64
	}{
		{0, DefaultCacheRecheck, int64(DefaultCacheRecheck)},
		{-1, -1, 0},
		{5 * time.Millisecond, 5 * time.Millisecond, int64(5 * time.Millisecond)},
	} {
		p := newTestProvider(t, Config{CacheRecheck: tc.in})
		if p.cfg.CacheRecheck != tc.want || p.recheck != tc.recheck {
			t.Errorf("CacheRecheck %v: got %v (recheck %d), want %v (%d)", tc.in, p.cfg.CacheRecheck, p.recheck, tc.want, tc.recheck)
		}
	}
}

// TestCacheWarmReadsNoDisk: warm Config, Secret, Get and Scan do not look
// at the account's files: with the account directory moved away they still
// answer (must not look). Twins (must look): a provider that checks at
// every call answers CodeNotFound for Config and Secret at once, and the
// warm one for all four once its copies are due for a recheck, although
// its store file is still open; with the directory back, all answer again.
func TestCacheWarmReadsNoDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := newTestProvider(t, Config{Dir: dir, CacheRecheck: time.Hour, IdleTimeout: time.Hour})
	every := newTestProvider(t, Config{Dir: dir, CacheRecheck: -1, IdleTimeout: time.Hour})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	if err := p.PutSecret(ctx, "acme", "api_token", []byte("tok")); err != nil {
		t.Fatal(err)
	}
	d, _ := p.Data(ctx, "acme")
	de, _ := every.Data(ctx, "acme")
	if err := d.Put(ctx, "findings", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	reads := []struct {
		name  string
		files bool // reads config or secrets, not the store
		read  func(d provider.Data) error
	}{
		{"config", true, func(d provider.Data) error { return configIs(d, "plan", "pro") }},
		{"secret", true, func(d provider.Data) error { return secretIs(d, "api_token", "tok") }},
		{"get", false, func(d provider.Data) error {
			v, err := d.Get(ctx, "findings", "k")
			if err != nil {
				return err
			}
			if string(v) != "v" {
				return fmt.Errorf("Get = %q; want v", v)
			}
			return nil
		}},
		{"scan", false, func(d provider.Data) error {
			kvs, err := d.Scan(ctx, "findings", "", "", 10)
			if err != nil {
				return err
			}
			if len(kvs) != 1 {
				return fmt.Errorf("Scan = %v; want one pair", kvs)
			}
			return nil
		}},
	}
	both := func(r int) []provider.Data { // only one provider may open the store file
		if reads[r].files {
			return []provider.Data{d, de}
		}
		return []provider.Data{d}
	}
	for i, r := range reads { // warm up
		for _, d := range both(i) {
			if err := r.read(d); err != nil {
				t.Fatalf("control: %s: %v", r.name, err)
			}
		}
	}

	acct := filepath.Join(dir, "accounts", "acme")
	if err := os.Rename(acct, acct+".away"); err != nil {
		t.Fatal(err)
	}
	for _, r := range reads {
		if err := r.read(d); err != nil {
			t.Errorf("warm %s with the account directory gone: %v; want it served without the files", r.name, err)
		}
		if r.files {
			if err := isCode(r.read(de), silo.CodeNotFound); err != nil {
				t.Errorf("%s checking at every call, directory gone: %v", r.name, err)
			}
		}
	}
	expire(p, "acme")
	for _, r := range reads {
		if err := isCode(r.read(d), silo.CodeNotFound); err != nil {
			t.Errorf("%s rechecked with the account directory gone: %v", r.name, err)
		}
	}

	if err := os.Rename(acct+".away", acct); err != nil {
		t.Fatal(err)
	}
	for i, r := range reads {
		for j, d := range both(i) {
			if err := r.read(d); err != nil {
				t.Errorf("%s by provider %d with the directory back: %v", r.name, j, err)
			}
		}
	}
}

// TestCacheInProcess: every write through the provider is seen by the next
// read, although the cached copies would not be rechecked for an hour:
// Apply and PutSecret, both key rotations (also one stopped after a step,
// as a crash would), DeleteAccount, and CreateAccount of an account another
// provider deleted. Control (must not look): without a write of its own,
// the provider keeps serving what it cached.
func TestCacheInProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	stopAt := ""
	p := newTestProvider(t, Config{Dir: dir, IdleTimeout: time.Hour, CacheRecheck: time.Hour,
		OnRotateStep: func(step string, _ silo.AccountID) error {
			if step == stopAt {
				return fmt.Errorf("stopped after %s", step)
			}
			return nil
		}})
	other := newTestProvider(t, Config{Dir: dir})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	setConfig(t, p, "acme", "plan", "pro")
	declareSecret(t, p, "acme", "token")
	if err := p.PutSecret(ctx, "acme", "token", []byte("tok-1")); err != nil {
		t.Fatal(err)
	}
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	wantConfig(t, d, "plan", "pro")
	wantSecret(t, d, "token", "tok-1")
	if !cached(p, "acme", fileConfig) || !cached(p, "acme", fileSecrets) {
		t.Fatal("control: not cached after a read")
	}

	setConfig(t, p, "acme", "plan", "biz")
	if cached(p, "acme", fileConfig) {
		t.Error("config.json still cached after Apply wrote it")
	}
	wantConfig(t, d, "plan", "biz")
	if err := p.PutSecret(ctx, "acme", "token", []byte("tok-2")); err != nil {
		t.Fatal(err)
	}
	wantSecret(t, d, "token", "tok-2")
	if err := p.Apply(ctx, "acme", silo.Change{Op: silo.OpDelete, Type: silo.TypeConfig, Name: "plan"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Config(ctx, "plan"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("deleted config: %v, want CodeNotFound", err)
	}
	if err := p.Apply(ctx, "acme", silo.Change{Op: silo.OpDelete, Type: silo.TypeSecret, Name: "token"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Secret(ctx, "token"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("deleted secret: %v, want CodeNotFound", err)
	}
	declareSecret(t, p, "acme", "token")
	if err := p.PutSecret(ctx, "acme", "token", []byte("tok-3")); err != nil {
		t.Fatal(err)
	}
	wantSecret(t, d, "token", "tok-3")

	// Rotations: the cached ring is the one on disk right after each
	// durable step, a stopped rotation included.
	ringIs := func(when string) {
		t.Helper()
		wantSecret(t, d, "token", "tok-3")
		disk, err := p.readRing(&account{id: "acme", dir: filepath.Join(dir, "accounts", "acme")})
		if err != nil {
			t.Fatal(err)
		}
		c := cachedFileOf(p, "acme", fileDataKey)
		if c == nil || !bytes.Equal(c.ring.encode(), disk.encode()) {
			t.Errorf("%s: the cached key ring is not the one on disk", when)
		}
	}
	ringIs("before the rotations")
	for _, step := range []string{StepDataKeyAdded, StepDataKeyResealed, ""} {
		stopAt = step
		if err := p.RotateDataKey(ctx, "acme"); (err != nil) != (step != "") {
			t.Fatalf("RotateDataKey stopping at %q: %v", step, err)
		}
		ringIs("data-key rotation stopped after " + step)
	}
	for _, step := range []string{StepMasterKeyAdded, StepMasterKeyRewrap, ""} {
		stopAt = step
		if err := p.RotateMasterKey(ctx); (err != nil) != (step != "") {
			t.Fatalf("RotateMasterKey stopping at %q: %v", step, err)
		}
		ringIs("master-key rotation stopped after " + step)
	}
	stopAt = ""

	// Deleted here: gone at once. Re-created: empty.
	setConfig(t, p, "acme", "plan", "pro")
	wantConfig(t, d, "plan", "pro")
	if _, err := p.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.cache.Load(silo.AccountID("acme")); ok {
		t.Error("the deleted account still has a cache entry")
	}
	if _, err := d.Config(ctx, "plan"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("Config after delete: %v, want CodeNotFound", err)
	}
	if _, err := d.Secret(ctx, "token"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("Secret after delete: %v, want CodeNotFound", err)
	}
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Config(ctx, "plan"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("Config of the re-created account: %v, want CodeNotFound (it starts empty)", err)
	}

	// Deleted by another provider: still served from memory here (control),
	// until this provider re-creates it.
	setConfig(t, p, "acme", "plan", "pro")
	wantConfig(t, d, "plan", "pro")
	if _, err := other.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	wantConfig(t, d, "plan", "pro")
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Config(ctx, "plan"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("Config of the account re-created here after another provider deleted it: %v, want CodeNotFound", err)
	}
}

// TestCacheFreshFileNotTrusted: a file written within racyWindow of its
// read is served from memory but read again at every recheck, even if it
// looks the same (must: a write in the same file-system clock tick, in
// place, is seen); an old one is trusted while its stat does not change,
// and read again when it does. A whole-second mtime (a file system with
// coarse timestamps) needs coarseRacyWindow.
func TestCacheFreshFileNotTrusted(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Config{IdleTimeout: time.Hour})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	setConfig(t, p, "acme", "plan", "pro")
	// Written "just now" however long the machine takes between the write
	// and the read: its mtime is put ahead of the read.
	path := filepath.Join(p.accounts, "acme", fileConfig)
	ahead := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, ahead, ahead); err != nil {
		t.Fatal(err)
	}
	d, _ := p.Data(ctx, "acme")
	wantConfig(t, d, "plan", "pro")
	c := cachedFileOf(p, "acme", fileConfig)
	if c == nil || c.trusted {
		t.Fatalf("a file written just now: cached %v, want cached and not trusted", c != nil)
	}
	// Rewritten in place with the same size and mtime: only reading it
	// again tells.
	st, _ := os.Stat(path)
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, bytes.Replace(b, []byte("pro"), []byte("biz"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(path, st.ModTime(), st.ModTime())
	expire(p, "acme")
	wantConfig(t, d, "plan", "biz")

	age(t, p, "acme")
	expire(p, "acme")
	wantConfig(t, d, "plan", "biz") // read again: the copy was not trusted
	old := cachedFileOf(p, "acme", fileConfig)
	if old == nil || !old.trusted {
		t.Fatal("an old file is not trusted")
	}
	expire(p, "acme")
	wantConfig(t, d, "plan", "biz")
	if cachedFileOf(p, "acme", fileConfig) != old {
		t.Error("an old file unchanged on disk was read again at the recheck")
	}
	copyFile(t, path, path) // replaced by rename: a new inode
	expire(p, "acme")
	wantConfig(t, d, "plan", "biz")
	if cachedFileOf(p, "acme", fileConfig) == old {
		t.Error("a replaced file was not read again at the recheck")
	}

	start := time.Now()
	fine := start.Add(-racyWindow - 10*time.Millisecond).Truncate(time.Millisecond).Add(time.Microsecond)
	coarse := start.Add(-time.Second).Truncate(time.Second)
	for _, tc := range []struct {
		mtime time.Time
		want  bool
	}{{fine, true}, {coarse, false}, {start.Add(-coarseRacyWindow - time.Second).Truncate(time.Second), true}, {start, false}} {
		if got := cacheable(stamp{tc.mtime}, start); got != tc.want {
			t.Errorf("cacheable(mtime %s before the read) = %v, want %v", start.Sub(tc.mtime), got, tc.want)
		}
	}
}

// stamp is an os.FileInfo with only a modification time.
type stamp struct{ mtime time.Time }

func (s stamp) Name() string       { return "config.json" }
func (s stamp) Size() int64        { return 0 }
func (s stamp) Mode() os.FileMode  { return 0 }
func (s stamp) ModTime() time.Time { return s.mtime }
func (s stamp) IsDir() bool        { return false }
func (s stamp) Sys() any           { return nil }

// TestCacheIdleDropped: entries unused for a few janitor ticks are dropped;
// one in use stays.
func TestCacheIdleDropped(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Config{IdleTimeout: time.Hour}) // ticks driven by hand
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		setConfig(t, p, id, "plan", "pro")
		age(t, p, id)
	}
	da, _ := p.Data(ctx, "acme")
	dg, _ := p.Data(ctx, "globex")
	wantConfig(t, da, "plan", "pro")
	wantConfig(t, dg, "plan", "pro")
	for i := 0; i < 3; i++ {
		p.sweepCache()
		wantConfig(t, da, "plan", "pro")
	}
	if _, ok := p.cache.Load(silo.AccountID("globex")); ok {
		t.Error("idle account still cached")
	}
	if !cached(p, "acme", fileConfig) {
		t.Error("account in use was dropped")
	}
}

// TestCacheWriteRacesReads: while readers keep filling the cache (each
// read may store what it read just before a write), every write is seen by
// the writer's next read, with copies that would not be rechecked for an
// hour. Run with -race. TestRingChangedDuringRead replays one interleaving
// it leaves to chance: a rotation overwrites the data.key a read opened.
func TestCacheWriteRacesReads(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Config{IdleTimeout: time.Hour, CacheRecheck: time.Hour})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	setConfig(t, p, "acme", "plan", "v-0")
	declareSecret(t, p, "acme", "token")
	if err := p.PutSecret(ctx, "acme", "token", []byte("s-0")); err != nil {
		t.Fatal(err)
	}
	d, _ := p.Data(ctx, "acme")
	stop := make(chan struct{})
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := d.Config(ctx, "plan"); err != nil {
					t.Errorf("reader: %v", err)
					return
				}
				if _, err := d.Secret(ctx, "token"); err != nil {
					t.Errorf("reader: %v", err)
					return
				}
			}
		}()
	}
	for i := 1; i <= 30; i++ {
		v := fmt.Sprintf("v-%d", i)
		setConfig(t, p, "acme", "plan", v)
		if err := configIs(d, "plan", v); err != nil {
			t.Errorf("right after the write: %v", err)
		}
		s := fmt.Sprintf("s-%d", i)
		if err := p.PutSecret(ctx, "acme", "token", []byte(s)); err != nil {
			t.Fatal(err)
		}
		if err := secretIs(d, "token", s); err != nil {
			t.Errorf("right after the write: %v", err)
		}
		if i%10 == 0 {
			if err := p.RotateDataKey(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			if err := secretIs(d, "token", s); err != nil {
				t.Errorf("right after a rotation: %v", err)
			}
		}
	}
	close(stop)
	for g := 0; g < 4; g++ {
		<-done
	}
}

// TestCacheLateStoreIgnored replays the interleaving TestCacheWriteRacesReads
// leaves to chance: a read begins (takes the generation), the process
// writes the file, then the read stores what it read before the write. The
// next read must not serve it (must not); a read that begins after the
// write is served from memory (must).
func TestCacheLateStoreIgnored(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Config{IdleTimeout: time.Hour, CacheRecheck: time.Hour})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	setConfig(t, p, "acme", "plan", "old")
	d, _ := p.Data(ctx, "acme")
	wantConfig(t, d, "plan", "old")

	ac := p.cacheOf("acme")
	late := &cachedFile{gen: ac.gen.Load(), m: map[string]string{"plan": "old"}} // read before the write
	setConfig(t, p, "acme", "plan", "new")
	p.store(ac, slotConfig, late, p.now()) // stored after it
	wantConfig(t, d, "plan", "new")
	c := cachedFileOf(p, "acme", fileConfig)
	if c == nil || c.m["plan"] != "new" {
		t.Fatal("control: the read after the write did not cache what it read")
	}
	// Stored by hand in the slot (as if the generation check in store were
	// missing), it is still not served.
	ac.files[slotConfig].Store(late)
	wantConfig(t, d, "plan", "new")
}
