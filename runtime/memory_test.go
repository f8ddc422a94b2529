package runtime

import (
	"bytes"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// memoryOf returns a copy of the whole linear memory of acct's idle
// instances: everything their guests could read.
func (e *env) memoryOf(t *testing.T, acct silo.AccountID) [][]byte {
	t.Helper()
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	var out [][]byte
	for k, p := range e.rt.pools {
		if k.acct != acct {
			continue
		}
		for _, in := range p.idle {
			mem := in.mod.Memory()
			b, ok := mem.Read(0, mem.Size())
			if !ok {
				t.Fatalf("read %s's memory", acct)
			}
			out = append(out, slices.Clone(b))
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no idle instance", acct)
	}
	return out
}

func containsIn(mems [][]byte, s string) bool {
	for _, m := range mems {
		if bytes.Contains(m, []byte(s)) {
			return true
		}
	}
	return false
}

// A memory recycled from one account's closed instance holds nothing of it
// when another account's new instance gets it: the probe writes a secret
// all over acme's heap (a 1 MiB request body and a kept marker), closes
// the instance, and reads globex's whole memory after its cold start on
// the recycled mapping.
func TestRecycledMemoryHoldsNothing(t *testing.T) {
	if !haveMmap {
		t.Skip("linear memories are not recycled on this platform")
	}
	e := newEnv(t, Config{IdleTimeout: time.Hour})
	const secret = "acme-secret-7f3a9c"
	e.must(t, "acme", Request{Path: "/echo", Body: []byte(strings.Repeat(secret, 1<<20/len(secret)))}, 200)
	e.must(t, "acme", Request{Path: "/residue/set", Query: map[string][]string{"m": {secret}}}, 200)
	// Must: the probe can see the secret where it was written.
	if !containsIn(e.memoryOf(t, "acme"), secret) {
		t.Fatal("acme's own memory does not hold its secret: the probe sees nothing")
	}

	e.rt.sweep(time.Now().Add(2 * time.Hour))
	if s := e.rt.Stats(); s.Instances != 0 || s.PooledMemories != 1 {
		t.Fatalf("after eviction: %+v, want no instance and 1 pooled memory", s)
	}
	if got := e.must(t, "globex", Request{Path: "/residue/get"}, 200); got != "" {
		t.Fatalf("globex's new instance sees marker %q", got)
	}
	if s := e.rt.Stats(); s.PooledMemories != 0 {
		t.Fatalf("globex's cold start left %d pooled memories: it did not take the recycled one", s.PooledMemories)
	}
	// Must not: nothing of acme's secret in globex's memory.
	if containsIn(e.memoryOf(t, "globex"), secret) {
		t.Fatal("globex's recycled memory holds acme's secret")
	}
	// Must: a recycled memory serves like a new one.
	e.must(t, "globex", Request{Path: "/echo", Body: []byte("hi")}, 200)
}

// The pool is bounded, and an idle runtime gives its memories back.
func TestMemoryPoolDrains(t *testing.T) {
	if !haveMmap {
		t.Skip("linear memories are not recycled on this platform")
	}
	e := newEnv(t, Config{IdleTimeout: time.Hour})
	const max = 3
	e.rt.mem.max = max
	// max+2 instances at once: each invocation holds its instance.
	n := max + 2
	done := make(chan error, n)
	for range n {
		go func() {
			_, err := e.invoke(t, "acme", Request{Path: "/sleepms", Query: map[string][]string{"ms": {"1000"}}})
			done <- err
		}()
	}
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if s := e.rt.Stats(); s.Instances != n {
		t.Fatalf("%d instances after %d concurrent invocations, want %d", s.Instances, n, n)
	}
	now := time.Now().Add(2 * time.Hour)
	e.rt.sweep(now)
	if s := e.rt.Stats(); s.Instances != 0 || s.PooledMemories != max {
		t.Fatalf("after eviction: %d instances, %d pooled; want 0 and the cap %d", s.Instances, s.PooledMemories, max)
	}
	// The next sweep, with nothing taken, returns them.
	e.rt.sweep(now.Add(time.Hour))
	if s := e.rt.Stats(); s.PooledMemories != 0 {
		t.Fatalf("after a second sweep: %d pooled memories, want 0", s.PooledMemories)
	}
}

func TestZeroWritten(t *testing.T) {
	page := syscall.Getpagesize()
	for _, tc := range []struct {
		name    string
		written []int // pages written before zeroing
		size    int   // bytes handed to zeroWritten
	}{
		{"nothing written", nil, 16 * page},
		{"all written", []int{0, 1, 2, 3, 4, 5, 6, 7}, 8 * page},
		{"alternate pages", []int{0, 2, 4, 6}, 8 * page},
		{"runs", []int{1, 2, 3, 7, 8, 15}, 16 * page},
		{"last page of the range", []int{15}, 16 * page},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := syscall.Mmap(-1, 0, 32*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
			if err != nil {
				t.Skip(err)
			}
			defer syscall.Munmap(b)
			for _, p := range tc.written {
				for i := p * page; i < (p+1)*page; i += 97 {
					b[i] = 0xA5
				}
			}
			// Beyond the range given, nothing is touched.
			b[tc.size] = 0x5A
			zeroWritten(b[:tc.size])
			if i := slices.IndexFunc(b[:tc.size], func(c byte) bool { return c != 0 }); i >= 0 {
				t.Fatalf("byte %d (page %d) is %#x after zeroing", i, i/page, b[i])
			}
			if b[tc.size] != 0x5A {
				t.Error("zeroWritten cleared a byte beyond its range")
			}
		})
	}
}
