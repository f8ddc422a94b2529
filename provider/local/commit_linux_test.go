//go:build linux

package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	silo "github.com/silo-run/silo"
)

// TestFailedCommitFailsItsWholeGroup: on a full file system (a small
// tmpfs, where the machine lets the test mount one) a commit shared by
// several writers fails, and every writer of it gets the same clear error
// (CodeUnavailable, naming data.db and the full disk), none is
// acknowledged: no key of the failed group is readable, then or after
// space is freed. The twin: once space is freed the same writes succeed.
func TestFailedCommitFailsItsWholeGroup(t *testing.T) {
	dir := smallDisk(t, "2m")
	ctx := context.Background()
	p, d := acmeData(t, Config{Dir: filepath.Join(dir, "silo")})
	filler := fillDisk(t, dir)

	const writers = 8
	value := make([]byte, 64<<10) // new pages: the commit must grow the store
	put := func(i int) error { return d.Put(ctx, "findings", fmt.Sprintf("k%d", i), value) }
	errs, sizes := sharedCommit(t, p, "acme", writers, put)
	if got := sizes; len(got) != 2 || got[1] != writers-1 {
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
	var wg sync.WaitGroup
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

// The sync-failure test: a child process (this test binary, re-executed)
// makes every fdatasync of its own fail with EIO through a seccomp filter,
// then writes from several goroutines into one shared commit. The failing
// sync is the one of the group's record in the account's log (wal.go), the
// only sync a group makes: the record is then overwritten where it starts,
// so that the next opener, which finds it in the page cache, does not
// replay it. A kill -9 cannot tell an acknowledgement sent before the sync
// from one sent after it (the page cache outlives the process); this can: a
// write acknowledged without a successful sync would be reported as acked
// here.
const syncFailChildEnv = "SILO_LOCAL_SYNCFAIL_CHILD"

// TestSyncFailChild is the child; it does nothing unless run by
// TestFailedSyncAcknowledgesNoWrite.
func TestSyncFailChild(t *testing.T) {
	dir := os.Getenv(syncFailChildEnv)
	if dir == "" {
		t.Skip("the child of TestFailedSyncAcknowledgesNoWrite")
	}
	ctx := context.Background()
	p := newTestProvider(t, Config{Dir: dir})
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	// The store is opened (and the account's files cached) before the
	// filter: only the commits below meet the failing syncs.
	if err := d.Put(ctx, "findings", "before", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := failSyncs(); err != nil {
		fmt.Println("skip", err)
		return
	}
	const writers = 8
	var mu sync.Mutex
	sharedCommit(t, p, "acme", writers, func(i int) error {
		key := fmt.Sprintf("k%d", i)
		err := d.Put(ctx, "findings", key, []byte("v"))
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			fmt.Println("ack", key)
		} else {
			fmt.Printf("err %s %s %s\n", key, silo.ErrorCode(err), silo.UserMessage(err))
		}
		return err
	})
}

// failSyncs installs, on every thread of this process, a seccomp filter
// under which fdatasync fails with EIO.
func failSyncs() error {
	var arch, nr uint32
	switch runtime.GOARCH {
	case "amd64":
		arch, nr = 0xc000003e, 75 // AUDIT_ARCH_X86_64, fdatasync
	case "arm64":
		arch, nr = 0xc00000b7, 83 // AUDIT_ARCH_AARCH64, fdatasync
	default:
		return fmt.Errorf("no seccomp filter for %s", runtime.GOARCH)
	}
	type sockFilter struct {
		code   uint16
		jt, jf uint8
		k      uint32
	}
	const (
		ldAbs  = 0x20 // BPF_LD | BPF_W | BPF_ABS
		jeq    = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
		ret    = 0x06 // BPF_RET | BPF_K
		errEIO = 0x00050000 | uint32(syscall.EIO)
		allow  = 0x7fff0000
	)
	prog := []sockFilter{
		{ldAbs, 0, 0, 4}, // seccomp_data.arch
		{jeq, 0, 3, arch},
		{ldAbs, 0, 0, 0}, // seccomp_data.nr
		{jeq, 0, 1, nr},
		{ret, 0, 0, errEIO},
		{ret, 0, 0, allow},
	}
	fprog := struct {
		len    uint16
		filter *sockFilter
	}{uint16(len(prog)), &prog[0]}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, 38 /* PR_SET_NO_NEW_PRIVS */, 1, 0, 0, 0, 0); e != 0 {
		return fmt.Errorf("prctl: %v", e)
	}
	seccomp := map[string]uintptr{"amd64": 317, "arm64": 277}[runtime.GOARCH]
	// SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC: all threads.
	if _, _, e := syscall.RawSyscall(seccomp, 1, 1, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("seccomp: %v", e)
	}
	runtime.KeepAlive(prog)
	return nil
}

// TestFailedSyncAcknowledgesNoWrite: when the sync of a shared commit
// fails, every writer of the group gets the same clear error
// (CodeUnavailable, an I/O error on the account's data.db), none is
// acknowledged, and none of their keys is in the store afterwards; the
// twin: the same writes, synced, are acknowledged and read back.
func TestFailedSyncAcknowledgesNoWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	ctx := context.Background()
	dir := stackedDir(t)

	cmd := exec.Command(os.Args[0], "-test.run=^TestSyncFailChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), syncFailChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var errs []string
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "skip "):
			t.Skip(strings.TrimPrefix(line, "skip "))
		case strings.HasPrefix(line, "ack "):
			t.Errorf("%s acknowledged though every sync failed", strings.TrimPrefix(line, "ack "))
		case strings.HasPrefix(line, "err "):
			errs = append(errs, line)
		}
	}
	if len(errs) != 8 {
		t.Fatalf("%d writers answered with an error, want 8; child output:\n%s", len(errs), out)
	}
	var first string
	for _, line := range errs {
		f := strings.SplitN(line, " ", 4) // err key code message
		if f[2] != string(silo.CodeUnavailable) || !strings.Contains(f[3], fileDB) || !strings.Contains(f[3], "I/O error") {
			t.Errorf("%s: want CodeUnavailable naming %s and the I/O error", line, fileDB)
		}
		if first == "" {
			first = f[3]
		} else if f[3] != first {
			t.Errorf("%s: want the same error as the others (%q)", line, first)
		}
	}
	t.Logf("the error of each writer: %s", first)

	p := newTestProvider(t, Config{Dir: dir})
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, "findings", "before"); err != nil {
		t.Errorf("the write acknowledged before the filter: %v", err)
	}
	for i := range 8 {
		key := fmt.Sprintf("k%d", i)
		if _, err := d.Get(ctx, "findings", key); silo.ErrorCode(err) != silo.CodeNotFound {
			t.Errorf("%s, whose sync failed, reads as %v; want CodeNotFound", key, err)
		}
		if err := d.Put(ctx, "findings", key, []byte("v")); err != nil {
			t.Errorf("put %s with working syncs: %v", key, err)
		} else if _, err := d.Get(ctx, "findings", key); err != nil {
			t.Errorf("get %s after its synced put: %v", key, err)
		}
	}
}
