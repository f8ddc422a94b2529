package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// age sets the mtime of the account's config.json and secrets.json an hour
// back, as if they were written long ago: only then does a read cache them
// (see racyWindow).
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
	got, err := d.Config(context.Background(), key)
	if err != nil || got != want {
		t.Fatalf("Config(%q) = %q, %v; want %q", key, got, err, want)
	}
}

func wantSecret(t *testing.T, d provider.Data, name, want string) {
	t.Helper()
	got, err := d.Secret(context.Background(), name)
	if err != nil || string(got) != want {
		t.Fatalf("Secret(%q) = %q, %v; want %q", name, got, err, want)
	}
}

// cached reports whether p holds the account's file name in memory.
func cached(p *Provider, id silo.AccountID, name string) bool {
	v, ok := p.cache.Load(id)
	return ok && v.(*acctCache).slot(name).Load() != nil
}

// TestCacheSeesAnotherProvider: with config and secrets served from memory
// (must: the cache is in use), a change made by a second Provider on the
// same directory (another process: the CLI while silo up serves) is seen by
// the first at its next call, and so is the account's deletion.
func TestCacheSeesAnotherProvider(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p1 := newTestProvider(t, Config{Dir: dir, IdleTimeout: time.Hour})
	p2 := newTestProvider(t, Config{Dir: dir, IdleTimeout: time.Hour})
	if err := p1.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	setConfig(t, p1, "acme", "plan", "pro")
	declareSecret(t, p1, "acme", "token")
	if err := p1.PutSecret(ctx, "acme", "token", []byte("tok-1")); err != nil {
		t.Fatal(err)
	}
	d1, err := p1.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	age(t, p1, "acme")
	wantConfig(t, d1, "plan", "pro")
	wantSecret(t, d1, "token", "tok-1")
	if !cached(p1, "acme", fileConfig) || !cached(p1, "acme", fileSecrets) {
		t.Fatal("config.json and secrets.json are not cached after a read of old files")
	}
	wantConfig(t, d1, "plan", "pro") // from memory

	// Same-size values, so only the file's identity and mtime tell.
	setConfig(t, p2, "acme", "plan", "biz")
	if err := p2.PutSecret(ctx, "acme", "token", []byte("tok-2")); err != nil {
		t.Fatal(err)
	}
	wantConfig(t, d1, "plan", "biz")
	wantSecret(t, d1, "token", "tok-2")

	// Cached again, then deleted by the other provider.
	age(t, p1, "acme")
	wantConfig(t, d1, "plan", "biz")
	wantSecret(t, d1, "token", "tok-2")
	if !cached(p1, "acme", fileConfig) {
		t.Fatal("config.json not cached")
	}
	if err := p2.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := d1.Config(ctx, "plan"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("Config of an account deleted by another provider: %v, want CodeNotFound", err)
	}
	if _, err := d1.Secret(ctx, "token"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("Secret of an account deleted by another provider: %v, want CodeNotFound", err)
	}
}

// TestCacheInProcess: Apply and PutSecret in this process are seen at once
// even while the files are cached; DeleteAccount drops what was cached and
// the handle returns CodeNotFound; a re-created account starts empty.
func TestCacheInProcess(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Config{IdleTimeout: time.Hour})
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
	age(t, p, "acme")
	wantConfig(t, d, "plan", "pro")
	wantSecret(t, d, "token", "tok-1")
	if !cached(p, "acme", fileConfig) || !cached(p, "acme", fileSecrets) {
		t.Fatal("not cached after a read of old files")
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

	setConfig(t, p, "acme", "plan", "pro")
	age(t, p, "acme")
	wantConfig(t, d, "plan", "pro")
	wantSecret(t, d, "token", "tok-2")
	if err := p.DeleteAccount(ctx, "acme"); err != nil {
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
}

// TestCacheFreshFileNotCached: a file written within racyWindow is read
// from disk every time (a write in the same file-system clock tick could
// otherwise go unseen); once old, it is cached. A whole-second mtime (a file
// system with coarse timestamps) needs coarseRacyWindow.
func TestCacheFreshFileNotCached(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Config{IdleTimeout: time.Hour})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	setConfig(t, p, "acme", "plan", "pro")
	d, _ := p.Data(ctx, "acme")
	wantConfig(t, d, "plan", "pro")
	if cached(p, "acme", fileConfig) {
		t.Error("a file written just now was cached")
	}
	age(t, p, "acme")
	wantConfig(t, d, "plan", "pro")
	if !cached(p, "acme", fileConfig) {
		t.Error("an old file was not cached")
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
