package platform

import (
	"context"
	"sync/atomic"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// This file tells a function that timed out waiting for its account's data
// from one that was slow. With the local provider, an account's table file
// is open in one process at a time: a request that reaches a server while
// another server sharing the data dir has the file open waits for it
// (README, "Several servers on PostgreSQL"). With a provider whose data is
// remote (AWS), a table call that gets no answer is retried until the
// function's deadline. In both cases the runtime can only say the function
// timed out, and would send the operator to make it faster. The
// invocation's table calls are watched, and an invocation that failed
// while a table call was blocked for long is reported as what it is.

// maxDataWait is how long one table call may take before an invocation
// that fails during or after it is put down to the wait (half the
// function's timeout when that is shorter). A table call of the local
// provider takes microseconds to milliseconds unless it waits for the
// table file.
const maxDataWait = time.Second

// tableWatch is an account's data-plane handle for one invocation that
// notes how long its table calls (those that open the account's table
// file) block. A guest makes one host call at a time.
type tableWatch struct {
	provider.Data
	remote  string       // the provider's name if its data is remote (not in the data dir); "" for the local provider
	running atomic.Int64 // Unix nanoseconds at which the running table call began; 0: none
	longest atomic.Int64 // the longest table call that returned, in nanoseconds
}

func (w *tableWatch) begin() int64 {
	t := time.Now().UnixNano()
	w.running.Store(t)
	return t
}

func (w *tableWatch) end(start int64) {
	w.running.Store(0)
	if d := time.Now().UnixNano() - start; d > w.longest.Load() {
		w.longest.Store(d)
	}
}

func (w *tableWatch) Get(ctx context.Context, table, key string) ([]byte, error) {
	defer w.end(w.begin())
	return w.Data.Get(ctx, table, key)
}

func (w *tableWatch) Put(ctx context.Context, table, key string, value []byte) error {
	defer w.end(w.begin())
	return w.Data.Put(ctx, table, key, value)
}

func (w *tableWatch) Delete(ctx context.Context, table, key string) error {
	defer w.end(w.begin())
	return w.Data.Delete(ctx, table, key)
}

func (w *tableWatch) Add(ctx context.Context, table, key string, delta int64) (int64, error) {
	defer w.end(w.begin())
	return w.Data.Add(ctx, table, key, delta)
}

func (w *tableWatch) Scan(ctx context.Context, table, prefix, after string, limit int) ([]provider.KV, error) {
	defer w.end(w.begin())
	return w.Data.Scan(ctx, table, prefix, after, limit)
}

// waited reports whether a table call blocked for at least d: one still
// running since d ago or more, or one that took d or more.
func (w *tableWatch) waited(d time.Duration) bool {
	if s := w.running.Load(); s != 0 && time.Now().UnixNano()-s >= int64(d) {
		return true
	}
	return w.longest.Load() >= int64(d)
}

// watchTables wraps an account's data-plane handle for one invocation:
// always when the provider's data is remote, and for the local provider
// when other servers may share its data dir (a PostgreSQL store); nil
// otherwise. On SQLite a data dir has one server, so no local table call
// waits for another, and the request path pays nothing for the watch.
func (p *Platform) watchTables(d provider.Data) *tableWatch {
	if d == nil {
		return nil
	}
	if _, local := p.Provider.(accountDirs); local {
		if p.cfg.Store == nil {
			return nil
		}
		return &tableWatch{Data: d}
	}
	return &tableWatch{Data: d, remote: p.Provider.Name()}
}

// dataWaitError returns err, or, when the invocation failed while one of
// its table calls was blocked for long (w), an error that says what the
// call waited for (the account's data in use elsewhere, or a remote
// provider that did not answer), with err as its cause.
func dataWaitError(w *tableWatch, fn string, timeout time.Duration, err error) error {
	if w == nil || err == nil {
		return err
	}
	d := maxDataWait
	if timeout > 0 {
		d = min(d, timeout/2)
	}
	if !w.waited(d) {
		return err
	}
	if w.remote != "" {
		return &silo.Error{Code: silo.CodeUnavailable, Err: err,
			Message: "function \"" + fn + "\" timed out waiting for its account's data: the " + w.remote + " provider's table calls got no answer in time (the service unreachable, failing or throttling); retry once it answers"}
	}
	return &silo.Error{Code: silo.CodeUnavailable, Err: err,
		Message: "function \"" + fn + "\" timed out waiting for its account's data, which another silo server on this data dir is using (its table file is open there); retry, and see docs/operations.md#several-servers-behind-a-load-balancer"}
}
