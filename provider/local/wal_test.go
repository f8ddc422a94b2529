package local

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	"go.etcd.io/bbolt"
)

// logged returns the number of records in acme's log not yet checkpointed
// (-1: the store is not open).
func logged(p *Provider, id silo.AccountID) int {
	a := p.ref(id)
	defer p.unref(a)
	p.mu.Lock()
	s := a.db
	p.mu.Unlock()
	if s == nil {
		return -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups
}

// checkpointNow closes acme's store (which checkpoints it).
func checkpointNow(t *testing.T, p *Provider, id silo.AccountID) {
	t.Helper()
	a := p.ref(id)
	defer p.unref(a)
	mustDo(t, a.lockMu(context.Background()))
	defer a.mu.unlock()
	if err := p.closeDBLocked(a); err != nil {
		t.Fatal(err)
	}
}

// TestScanMergesLogAndStore: with some writes checkpointed into bbolt and
// later ones (overwrites, deletions, new keys) only in the log's overlay,
// Get and Scan answer from both as one table: every prefix, after and
// limit against a model. The twin: after a checkpoint (the overlay empty)
// the same answers.
func TestScanMergesLogAndStore(t *testing.T) {
	ctx := context.Background()
	p, d := acmeData(t, Config{})
	model := map[string]string{}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{}
	for _, pre := range []string{"a", "ab", "b", "ba", "c"} {
		for i := range 6 {
			keys = append(keys, fmt.Sprintf("%s%d", pre, i))
		}
	}
	write := func(n int) {
		for range n {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(3) == 0 {
				if err := d.Delete(ctx, "findings", k); err != nil {
					t.Fatal(err)
				}
				delete(model, k)
				continue
			}
			v := strconv.Itoa(rng.IntN(1000))
			if err := d.Put(ctx, "findings", k, []byte(v)); err != nil {
				t.Fatal(err)
			}
			model[k] = v
		}
	}
	check := func(when string) {
		for _, k := range keys {
			got, err := d.Get(ctx, "findings", k)
			want, ok := model[k]
			switch {
			case ok && (err != nil || string(got) != want):
				t.Errorf("%s: get %s = %q, %v; want %q", when, k, got, err, want)
			case !ok && silo.ErrorCode(err) != silo.CodeNotFound:
				t.Errorf("%s: get deleted %s = %q, %v; want CodeNotFound", when, k, got, err)
			}
		}
		sorted := slices.Sorted(func(yield func(string) bool) {
			for k := range model {
				if !yield(k) {
					return
				}
			}
		})
		for _, prefix := range []string{"", "a", "ab", "b", "c", "z"} {
			for _, after := range []string{"", "a", "a3", "ab2", "b", "b5", "ba0", "c9"} {
				for _, limit := range []int{1, 3, 7, 100} {
					var want []provider.KV
					for _, k := range sorted {
						if strings.HasPrefix(k, prefix) && k > after && len(want) < limit {
							want = append(want, provider.KV{Key: k, Value: []byte(model[k])})
						}
					}
					got, err := d.Scan(ctx, "findings", prefix, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					if fmt.Sprint(got) != fmt.Sprint(want) && !(len(got) == 0 && len(want) == 0) {
						t.Errorf("%s: scan(%q, after %q, limit %d) = %s, want %s", when, prefix, after, limit, got, want)
					}
				}
			}
		}
	}
	write(60)
	checkpointNow(t, p, "acme")
	write(60)
	if n := logged(p, "acme"); n <= 0 {
		t.Fatalf("%d records in the log: the test needs writes the store does not hold yet", n)
	}
	check("store and log")
	checkpointNow(t, p, "acme")
	check("after a checkpoint")
	if n := logged(p, "acme"); n != 0 {
		t.Errorf("%d records in the log after a checkpoint and reads only, want 0", n)
	}
}

// TestStaleLogIsIgnored: a log older than the store's last checkpoint (a
// file-by-file restore that copied data.wal before a checkpoint and data.db
// after it) is not replayed over the newer values. The twin: the same log
// with the store it belongs to is.
func TestStaleLogIsIgnored(t *testing.T) {
	ctx := context.Background()
	dir := stackedDir(t)
	wal := filepath.Join(dir, "accounts", "acme", fileLog)
	db := filepath.Join(dir, "accounts", "acme", fileDB)
	p := newTestProvider(t, Config{Dir: dir})
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "k", []byte("old")); err != nil {
		t.Fatal(err)
	}
	oldLog, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	oldDB, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "k", []byte("new")); err != nil {
		t.Fatal(err)
	}
	p.Close()

	get := func() string {
		p := newTestProvider(t, Config{Dir: dir})
		defer p.Close()
		d, err := p.Data(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		v, err := d.Get(ctx, "findings", "k")
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	if err := os.WriteFile(wal, oldLog, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "new" {
		t.Errorf("store checkpointed after the log was copied: k = %q, want %q (the older log replayed over it)", got, "new")
	}
	// The twin: that log with the store of its time replays.
	if err := os.WriteFile(db, oldDB, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wal, oldLog, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "old" {
		t.Errorf("the log with the store it belongs to: k = %q, want %q", got, "old")
	}
}

// TestRemovedTableTakesItsLoggedWrites: a table removed while writes to it
// are only in the log, then created again, is empty: the removal
// checkpoints the log before it deletes the table. The twin: a key of
// another table, written alongside, is still there.
func TestRemovedTableTakesItsLoggedWrites(t *testing.T) {
	ctx := context.Background()
	p, d := acmeData(t, Config{})
	if err := d.Put(ctx, "findings", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "sessions", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if n := logged(p, "acme"); n <= 0 {
		t.Fatalf("%d records in the log: the test needs writes only there", n)
	}
	res := &silo.Resource{Type: silo.TypeTable, Name: "findings"}
	if err := p.Apply(ctx, "acme", silo.Change{Op: silo.OpDelete, Type: silo.TypeTable, Name: "findings", Current: res}); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(ctx, "acme", silo.Change{Op: silo.OpCreate, Type: silo.TypeTable, Name: "findings", Desired: res}); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get(ctx, "findings", "k"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("k in the table created again: %q, %v; want CodeNotFound", v, err)
	}
	if v, err := d.Get(ctx, "sessions", "k"); err != nil || string(v) != "v" {
		t.Errorf("k in the table left alone: %q, %v; want %q", v, err, "v")
	}
}

// TestRotationAndMigrationWithALog: writes only in the log (the store open,
// then a copy of the directory as a kill -9 leaves it) read back after a
// data-key rotation in the same process, after one in a process that
// opens the store only after rotating, and after New finishes an
// interrupted migration of that account (its store is sealed: the log is
// replayed by the next opener). The must-not twin: an unsealed (legacy)
// store with a log holding writes is refused, not sealed over.
func TestRotationAndMigrationWithALog(t *testing.T) {
	ctx := context.Background()
	p, d := acmeData(t, Config{})
	put := func(d provider.Data, k string) {
		t.Helper()
		if err := d.Put(ctx, "findings", k, []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	want := func(d provider.Data, when string, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if v, err := d.Get(ctx, "findings", k); err != nil || string(v) != "value of "+k {
				t.Errorf("%s: %s = %q, %v", when, k, v, err)
			}
		}
	}
	put(d, "a")
	if n := logged(p, "acme"); n <= 0 {
		t.Fatalf("%d records in the log: the test needs writes only there", n)
	}
	if err := p.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	want(d, "after a rotation, same process", "a")
	put(d, "b")
	crashed := t.TempDir()
	if err := copyDirTree(p.Dir(), crashed); err != nil {
		t.Fatal(err)
	}
	if n := logged(p, "acme"); n <= 0 {
		t.Fatalf("%d records in the log when copied", n)
	}

	migrating := t.TempDir()
	if err := copyDirTree(crashed, migrating); err != nil {
		t.Fatal(err)
	}
	legacy := t.TempDir()
	if err := copyDirTree(crashed, legacy); err != nil {
		t.Fatal(err)
	}

	p2 := newTestProvider(t, Config{Dir: crashed})
	if err := p2.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	d2, err := p2.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want(d2, "rotated before the store was opened", "a", "b")

	// A migrated account (its store marked sealed) whose .migrating is
	// still there, as after a crash between the store's rename and the
	// mark's removal.
	setSealedMark(t, filepath.Join(migrating, "accounts", "acme", fileDB), true)
	if err := os.Remove(filepath.Join(migrating, fileAllSealed)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(migrating, "accounts", "acme", fileMigrating), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p3 := newTestProvider(t, Config{Dir: migrating})
	d3, err := p3.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want(d3, "after the migration was finished", "a", "b")

	// The twin: a legacy store (no sealed mark) with a log holding writes.
	if err := os.Remove(filepath.Join(legacy, fileAllSealed)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(legacy, "accounts", "acme", fileMigrating), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	setSealedMark(t, filepath.Join(legacy, "accounts", "acme", fileDB), false)
	if _, err := New(Config{Dir: legacy}); err == nil || !strings.Contains(err.Error(), fileLog+" holds writes") {
		t.Errorf("New on an unsealed store with a log holding writes: %v; want the refusal naming %s", err, fileLog)
	}
}

// setSealedMark sets or removes the mark of a sealed store (seal.go) in the
// store file at path.
func setSealedMark(t *testing.T, path string, on bool) {
	t.Helper()
	db, err := bbolt.Open(path, fileMode, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists([]byte(metaBucket))
		if err != nil {
			return err
		}
		if on {
			return m.Put([]byte(metaSealed), []byte("v1"))
		}
		return m.Delete([]byte(metaSealed))
	}); err != nil {
		t.Fatal(err)
	}
}

// TestReadsSeeAckedWritesAcrossCheckpoints: readers racing writers and
// checkpoints (one every 2 groups) never read a value older than one
// acknowledged before the read began: a read takes the overlay before its
// bbolt transaction, so a checkpoint moving a write from one to the other
// cannot hide it.
func TestReadsSeeAckedWritesAcrossCheckpoints(t *testing.T) {
	oldGroups := checkpointGroups
	checkpointGroups = 2
	defer func() { checkpointGroups = oldGroups }()
	ctx := context.Background()
	p, d := acmeData(t, Config{})
	const writers, rounds = 4, 100
	var acked [writers]atomic.Int64
	var wg, readers sync.WaitGroup
	var stale atomic.Int64
	var done atomic.Bool
	for w := range writers {
		wg.Go(func() {
			for n := int64(1); n <= rounds; n++ {
				if err := d.Put(ctx, "findings", fmt.Sprint("w", w), []byte(strconv.FormatInt(n, 10))); err != nil {
					t.Error(err)
					return
				}
				acked[w].Store(n)
			}
		})
	}
	for r := range 4 {
		readers.Go(func() {
			for i := 0; !done.Load(); i++ {
				w := (r + i) % writers
				before := acked[w].Load()
				if before == 0 {
					continue
				}
				v, err := d.Get(ctx, "findings", fmt.Sprint("w", w))
				n, _ := strconv.ParseInt(string(v), 10, 64)
				if err != nil || n < before {
					if stale.Add(1) <= 5 {
						t.Errorf("w%d read as %q, %v after %d was acknowledged", w, v, err, before)
					}
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	readers.Wait()
	c, _ := p.Commits()
	t.Logf("%d commits, %d stale reads", c, stale.Load())
}

// TestLoggedWritesPassBboltsChecks: a write bbolt would refuse is refused
// when it is made, not logged: a checkpoint could never apply it, and the
// log would grow for ever. The twin: a write within bbolt's bounds is
// taken.
func TestLoggedWritesPassBboltsChecks(t *testing.T) {
	var x byte
	huge := unsafe.Slice(&x, bbolt.MaxValueSize+1) // never read: only its length is checked
	tv := &tableView{name: "t", v: &view{ch: &changes{}}}
	for _, c := range []struct {
		name     string
		key, val []byte
		want     error
	}{
		{"empty key", nil, []byte("v"), bbolt.ErrKeyRequired},
		{"key over bbolt's maximum", make([]byte, bbolt.MaxKeySize+1), []byte("v"), bbolt.ErrKeyTooLarge},
		{"value over bbolt's maximum", []byte("k"), huge, bbolt.ErrValueTooLarge},
		{"within bounds", []byte("k"), []byte("v"), nil},
	} {
		if err := tv.Put(c.key, c.val); !errors.Is(err, c.want) {
			t.Errorf("%s: Put = %v, want %v", c.name, err, c.want)
		}
	}
	if err := tv.Delete(nil); !errors.Is(err, bbolt.ErrKeyRequired) {
		t.Errorf("Delete of an empty key = %v, want %v", err, bbolt.ErrKeyRequired)
	}
	if got := len(tv.v.ch.tables["t"]); got != 1 {
		t.Errorf("%d writes taken, want the one within bounds", got)
	}
}
