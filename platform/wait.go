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
// remote (AWS), a data call (table, blob, config, secret or export read)
// that gets no answer is retried until the function's deadline. In both
// cases the runtime can only say the function timed out, and would send
// the operator to make it faster. Every data call an invocation makes
// through the provider is watched, its own account's and production's
// (exports), and an invocation that failed while one of them was blocked
// for long is reported as what it is, naming the store it waited for.

// maxDataWait is how long one data call may take before an invocation
// that fails during or after it is put down to the wait (half the
// function's timeout when that is shorter). A data call of the local
// provider takes microseconds to milliseconds unless it waits for the
// table file.
const maxDataWait = time.Second

// dataKind is what a data call reads or writes: one of the account's
// stores, and whether it is the production account's (an export read).
type dataKind uint32

const (
	kindTable dataKind = 1 + iota
	kindBlob
	kindConfig
	kindSecret

	kindProduction dataKind = 1 << 8 // or'ed in: a call on production's data (an export read)
)

// store names the store a call of kind k waits for, and its calls.
func (k dataKind) store() (store, calls string) {
	switch k &^ kindProduction {
	case kindBlob:
		return "blob store", "blob calls"
	case kindConfig:
		return "configuration", "config reads"
	case kindSecret:
		return "secrets", "secret reads"
	}
	return "table store", "table calls"
}

// dataWatch notes, for one invocation, how long the data calls made
// through its two handles (own: the account's; prod: production's, for
// export reads) block. A guest makes one host call at a time.
type dataWatch struct {
	remote      string        // the provider's name if its data is remote (not in the data dir); "" for the local provider
	running     atomic.Int64  // Unix nanoseconds at which the running call began; 0: none
	runningKind atomic.Uint32 // its dataKind
	longest     atomic.Int64  // the longest call that returned, in nanoseconds
	longestKind atomic.Uint32 // its dataKind

	own, prod watchedData
}

// watchedData is a data-plane handle whose calls a dataWatch notes.
type watchedData struct {
	provider.Data
	w    *dataWatch
	prod dataKind // kindProduction for production's handle, else 0
}

func (d *watchedData) begin(k dataKind) (int64, dataKind) {
	k |= d.prod
	t := time.Now().UnixNano()
	d.w.runningKind.Store(uint32(k))
	d.w.running.Store(t)
	return t, k
}

func (d *watchedData) end(start int64, k dataKind) {
	w := d.w
	w.running.Store(0)
	if n := time.Now().UnixNano() - start; n > w.longest.Load() {
		w.longestKind.Store(uint32(k))
		w.longest.Store(n)
	}
}

func (d *watchedData) Get(ctx context.Context, table, key string) ([]byte, error) {
	defer d.end(d.begin(kindTable))
	return d.Data.Get(ctx, table, key)
}

func (d *watchedData) Put(ctx context.Context, table, key string, value []byte) error {
	defer d.end(d.begin(kindTable))
	return d.Data.Put(ctx, table, key, value)
}

func (d *watchedData) Delete(ctx context.Context, table, key string) error {
	defer d.end(d.begin(kindTable))
	return d.Data.Delete(ctx, table, key)
}

func (d *watchedData) Add(ctx context.Context, table, key string, delta int64) (int64, error) {
	defer d.end(d.begin(kindTable))
	return d.Data.Add(ctx, table, key, delta)
}

func (d *watchedData) Scan(ctx context.Context, table, prefix, after string, limit int) ([]provider.KV, error) {
	defer d.end(d.begin(kindTable))
	return d.Data.Scan(ctx, table, prefix, after, limit)
}

func (d *watchedData) GetBlob(ctx context.Context, bucket, key string) ([]byte, error) {
	defer d.end(d.begin(kindBlob))
	return d.Data.GetBlob(ctx, bucket, key)
}

func (d *watchedData) PutBlob(ctx context.Context, bucket, key string, value []byte) error {
	defer d.end(d.begin(kindBlob))
	return d.Data.PutBlob(ctx, bucket, key, value)
}

func (d *watchedData) DeleteBlob(ctx context.Context, bucket, key string) error {
	defer d.end(d.begin(kindBlob))
	return d.Data.DeleteBlob(ctx, bucket, key)
}

func (d *watchedData) ListBlobs(ctx context.Context, bucket, prefix string, limit int) ([]string, error) {
	defer d.end(d.begin(kindBlob))
	return d.Data.ListBlobs(ctx, bucket, prefix, limit)
}

func (d *watchedData) Config(ctx context.Context, key string) (string, error) {
	defer d.end(d.begin(kindConfig))
	return d.Data.Config(ctx, key)
}

func (d *watchedData) Secret(ctx context.Context, name string) ([]byte, error) {
	defer d.end(d.begin(kindSecret))
	return d.Data.Secret(ctx, name)
}

// waited reports whether a data call blocked for at least d (one still
// running since d ago or more, or one that took d or more), and what it
// was a call of.
func (w *dataWatch) waited(d time.Duration) (dataKind, bool) {
	k := dataKind(w.runningKind.Load())
	if s := w.running.Load(); s != 0 && time.Now().UnixNano()-s >= int64(d) {
		return k, true
	}
	if w.longest.Load() >= int64(d) {
		return dataKind(w.longestKind.Load()), true
	}
	return 0, false
}

// watchData wraps an invocation's data-plane handles (own, the account's;
// prod, production's or nil) in a watch: always when the provider's data
// is remote, and for the local provider when other servers may share its
// data dir (a PostgreSQL store); nil otherwise. On SQLite a data dir has
// one server, so no local table call waits for another, and the request
// path pays nothing for the watch.
func (p *Platform) watchData(own, prod provider.Data) *dataWatch {
	if own == nil {
		return nil
	}
	w := &dataWatch{}
	if _, local := p.Provider.(accountDirs); local {
		if p.cfg.Store == nil {
			return nil
		}
	} else {
		w.remote = p.Provider.Name()
	}
	w.own = watchedData{Data: own, w: w}
	if prod != nil {
		w.prod = watchedData{Data: prod, w: w, prod: kindProduction}
	}
	return w
}

// handles returns the data-plane handles to give the function's host: the
// watched ones, or own and prod unchanged when w is nil.
func (w *dataWatch) handles(own, prod provider.Data) (provider.Data, provider.Data) {
	if w == nil {
		return own, prod
	}
	if prod != nil {
		prod = &w.prod
	}
	return &w.own, prod
}

// dataWaitError returns err, or, when the invocation failed while one of
// its data calls was blocked for long (w), an error that names the store
// the call waited for and why it waited (the account's data in use
// elsewhere, or a remote provider that did not answer), with err as its
// cause.
func dataWaitError(w *dataWatch, fn string, timeout time.Duration, err error) error {
	if w == nil || err == nil {
		return err
	}
	d := maxDataWait
	if timeout > 0 {
		d = min(d, timeout/2)
	}
	k, ok := w.waited(d)
	if !ok {
		return err
	}
	store, calls := k.store()
	what := "its account's " + store
	if k&kindProduction != 0 {
		what = "the production account's " + store + " (an export it reads)"
	}
	if w.remote != "" {
		return &silo.Error{Code: silo.CodeUnavailable, Err: err,
			Message: "function \"" + fn + "\" timed out waiting for " + what + ": the " + w.remote + " provider's " + calls + " got no answer in time (the service unreachable, failing or throttling); retry once it answers"}
	}
	why := "which another silo server on this data dir is using (its table file is open there)"
	if k&^kindProduction != kindTable {
		why = "which another silo process on this data dir is changing (it holds the account's lock)"
	}
	return &silo.Error{Code: silo.CodeUnavailable, Err: err,
		Message: "function \"" + fn + "\" timed out waiting for " + what + ", " + why + "; retry, and see docs/operations.md#several-servers-behind-a-load-balancer"}
}
