//go:build linux

package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	silo "github.com/silo-run/silo"
)

// TestFailedCommitFailsItsWholeGroup: on a full file system (a small
// tmpfs, where the machine lets the test mount one) a commit shared by
// several writers fails, and every writer of it gets the same clear error
// (CodeUnavailable, naming data.db and the full disk), none is
// acknowledged: no key of the failed group is readable, then or after
// space is freed. The twin: once space is freed the same writes succeed.
func TestFailedCommitFailsItsWholeGroup(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); run as root to test a full disk", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	ctx := context.Background()
	p := newTestProvider(t, Config{Dir: filepath.Join(dir, "silo")})
	stackAccount(t, p, "acme")
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break // full
		}
	}
	f.Close()

	const writers = 8
	value := make([]byte, 64<<10) // new pages: the commit must grow the store
	put := func(i int) error { return d.Put(ctx, "findings", fmt.Sprintf("k%d", i), value) }
	sizes := holdFirstGroup(t, p, "acme", writers-1)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { errs[i] = put(i) })
	}
	wg.Wait()
	if got := sizes(); len(got) != 2 || got[1] != writers-1 {
		t.Fatalf("commit group sizes = %v, want [1 %d]: the test needs a shared commit", got, writers-1)
	}
	for i, err := range errs {
		msg := silo.UserMessage(err)
		if silo.ErrorCode(err) != silo.CodeUnavailable || !strings.Contains(msg, fileDB) || !strings.Contains(msg, "disk is full") {
			t.Errorf("put k%d on a full disk: %q (code %s), want CodeUnavailable naming %s and the full disk", i, msg, silo.ErrorCode(err), fileDB)
		}
		if first := silo.UserMessage(errs[0]); msg != first {
			t.Errorf("put k%d on a full disk: %q, want the same error as k0's %q", i, msg, first)
		}
	}
	unread := func(when string) {
		for i := range writers {
			if _, err := d.Get(ctx, "findings", fmt.Sprintf("k%d", i)); silo.ErrorCode(err) != silo.CodeNotFound {
				t.Errorf("%s: k%d, whose write failed, reads as %v; want CodeNotFound", when, i, err)
			}
		}
	}
	t.Logf("the error of each writer: %s", silo.UserMessage(errs[0]))
	unread("on the full disk")

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	unread("after freeing space")
	for i := range writers {
		wg.Go(func() { errs[i] = put(i) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("put k%d after freeing space: %v", i, err)
			continue
		}
		if got, err := d.Get(ctx, "findings", fmt.Sprintf("k%d", i)); err != nil || len(got) != len(value) {
			t.Errorf("get k%d after freeing space: %d bytes, %v", i, len(got), err)
		}
	}
}
