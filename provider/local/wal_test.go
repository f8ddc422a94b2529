package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

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
	a.mu.Lock()
	defer a.mu.Unlock()
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

// powerCut is a logFile layer that keeps, for the real file under it, the
// bytes a disk would hold after a power loss: its content as of the last
// successful Sync. At the cut'th Sync the power goes: the account's
// directory is copied with the log as of its last sync, and that Sync and
// every later operation fails.
type powerCut struct {
	f       osLogFile
	path    string
	synced  []byte
	cut     *cutState
	dropped bool
}

type cutState struct {
	mu    sync.Mutex
	syncs int
	at    int
	out   string // where the directory is copied
	done  bool
}

var errPowerLost = errors.New("power lost")

func (c *powerCut) ReadAt(b []byte, off int64) (int, error) { return c.f.ReadAt(b, off) }

func (c *powerCut) WriteAt(b []byte, off int64) (int, error) {
	c.cut.mu.Lock()
	defer c.cut.mu.Unlock()
	if c.cut.done {
		return 0, errPowerLost
	}
	return c.f.WriteAt(b, off)
}

func (c *powerCut) Sync() error {
	c.cut.mu.Lock()
	defer c.cut.mu.Unlock()
	if c.cut.done {
		return errPowerLost
	}
	c.cut.syncs++
	if c.cut.syncs == c.cut.at {
		c.cut.done = true
		// The store is idle here: checkpoints run under the store's
		// lock, which the syncing group (or checkpoint) holds, and bbolt
		// synced its last commit. The log is as of its last sync.
		if err := copyDirTree(filepath.Dir(filepath.Dir(filepath.Dir(c.path))), c.cut.out); err != nil {
			panic(err)
		}
		rel, _ := filepath.Rel(filepath.Dir(filepath.Dir(filepath.Dir(c.path))), c.path)
		if err := os.WriteFile(filepath.Join(c.cut.out, rel), c.synced, 0o600); err != nil {
			panic(err)
		}
		return errPowerLost
	}
	if err := c.f.Sync(); err != nil {
		return err
	}
	b, err := os.ReadFile(c.path)
	if err != nil {
		return err
	}
	c.synced = b
	return nil
}

func (c *powerCut) Close() error { return c.f.Close() }

func copyDirTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
}

// TestPowerLossKeepsAckedWrites: 16 writers overwrite their own keys with
// growing numbers, with a checkpoint every few groups (so the log file is
// overwritten in cycles and holds records of earlier generations past its
// tail); the power goes at a log sync (every write to the log since the
// last sync is lost, bbolt's file is as bbolt last synced it). The store
// opened from what the disk holds then has, for every key, the last
// acknowledged value or the one in flight after it, never an older one.
func TestPowerLossKeepsAckedWrites(t *testing.T) {
	oldGroups := checkpointGroups
	checkpointGroups = 7
	defer func() { checkpointGroups = oldGroups }()
	for _, at := range []int{23, 64, 101} {
		t.Run(fmt.Sprint("cut at sync ", at), func(t *testing.T) {
			ctx := context.Background()
			dir := stackedDir(t)
			cut := &cutState{at: at, out: t.TempDir()}
			old := openLogFile
			openLogFile = func(path string) (logFile, bool, error) {
				f, created, err := old(path)
				if err != nil {
					return nil, false, err
				}
				b, _ := os.ReadFile(path)
				return &powerCut{f: f.(osLogFile), path: path, synced: b, cut: cut}, created, nil
			}
			p, err := New(Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			d, err := p.Data(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			const writers, keys = 16, 5
			acked := make([][keys]int, writers)
			var wg sync.WaitGroup
			var total atomic.Int64
			for w := range writers {
				wg.Go(func() {
					for n := 1; ; n++ {
						k := n % keys
						if err := d.Put(ctx, "findings", fmt.Sprintf("w%02d-%d", w, k), []byte(strconv.Itoa(n))); err != nil {
							return // the power is out
						}
						acked[w][k] = n
						total.Add(1)
					}
				})
			}
			wg.Wait()
			openLogFile = old
			p.Close()
			if !cut.done {
				t.Fatalf("the power never went (%d syncs)", cut.syncs)
			}

			p2 := newTestProvider(t, Config{Dir: cut.out})
			d2, err := p2.Data(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			lost := 0
			for w := range writers {
				for k := range keys {
					key := fmt.Sprintf("w%02d-%d", w, k)
					got, err := d2.Get(ctx, "findings", key)
					n, _ := strconv.Atoi(string(got))
					if acked[w][k] == 0 {
						continue
					}
					if err != nil || n < acked[w][k] || n > acked[w][k]+keys {
						lost++
						t.Errorf("%s after the power loss: %q, %v; acknowledged %d", key, got, err, acked[w][k])
					}
				}
			}
			if _, err := d2.Get(ctx, "findings", "never"); silo.ErrorCode(err) != silo.CodeNotFound {
				t.Errorf("never-written key: %v, want CodeNotFound", err)
			}
			t.Logf("%d writes acknowledged before the power went at sync %d; %d keys behind", total.Load(), at, lost)
		})
	}
}

// The crash tests of the log: a child process (this test binary,
// re-executed) kills itself with SIGKILL at a given point.
const logChildEnv = "SILO_LOCAL_LOG_CHILD"

// TestLogChild is the child: it does nothing unless run by
// TestCrashesAroundTheLog. Its point is one of synced:N (after the N-th
// group's log sync, before its answer), replay (before an opener applies
// the log), replayed (after the replay's commit to bbolt, before the log
// restarts), checkpoint:G (checkpoints every G groups; after the first one's
// commit, before the log restarts).
func TestLogChild(t *testing.T) {
	env := os.Getenv(logChildEnv)
	if env == "" {
		t.Skip("the child of TestCrashesAroundTheLog")
	}
	dir, point, _ := strings.Cut(env, ",")
	name, arg, _ := strings.Cut(point, ":")
	n, _ := strconv.Atoi(arg)
	die := func() {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	switch name {
	case "synced":
		var syncs atomic.Int64
		afterLogSync = func() {
			if syncs.Add(1) == int64(n) {
				die()
			}
		}
	case "replay":
		beforeReplay = die
	case "replayed":
		afterCheckpoint = die
	case "checkpoint":
		checkpointGroups = n
		afterCheckpoint = die
	}
	ctx := context.Background()
	p, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		key := fmt.Sprintf("%s-%05d", name, i)
		fmt.Println("try", key)
		if err := d.Put(ctx, "findings", key, []byte("value of "+key)); err != nil {
			fmt.Fprintln(os.Stderr, "put:", err)
			os.Exit(3)
		}
		fmt.Println("ack", key)
	}
}

// TestCrashesAroundTheLog kills a writer between a group's log sync and
// its answer (the write is then on disk though never acknowledged: the
// replay must bring it), then an opener in the middle of the replay twice
// (before it applies the log, and between its commit to bbolt and the
// log's restart: the replay is done again, or found done), then a writer
// between a checkpoint's commit and the log's restart; every acknowledged
// write, and the synced one, is in the store opened last.
func TestCrashesAroundTheLog(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	ctx := context.Background()
	dir := stackedDir(t)
	var want []string
	run := func(point string) (acked []string, tried string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestLogChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), logChildEnv+"="+dir+","+point)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if k, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
				acked = append(acked, k)
			}
			if k, ok := strings.CutPrefix(sc.Text(), "try "); ok {
				tried = k
			}
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("%s: child ended with %v, want its own SIGKILL; stderr:\n%s", point, err, stderr.String())
		}
		return acked, tried
	}
	acked, tried := run("synced:40")
	if len(acked) != 39 || tried == acked[len(acked)-1] {
		t.Fatalf("synced:40: %d acknowledged, last tried %s; want 39 and a 40th synced, unanswered", len(acked), tried)
	}
	want = append(want, acked...)
	want = append(want, tried) // synced, so replayed: not lost, though unacknowledged
	for _, point := range []string{"replay", "replayed"} {
		if acked, _ := run(point); len(acked) != 0 {
			t.Fatalf("%s: %d writes acknowledged before the store opened", point, len(acked))
		}
	}
	acked, _ = run("checkpoint:9")
	if len(acked) < 8 {
		t.Fatalf("checkpoint:9: %d writes acknowledged, want the 8 before the checkpoint's group", len(acked))
	}
	want = append(want, acked...)

	p := newTestProvider(t, Config{Dir: dir})
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range want {
		if got, err := d.Get(ctx, "findings", key); err != nil || string(got) != "value of "+key {
			t.Errorf("%s after the crashes: %q, %v", key, got, err)
		}
	}
	if _, err := d.Get(ctx, "findings", "synced-99999"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("never-written key: %v, want CodeNotFound", err)
	}
	t.Logf("%d writes checked", len(want))
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

// failRestart is a logFile whose Sync fails once after a write at the
// log's start (a restart's header), once armed.
type failRestart struct {
	osLogFile
	armed  *atomic.Bool
	header bool
}

func (f *failRestart) WriteAt(b []byte, off int64) (int, error) {
	f.header = off == 0
	return f.osLogFile.WriteAt(b, off)
}

func (f *failRestart) Sync() error {
	if f.header && f.armed.CompareAndSwap(true, false) {
		return syscall.EIO
	}
	return f.osLogFile.Sync()
}

// TestFailedLogRestartReopensTheStore: when the log cannot be restarted
// after a checkpoint (its sync fails), the store is taken out of service
// and the next write opens it again, instead of every later write failing
// until the store is closed; every acknowledged write is there.
func TestFailedLogRestartReopensTheStore(t *testing.T) {
	oldGroups := checkpointGroups
	checkpointGroups = 3
	defer func() { checkpointGroups = oldGroups }()
	var armed atomic.Bool
	old := openLogFile
	openLogFile = func(path string) (logFile, bool, error) {
		f, created, err := old(path)
		if err != nil {
			return nil, false, err
		}
		return &failRestart{osLogFile: f.(osLogFile), armed: &armed}, created, nil
	}
	defer func() { openLogFile = old }()
	ctx := context.Background()
	_, d := acmeData(t, Config{})
	if err := d.Put(ctx, "findings", "k0", []byte("v")); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	for i := 1; i < 10; i++ {
		if err := d.Put(ctx, "findings", fmt.Sprint("k", i), []byte("v")); err != nil {
			t.Errorf("put k%d after a failed restart of the log: %v", i, err)
		}
	}
	if armed.Load() {
		t.Fatal("no restart of the log failed: the test needs one")
	}
	for i := range 10 {
		if _, err := d.Get(ctx, "findings", fmt.Sprint("k", i)); err != nil {
			t.Errorf("get k%d: %v", i, err)
		}
	}
}
