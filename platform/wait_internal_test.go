package platform

import (
	"context"
	"errors"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/provider/providertest"
)

// TestDataWaitErrorOnlyAfterALongWait: an invocation's timeout is put down
// to its account's data being in use elsewhere only when one of its table
// calls blocked for long (half the function's timeout, at most 1 s): a
// call still blocked by another process holding the table file (a second
// local provider on the same directory), or one that returned after such a
// wait. An invocation with no table call, or only quick ones, keeps the
// runtime's error.
func TestDataWaitErrorOnlyAfterALongWait(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *local.Provider {
		p, err := local.New(local.Config{Dir: dir, IdleTimeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	holder, waiter := open(), open()
	if err := holder.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, holder, "acme", providertest.Stack(t)[:1]) // table findings
	data := func(p *local.Provider) provider.Data {
		d, err := p.Data(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	held := data(holder)
	if err := held.Put(ctx, "findings", "k", []byte("v")); err != nil { // holder now has the file open
		t.Fatal(err)
	}
	watch := func(d provider.Data) *dataWatch {
		w := &dataWatch{}
		w.own = watchedData{Data: d, w: w}
		return w
	}
	timedOut := &silo.Error{Code: silo.CodeUnavailable, Message: `function "list" timed out (limit 2s); make it faster or raise its timeout`, Err: context.DeadlineExceeded}
	blamesData := func(err error) bool { return err != timedOut && errors.Is(err, context.DeadlineExceeded) }

	t.Run("no table call", func(t *testing.T) {
		w := watch(held)
		if err := dataWaitError(w, "list", 2*time.Second, timedOut); err != timedOut {
			t.Errorf("got %v, want the runtime's error", err)
		}
	})
	t.Run("quick table calls", func(t *testing.T) {
		w := watch(held)
		for range 3 {
			if _, err := w.own.Get(ctx, "findings", "k"); err != nil {
				t.Fatal(err)
			}
		}
		if err := dataWaitError(w, "list", 2*time.Second, timedOut); err != timedOut {
			t.Errorf("got %v, want the runtime's error", err)
		}
	})
	t.Run("a table call blocked by another process", func(t *testing.T) {
		w := watch(data(waiter))
		done := make(chan error, 1)
		go func() { _, err := w.own.Get(ctx, "findings", "k"); done <- err }()
		// The call blocks for as long as holder has the file open (up to
		// the provider's wait, 5 s): it is seen while it is still running
		// once it has run for half of a 2 ms timeout.
		for w.running.Load() == 0 || !blamesData(dataWaitError(w, "list", 2*time.Millisecond, timedOut)) {
			select {
			case err := <-done:
				t.Fatalf("the table call returned (%v) before it was seen blocked", err)
			case <-time.After(time.Millisecond):
			}
		}
		if err := dataWaitError(w, "list", 2*time.Millisecond, timedOut); silo.ErrorCode(err) != silo.CodeUnavailable ||
			silo.UserMessage(err) == timedOut.Message {
			t.Errorf("while blocked: got %v, want the account's data in use elsewhere", err)
		}
		holder.Close() // gives the file up: the call goes on and returns
		if err := <-done; err != nil {
			t.Fatalf("Get once the file was given up: %v", err)
		}
		if err := dataWaitError(w, "list", 2*time.Millisecond, timedOut); !blamesData(err) {
			t.Errorf("after the blocked call returned: got %v, want the account's data in use elsewhere", err)
		}
	})
}
