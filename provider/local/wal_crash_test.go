package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	silo "github.com/silo-run/silo"
)

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
