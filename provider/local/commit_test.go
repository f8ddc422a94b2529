package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/providertest"
)

// sharedCommit runs write(0) alone, holds its commit until write(1) …
// write(n-1), started meanwhile, are all queued behind it, so that they
// share the next commit whatever the scheduling, and returns each write's
// error and the sizes of the groups committed.
func sharedCommit(t *testing.T, p *Provider, id silo.AccountID, n int, write func(i int) error) (errs []error, sizes []int) {
	t.Helper()
	var mu sync.Mutex
	held := make(chan struct{})
	first := true
	beforeGroup = func(size int) {
		mu.Lock()
		sizes = append(sizes, size)
		hold := first
		first = false
		mu.Unlock()
		if !hold {
			return
		}
		close(held)
		a := p.ref(id)
		defer p.unref(a)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			a.commits.mu.Lock()
			queued := len(a.commits.pending)
			a.commits.mu.Unlock()
			if queued >= n-1 {
				return
			}
		}
		t.Errorf("only some of %d writes queued behind the first commit", n-1)
	}
	defer func() { beforeGroup = nil }()
	errs = make([]error, n)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = write(0) })
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		wg.Wait()
		t.Fatalf("the first write never reached a commit: %v", errs[0])
	}
	for i := 1; i < n; i++ {
		wg.Go(func() { errs[i] = write(i) })
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return errs, sizes
}

func stackAccount(t *testing.T, p *Provider, id silo.AccountID) {
	t.Helper()
	if err := p.CreateAccount(context.Background(), id, silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, id, providertest.Stack(t))
}

// acmeData returns a provider configured with cfg and the data of its
// account acme, with the test stack applied.
func acmeData(t *testing.T, cfg Config) (*Provider, provider.Data) {
	t.Helper()
	p := newTestProvider(t, cfg)
	stackAccount(t, p, "acme")
	d, err := p.Data(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

// stackedDir returns a data directory holding account acme with the test
// stack applied, its provider closed (for a child process to open).
func stackedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stackAccount(t, p, "acme")
	p.Close()
	return dir
}

// TestWritesShareCommits shows concurrent writes to one account committed
// in shared transactions, each write answered with its own result and
// readable afterwards.
func TestWritesShareCommits(t *testing.T) {
	ctx := context.Background()
	p, d := acmeData(t, Config{})
	const writers = 16
	c0, w0 := p.Commits()
	errs, sizes := sharedCommit(t, p, "acme", writers, func(i int) error {
		return d.Put(ctx, "findings", fmt.Sprintf("k%02d", i), []byte(fmt.Sprintf("v%02d", i)))
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("put k%02d: %v", i, err)
		}
	}
	for i := range writers {
		got, err := d.Get(ctx, "findings", fmt.Sprintf("k%02d", i))
		if want := fmt.Sprintf("v%02d", i); err != nil || string(got) != want {
			t.Errorf("get k%02d = %q, %v; want %q", i, got, err, want)
		}
	}
	if got := sizes; len(got) != 2 || got[0] != 1 || got[1] != writers-1 {
		t.Errorf("commit group sizes = %v, want [1 %d] (%d writes in 2 transactions)", got, writers-1, writers)
	}
	if c, w := p.Commits(); c-c0 != 2 || w-w0 != writers {
		t.Errorf("Commits counted %d transactions and %d writes, want 2 and %d", c-c0, w-w0, writers)
	}
}

// TestRunnableWritersJoinTheCommit: two writers ready to run at once on
// one processor share a commit: the first to run yields before it takes
// its group, so the second queues in time. Without the yield the first
// commits alone and the second waits for a commit of its own, every time.
// A system call on the way (the value's random nonce, a recheck of the
// cached key ring) can hand the processor over early and split a pair
// whatever the commit does, so the test runs ten pairs and wants most of
// them shared.
func TestRunnableWritersJoinTheCommit(t *testing.T) {
	ctx := context.Background()
	_, d := acmeData(t, Config{})
	// The store is opened and the key ring cached first.
	if err := d.Put(ctx, "findings", "warm", []byte("v")); err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var mu sync.Mutex
	var sizes []int
	beforeGroup = func(size int) {
		mu.Lock()
		sizes = append(sizes, size)
		mu.Unlock()
	}
	defer func() { beforeGroup = nil }()
	const pairs = 10
	var all [][]int
	shared := 0
	for round := range pairs {
		mu.Lock()
		sizes = nil
		mu.Unlock()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() { errs[i] = d.Put(ctx, "findings", fmt.Sprintf("r%d-k%d", round, i), []byte("v")) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: put k%d: %v", round, i, err)
			}
		}
		mu.Lock()
		all = append(all, sizes)
		if len(sizes) == 1 && sizes[0] == 2 {
			shared++
		}
		mu.Unlock()
	}
	if shared <= pairs/2 {
		t.Errorf("%d of %d pairs of writers ready at once shared a commit (group sizes %v), want most of them", shared, pairs, all)
	}
}

// TestFailingWriteLeavesItsGroup: a write that fails in a shared commit
// (a table that does not exist) gets its own error, and every other write
// of its group is committed.
func TestFailingWriteLeavesItsGroup(t *testing.T) {
	ctx := context.Background()
	p, d := acmeData(t, Config{})
	const writers = 8
	c0, w0 := p.Commits()
	errs, sizes := sharedCommit(t, p, "acme", writers, func(i int) error {
		table := "findings"
		if i == 5 {
			// Not caught before the transaction: validateStorageName
			// passes, the bucket is missing.
			table = "missing"
		}
		return d.Put(ctx, table, fmt.Sprintf("k%d", i), []byte("v"))
	})
	for i, err := range errs {
		if i == 5 {
			if c := silo.ErrorCode(err); c != silo.CodeNotFound {
				t.Errorf("put into a missing table: got %v (code %s), want CodeNotFound", err, c)
			}
			continue
		}
		if err != nil {
			t.Errorf("put k%d: %v", i, err)
		}
		if _, err := d.Get(ctx, "findings", fmt.Sprintf("k%d", i)); err != nil {
			t.Errorf("get k%d after its group was retried: %v", i, err)
		}
	}
	// The second commit carried all 7 queued writes; it was rolled back
	// once for the failing write and retried with the other 6.
	if got := sizes; len(got) != 3 || got[1] != writers-1 || got[2] != writers-2 {
		t.Errorf("commit group sizes = %v, want [1 %d %d]", got, writers-1, writers-2)
	}
	// Counted as committed: the first write alone, then the retried group
	// without the failing write; not the attempt rolled back.
	if c, w := p.Commits(); c-c0 != 2 || w-w0 != writers-1 {
		t.Errorf("Commits counted %d transactions and %d writes, want 2 and %d", c-c0, w-w0, writers-1)
	}
}

// The kill -9 test of acknowledged writes: a child process (this test
// binary, re-executed) writes from many goroutines and prints each key once
// its Put returned; the parent SIGKILLs it mid-stream and looks for every
// printed key in the reopened store.
const writerChildEnv = "SILO_LOCAL_WRITER_CHILD"

// TestWriterChild is the child; it does nothing unless run by
// TestAckedWritesSurviveKill9.
func TestWriterChild(t *testing.T) {
	dir := os.Getenv(writerChildEnv)
	if dir == "" {
		t.Skip("the child of TestAckedWritesSurviveKill9")
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
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for n := 0; ; n++ {
				key := fmt.Sprintf("w%02d-%06d", w, n)
				if err := d.Put(ctx, "findings", key, []byte("value of "+key)); err != nil {
					fmt.Fprintln(os.Stderr, "put:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintln(os.Stdout, "ack", key) // unbuffered: one write(2)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestAckedWritesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	ctx := context.Background()
	dir := stackedDir(t)

	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriterChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), writerChildEnv+"="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a number of acknowledgements that differs per round,
		// so the kill lands at different points of the commit cycle.
		killAt := 200 + 170*round
		var acked []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			key, ok := strings.CutPrefix(sc.Text(), "ack ")
			if !ok {
				continue
			}
			acked = append(acked, key)
			if len(acked) == killAt {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, want SIGKILL; stderr:\n%s", round, err, stderr.String())
		}
		// Lines read after the kill are acknowledgements too (printed
		// before it): all of them count.
		if len(acked) < killAt {
			t.Fatalf("round %d: %d writes acknowledged before the child ended, want at least %d", round, len(acked), killAt)
		}

		p, err := New(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		d, err := p.Data(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		lost := 0
		for _, key := range acked {
			got, err := d.Get(ctx, "findings", key)
			if err != nil || string(got) != "value of "+key {
				lost++
				if lost <= 5 {
					t.Errorf("round %d: acknowledged write %s after kill -9: got %q, %v", round, key, got, err)
				}
			}
		}
		// The control: a key never written is not found, so the check
		// above can tell present from absent.
		if _, err := d.Get(ctx, "findings", "w99-never"); silo.ErrorCode(err) != silo.CodeNotFound {
			t.Errorf("never-written key: got %v, want CodeNotFound", err)
		}
		p.Close()
		t.Logf("round %d: %d writes acknowledged, %d lost after kill -9", round, len(acked), lost)
		if lost > 0 {
			t.Fatalf("round %d: %d of %d acknowledged writes lost", round, lost, len(acked))
		}
	}
}
