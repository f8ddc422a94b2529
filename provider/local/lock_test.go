package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/providertest"
)

// TestLockWaitEndsWithItsContext holds, in turn, each lock a change or a
// function's first read of an account waits for: the account's lock file
// as another process would (a second open file description, which flock
// treats as another holder), the account's in-process lock as another
// change of this process would, the master key's as a rotation would, and
// the store file's as another process with the store open would.
// A call made meanwhile gives up when its context ends, with an unavailable
// error naming what holds it; the same call made once the holder let go
// succeeds (the twin).
func TestLockWaitEndsWithItsContext(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Config{})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	tables, err := p.Resources(ctx, "acme")
	mustDo(t, err)
	table := ""
	for _, r := range tables {
		if r.Type == silo.TypeTable {
			table = r.Name
		}
	}
	if table == "" {
		t.Fatal("the test stack declares no table")
	}

	// holders; each returns its release.
	otherProcess := func(t *testing.T) func() {
		f, err := os.OpenFile(filepath.Join(p.cfg.Dir, dirLocks, "acme.lock"), os.O_CREATE|os.O_RDWR, fileMode)
		mustDo(t, err)
		mustDo(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
		return func() { f.Close() }
	}
	otherChange := func(t *testing.T) func() {
		a := p.ref("acme")
		unlock, err := p.lockAccount(ctx, a)
		mustDo(t, err)
		return func() { unlock(); p.unref(a) }
	}
	// Another process has the account's store open (bbolt's lock on
	// data.db), for longer than a store's open waits by itself.
	storeOpen := func(t *testing.T) func() {
		wait := storeLockWait
		storeLockWait = time.Hour
		p.closeIdle(time.Now().Add(24 * time.Hour))
		f, err := os.OpenFile(filepath.Join(p.accounts, "acme", fileDB), os.O_RDWR, fileMode)
		mustDo(t, err)
		mustDo(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
		return func() { f.Close(); storeLockWait = wait }
	}
	rotation := func(t *testing.T) func() {
		unlock, err := p.lockMaster(ctx, true)
		mustDo(t, err)
		return unlock
	}
	// calls
	putSecret := func(ctx context.Context) error { return p.PutSecret(ctx, "acme", "api_token", []byte("t")) }
	firstRead := func(ctx context.Context) error {
		p.closeIdle(time.Now().Add(24 * time.Hour)) // the read has to open the store
		d, err := p.Data(ctx, "acme")
		if err != nil {
			return err
		}
		_, err = d.Get(ctx, table, "k")
		if silo.ErrorCode(err) == silo.CodeNotFound {
			err = nil
		}
		return err
	}
	rotateDataKey := func(ctx context.Context) error { return p.RotateDataKey(ctx, "acme") }

	tests := []struct {
		name string
		hold func(*testing.T) func()
		call func(context.Context) error
		want string
	}{
		{"another process holds the account", otherProcess, putSecret, "another process is changing account acme"},
		{"another change holds the account", otherChange, putSecret, "another change to account acme is under way"},
		{"a change holds the account's first read", otherChange, firstRead, "another change to account acme is under way"},
		{"a rotation holds the master key", rotation, rotateDataKey, "a master-key rotation is under way"},
		{"another process has the store open", storeOpen, firstRead, "is open in another silo process"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := tt.hold(t)
			// The deadline ends the wait; it is long enough that the
			// call's own first check of its context passes.
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			got := make(chan error, 1)
			go func() { got <- tt.call(dctx) }()
			var err error
			select {
			case err = <-got:
			case <-time.After(time.Minute):
				release()
				<-got
				t.Fatal("the call still waited for the lock long after its context ended")
			}
			release()
			if silo.ErrorCode(err) != silo.CodeUnavailable || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("call while held: got %v (code %v), want unavailable saying %q", err, silo.ErrorCode(err), tt.want)
			}
			if err := tt.call(ctx); err != nil {
				t.Fatalf("the same call once released: %v", err)
			}
		})
	}
}
