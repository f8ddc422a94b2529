// Package dataplane is what the data plane reads about accounts: the
// Directory caches, for the accounts in use, their registry row, live
// routes, function specs and data-plane handle, and keeps the decision
// point's policy of each account in step with its recorded resources.
//
// The gateway reads it through gateway.Directory; the invoker pins an
// account's view while a function of it runs. It imports the root package,
// store, provider (for the Data handle), isolation (the decision point) and
// gateway (its Route type and the Directory it implements); it must not
// import the engine, the runtime, the control plane or any store or
// provider implementation.
package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/store"
)

// DataSource gives the data-plane handle of an account (provider.Provider
// does).
type DataSource interface {
	Data(ctx context.Context, id silo.AccountID) (provider.Data, error)
}

// Forgetter is the part of the gateway the directory tells about accounts
// it dropped (*gateway.Gateway).
type Forgetter interface {
	Forget(id silo.AccountID)
	Sweep() int
}

// Config configures a Directory.
type Config struct {
	Store    store.Store
	Provider DataSource
	// Policy is the decision point the directory installs each account's
	// policy into (compiled by isolation.Policy.Compile) and removes it
	// from.
	Policy *isolation.Policy
	// Refresh is how long what was read about an account or a key is
	// trusted before it is read again. Default 1s.
	Refresh time.Duration
	// IdleTimeout is the runtime's: Idle keeps an account used within
	// IdleTimeout/2. Default 60s.
	IdleTimeout time.Duration
	// Dropped, if set, is told how many accounts each Idle or Sweep dropped.
	Dropped func(n int)
	// Wait bounds how long a request waits for a read of the store (an
	// account's view or a key): past it, the request fails with
	// CodeUnavailable saying that silo could not read the account in
	// time, and the next request reads again. Default 5s.
	Wait time.Duration
}

// Directory is the data plane's view of the store. It is safe for
// concurrent use.
//
// It holds state only for accounts in use: an account's view and policy are
// dropped when the account goes idle (Idle, Sweep) and read again on its
// next request, which compiles the same policy from the same records. The
// policy of an account is never removed while an invocation of it runs
// (Pin), and a view in the cache always has its policy installed: both
// change together under mu.
type Directory struct {
	cfg Config
	gw  atomic.Pointer[Forgetter]

	// Reads of the store, one at a time per account and per key.
	viewReads flight[silo.AccountID, *View]
	keyReads  flight[string, keyEntry]

	mu       sync.Mutex
	views    map[silo.AccountID]*View
	keys     map[string]keyEntry
	policies map[silo.AccountID]struct{} // accounts whose policy this directory installed
	inuse    map[silo.AccountID]int      // invocations running, by account (Pin)
	// The most entries each map held since the sweep last replaced it (see
	// shrink).
	peakViews, peakKeys, peakPolicies, peakInuse int
}

// View is what was read about one account at one moment. It is not
// changed once read.
type View struct {
	Account   silo.Account
	Routes    []gateway.Route
	Functions map[string]silo.FunctionSpec
	Data      provider.Data // the account's data-plane handle; nil if it has none yet
	read      time.Time     // wall clock: cache age, not platform time
	err       error         // silo.ErrNotFound for a missing account
	used      atomic.Int64  // wall clock of the last use, Unix nanoseconds
}

type keyEntry struct {
	k    store.APIKey
	err  error
	read time.Time
}

var _ gateway.Directory = (*Directory)(nil)

// New returns an empty Directory.
//
// # Errors
//
// CodeInvalid when Store, Provider or Policy is missing.
func New(cfg Config) (*Directory, error) {
	if cfg.Store == nil || cfg.Provider == nil || cfg.Policy == nil {
		return nil, silo.Errorf(silo.CodeInvalid, "dataplane: Store, Provider and Policy are required")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Minute
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 5 * time.Second
	}
	if cfg.Dropped == nil {
		cfg.Dropped = func(int) {}
	}
	return &Directory{
		cfg: cfg, views: map[silo.AccountID]*View{}, keys: map[string]keyEntry{},
		policies: map[silo.AccountID]struct{}{}, inuse: map[silo.AccountID]int{},
	}, nil
}

// SetGateway names the gateway that Idle and Sweep tell about the accounts
// they drop.
func (d *Directory) SetGateway(gw Forgetter) { d.gw.Store(&gw) }

func (d *Directory) gateway() Forgetter {
	if p := d.gw.Load(); p != nil {
		return *p
	}
	return nil
}

// Invalidate forgets what was read about an account (all accounts if id is
// "") and its cached keys, so the next request reads the store. Keys that
// were not found are forgotten too (one may have been created since); the
// keys of other accounts, and their views, are kept: a rollout announces
// each account it moves, and the requests of the others go on from the
// cache. The policies stay installed until the reload replaces them (or
// the idle sweep drops them), so running invocations keep deciding.
func (d *Directory) Invalidate(id silo.AccountID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Reads running now began before the change: they are not cached, and
	// the requests that come after read again (flight.forget). A key read
	// does not know its account before it ends, so all of them are.
	d.viewReads.forget(id, id == "")
	d.keyReads.forget("", true)
	if id == "" {
		d.views, d.peakViews = map[silo.AccountID]*View{}, 0
		d.keys, d.peakKeys = map[string]keyEntry{}, 0
		return
	}
	delete(d.views, id)
	for kid, e := range d.keys {
		if e.err != nil || e.k.Account == id {
			delete(d.keys, kid)
		}
	}
}

func (d *Directory) fresh(t time.Time) bool { return time.Since(t) < d.cfg.Refresh }

// View returns the account's view, reading the store when the cached one is
// older than Refresh. Reading an account also (re)installs its policy in
// the decision point; production's is read with production's view, which
// only a function that reads production exports needs. A missing or
// deleted account is silo.ErrNotFound. Concurrent calls for one account
// share one read, which waits at most Config.Wait (then: CodeUnavailable).
func (d *Directory) View(ctx context.Context, id silo.AccountID) (*View, error) {
	d.mu.Lock()
	v := d.views[id]
	d.mu.Unlock()
	if now := time.Now(); v != nil && now.Sub(v.read) < d.cfg.Refresh {
		v.used.Store(now.UnixNano())
		return v, v.err
	}
	v, err := d.viewReads.do(ctx, id, d.cfg.Wait, accountWhat(id), func(ctx context.Context, stale func() bool) (*View, error) {
		return d.load(ctx, id, stale)
	})
	if err != nil {
		return nil, err
	}
	return v, v.err
}

// accountWhat names what a view read reads, for waitError.
func accountWhat(id silo.AccountID) string {
	if id == silo.ProductionID {
		return "the production account's exports"
	}
	return "account " + string(id) + "'s configuration"
}

// Pin returns the account's view like View, and holds the account's policy
// in the decision point until Unpin: the idle sweep does not drop it while
// an invocation runs.
func (d *Directory) Pin(ctx context.Context, id silo.AccountID) (*View, error) {
	for range 5 {
		v, err := d.View(ctx, id)
		if err != nil {
			return nil, err
		}
		d.mu.Lock()
		if d.views[id] != nil { // cached, so its policy is installed
			d.inuse[id]++
			grew(len(d.inuse), &d.peakInuse)
			d.mu.Unlock()
			return v, nil
		}
		d.mu.Unlock() // dropped or invalidated meanwhile: read again
	}
	return nil, silo.Errorf(silo.CodeUnavailable, "account %s is changing; try again shortly", id)
}

// Unpin ends a Pin.
func (d *Directory) Unpin(id silo.AccountID) {
	d.mu.Lock()
	if d.inuse[id]--; d.inuse[id] <= 0 {
		delete(d.inuse, id)
	}
	d.mu.Unlock()
}

// dropLocked drops the view and policy of id unless it is production, an
// invocation of it runs, or its view was used at or after cutoff (Unix
// nanoseconds) or is still fresh at now (younger than Refresh: dropping it
// would cost the next request a read that it would not pay otherwise; a
// stale view is read again anyway). Called with d.mu held.
func (d *Directory) dropLocked(id silo.AccountID, now time.Time, cutoff int64) bool {
	if id == silo.ProductionID || d.inuse[id] > 0 {
		return false
	}
	if v := d.views[id]; v != nil && (v.used.Load() >= cutoff || now.Sub(v.read) < d.cfg.Refresh) {
		return false
	}
	delete(d.views, id)
	if _, ok := d.policies[id]; ok {
		d.cfg.Policy.Remove(id)
		delete(d.policies, id)
	}
	return true
}

// Idle is the runtime's OnIdle: the runtime has just dropped the account's
// state (no instance, no invocation for IdleTimeout/2), so the directory
// drops its view and policy, and the gateway its routes and bucket, unless
// the account was used since.
func (d *Directory) Idle(id silo.AccountID, now time.Time) {
	cutoff := now.Add(-d.cfg.IdleTimeout / 2).UnixNano()
	d.mu.Lock()
	dropped := d.dropLocked(id, now, cutoff)
	d.mu.Unlock()
	if !dropped {
		return
	}
	if gw := d.gateway(); gw != nil {
		gw.Forget(id)
	}
	d.cfg.Dropped(1)
}

// Sweep drops what the directory holds for accounts unused since before
// now-IdleTimeout (the accounts that ran no function, which the runtime
// does not report) and keys older than Refresh, replaces maps that emptied
// out (see shrink), and has the gateway drop its full rate-limit buckets.
func (d *Directory) Sweep(now time.Time) {
	cutoff := now.Add(-d.cfg.IdleTimeout).UnixNano()
	var dropped []silo.AccountID
	d.mu.Lock()
	for id := range d.views {
		if d.dropLocked(id, now, cutoff) {
			dropped = append(dropped, id)
		}
	}
	for id := range d.policies {
		if d.views[id] == nil && d.dropLocked(id, now, cutoff) { // invalidated, never read again
			dropped = append(dropped, id)
		}
	}
	for id, e := range d.keys {
		if now.Sub(e.read) >= d.cfg.Refresh {
			delete(d.keys, id)
		}
	}
	d.views = shrink(d.views, &d.peakViews)
	d.keys = shrink(d.keys, &d.peakKeys)
	d.policies = shrink(d.policies, &d.peakPolicies)
	d.inuse = shrink(d.inuse, &d.peakInuse)
	d.mu.Unlock()
	if gw := d.gateway(); gw != nil {
		for _, id := range dropped {
			gw.Forget(id)
		}
		gw.Sweep()
	}
	d.cfg.Dropped(len(dropped))
}

// Held reports how many accounts the directory holds a view or a policy
// of.
func (d *Directory) Held() (views, policies int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.views), len(d.policies)
}

// Metered is what metering needs of an account's request, from the cached
// view, without reading the store: the account's creation time, which
// tells it apart from an earlier account with its ID, and the declared
// memory of its function fn. Both are zero if the view is not there, the
// memory also if the function is not.
func (d *Directory) Metered(acct silo.AccountID, fn string) (created time.Time, memoryMiB int64) {
	d.mu.Lock()
	v := d.views[acct]
	d.mu.Unlock()
	if v == nil {
		return time.Time{}, 0
	}
	if fn != "" {
		memoryMiB = int64(v.Functions[fn].Memory >> 20)
	}
	return v.Account.Created, memoryMiB
}

// load reads an account and its recorded resources, installs its policy
// (isolation.Policy.Compile decides which accounts hold one: none for an
// account deleted or being deleted) and caches the view, unless the read
// went stale meanwhile (Invalidate): then it only returns the view, and Pin
// reads again.
func (d *Directory) load(ctx context.Context, id silo.AccountID, stale func() bool) (*View, error) {
	v := &View{read: time.Now()}
	v.used.Store(v.read.UnixNano())
	var rs []silo.Resource
	err := d.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if v.Account, err = tx.Account(id); err != nil {
			return err
		}
		rs, err = tx.Resources(id)
		return err
	})
	switch {
	case errors.Is(err, silo.ErrNotFound):
		v.err = silo.Errorf(silo.CodeNotFound, "no account %s", id)
	case err != nil:
		return nil, fmt.Errorf("read account %s: %w", id, err)
	}
	if v.err == nil && v.Account.State == silo.StateDeleted {
		v.err = silo.Errorf(silo.CodeNotFound, "account %s is deleted", id)
	}
	var ap *isolation.AccountPolicy // nil: the account holds no policy
	if v.err == nil {
		v.Functions = map[string]silo.FunctionSpec{}
		for _, r := range rs {
			switch r.Type {
			case silo.TypeRoute:
				var rsp silo.RouteSpec
				if err := json.Unmarshal(r.Spec, &rsp); err != nil {
					return nil, fmt.Errorf("decode route %s of %s: %w", r.Name, id, err)
				}
				v.Routes = append(v.Routes, gateway.Route{Method: rsp.Method, Path: rsp.Path, Function: rsp.Function})
			case silo.TypeFunction:
				var fs silo.FunctionSpec
				if err := json.Unmarshal(r.Spec, &fs); err != nil {
					return nil, fmt.Errorf("decode function %s of %s: %w", r.Name, id, err)
				}
				v.Functions[r.Name] = fs
			}
		}
		sort.Slice(v.Routes, func(i, j int) bool {
			a, b := v.Routes[i], v.Routes[j]
			return a.Path < b.Path || a.Path == b.Path && a.Method < b.Method
		})
		if ap, err = d.cfg.Policy.Compile(v.Account, rs); err != nil {
			return nil, err
		}
		if v.Data, err = d.cfg.Provider.Data(ctx, id); err != nil && !errors.Is(err, silo.ErrNotFound) {
			return nil, err
		}
	}
	d.mu.Lock()
	if stale() {
		d.mu.Unlock()
		return v, nil
	}
	if ap != nil {
		d.cfg.Policy.Set(ap)
		d.policies[id] = struct{}{}
		grew(len(d.policies), &d.peakPolicies)
	} else {
		d.cfg.Policy.Remove(id)
		delete(d.policies, id)
	}
	d.views[id] = v
	grew(len(d.views), &d.peakViews)
	d.mu.Unlock()
	return v, nil
}

// Account implements gateway.Directory.
func (d *Directory) Account(ctx context.Context, id silo.AccountID) (silo.Account, error) {
	v, err := d.View(ctx, id)
	if err != nil {
		return silo.Account{}, err
	}
	return v.Account, nil
}

// Routes implements gateway.Directory.
func (d *Directory) Routes(ctx context.Context, id silo.AccountID) ([]gateway.Route, error) {
	v, err := d.View(ctx, id)
	if err != nil {
		return nil, err
	}
	return v.Routes, nil
}

// Key implements gateway.Directory.
func (d *Directory) Key(ctx context.Context, id string) (store.APIKey, error) {
	d.mu.Lock()
	e, ok := d.keys[id]
	d.mu.Unlock()
	if ok && d.fresh(e.read) {
		return e.k, e.err
	}
	e, err := d.keyReads.do(ctx, id, d.cfg.Wait, "the API key", func(ctx context.Context, stale func() bool) (keyEntry, error) {
		return d.loadKey(ctx, id, stale)
	})
	if err != nil {
		return store.APIKey{}, err
	}
	return e.k, e.err
}

// loadKey reads a key from the store into the cache. (Apart from Key, so
// that the entry the store's closure fills is not allocated on every
// cached call.)
func (d *Directory) loadKey(ctx context.Context, id string, stale func() bool) (keyEntry, error) {
	e := keyEntry{read: time.Now()}
	err := d.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		e.k, err = tx.Key(id)
		return err
	})
	switch {
	case errors.Is(err, silo.ErrNotFound):
		e.err = silo.Errorf(silo.CodeNotFound, "no key %s", id)
	case err != nil:
		return keyEntry{}, err
	}
	d.mu.Lock()
	if !stale() {
		if len(d.keys) > 100000 {
			d.keys, d.peakKeys = map[string]keyEntry{}, 0 // unknown key IDs must not grow it without bound
		}
		d.keys[id] = e
		grew(len(d.keys), &d.peakKeys)
	}
	d.mu.Unlock()
	return e, nil
}
