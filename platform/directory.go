package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/runtime"
	"github.com/silo-run/silo/store"
)

// directory is the gateway's view of the store: accounts, keys and live
// routes, plus the function specs the invoker needs. It caches what it read
// for Config.Refresh and keeps the decision point's policy of each account in
// step with the account's recorded resources.
//
// It holds state only for accounts in use: an account's view and policy are
// dropped when the account goes idle (see Config.Runtime) and read again on
// its next request, which compiles the same policy from the same records.
// The policy of an account is never removed while an invocation of it runs
// (pin), and a view in the cache always has its policy installed: both
// change together under mu.
type directory struct {
	p  *Platform
	gw atomic.Pointer[gateway.Gateway] // set once Open built it

	mu       sync.Mutex
	views    map[silo.AccountID]*view
	keys     map[string]keyEntry
	policies map[silo.AccountID]struct{} // accounts whose policy this directory installed
	inuse    map[silo.AccountID]int      // invocations running, by account (pin)
	// The most entries each map held since the sweep last replaced it (see
	// shrink).
	peakViews, peakKeys, peakPolicies, peakInuse int
}

// view is what was read about one account at one moment.
type view struct {
	acct   silo.Account
	routes []gateway.Route
	fns    map[string]silo.FunctionSpec
	data   provider.Data // the account's data plane handle
	read   time.Time     // wall clock: cache age, not platform time
	err    error         // silo.ErrNotFound for a missing account
	used   atomic.Int64  // wall clock of the last use, Unix nanoseconds
}

type keyEntry struct {
	k    store.APIKey
	err  error
	read time.Time
}

func newDirectory(p *Platform) *directory {
	return &directory{
		p: p, views: map[silo.AccountID]*view{}, keys: map[string]keyEntry{},
		policies: map[silo.AccountID]struct{}{}, inuse: map[silo.AccountID]int{},
	}
}

// invalidate forgets what was read about an account (all accounts if id is
// "") and every cached key, so the next request reads the store. The
// policies stay installed until the reload replaces them (or the idle sweep
// drops them), so running invocations keep deciding.
func (d *directory) invalidate(id silo.AccountID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id == "" {
		d.views, d.peakViews = map[silo.AccountID]*view{}, 0
	} else {
		delete(d.views, id)
	}
	d.keys, d.peakKeys = map[string]keyEntry{}, 0
}

// Invalidate makes the gateway read an account (every account if id is "")
// afresh from the store on its next request. Methods of Platform that change
// accounts call it; call it after changing the store by other means.
func (p *Platform) Invalidate(id silo.AccountID) {
	if p.dir != nil { // changes made while Open runs, before the gateway exists
		p.dir.invalidate(id)
	}
}

func (d *directory) fresh(t time.Time) bool { return time.Since(t) < d.p.cfg.Refresh }

// view returns the account's view, reading the store when the cached one is
// older than Refresh. Reading an account also (re)installs its policy, and
// that of production, in the decision point.
func (d *directory) view(ctx context.Context, id silo.AccountID) (*view, error) {
	d.mu.Lock()
	v := d.views[id]
	d.mu.Unlock()
	if v != nil && d.fresh(v.read) {
		v.used.Store(time.Now().UnixNano())
		return v, v.err
	}
	v, err := d.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if id != silo.ProductionID {
		if _, err := d.view(ctx, silo.ProductionID); err != nil && !errors.Is(err, silo.ErrNotFound) {
			return nil, err
		}
	}
	return v, v.err
}

// pin returns the account's view like view, and holds the account's policy
// in the decision point until unpin: the idle sweep does not drop it while
// an invocation runs.
func (d *directory) pin(ctx context.Context, id silo.AccountID) (*view, error) {
	for range 5 {
		v, err := d.view(ctx, id)
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

func (d *directory) unpin(id silo.AccountID) {
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
func (d *directory) dropLocked(id silo.AccountID, now time.Time, cutoff int64) bool {
	if id == silo.ProductionID || d.inuse[id] > 0 {
		return false
	}
	if v := d.views[id]; v != nil && (v.used.Load() >= cutoff || now.Sub(v.read) < d.p.cfg.Refresh) {
		return false
	}
	delete(d.views, id)
	if _, ok := d.policies[id]; ok {
		d.p.Policy.Remove(id)
		delete(d.policies, id)
	}
	return true
}

// idle is the runtime's OnIdle: the runtime has just dropped the account's
// state (no instance, no invocation for IdleTimeout/2), so the directory
// drops its view and policy, and the gateway its routes and bucket, unless
// the account was used since.
func (d *directory) idle(id silo.AccountID, now time.Time) {
	cutoff := now.Add(-d.p.cfg.idleTimeout() / 2).UnixNano()
	d.mu.Lock()
	dropped := d.dropLocked(id, now, cutoff)
	d.mu.Unlock()
	if !dropped {
		return
	}
	if gw := d.gw.Load(); gw != nil {
		gw.Forget(id)
	}
	d.p.mem.dropped(1)
}

// sweep drops what the directory holds for accounts unused since before
// now-idle (the accounts that ran no function, which the runtime does not
// report) and keys older than Refresh, replaces maps that emptied out (see
// shrink), and has the gateway drop its full rate-limit buckets.
func (d *directory) sweep(now time.Time, idle time.Duration) {
	cutoff := now.Add(-idle).UnixNano()
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
		if now.Sub(e.read) >= d.p.cfg.Refresh {
			delete(d.keys, id)
		}
	}
	d.views = shrink(d.views, &d.peakViews)
	d.keys = shrink(d.keys, &d.peakKeys)
	d.policies = shrink(d.policies, &d.peakPolicies)
	d.inuse = shrink(d.inuse, &d.peakInuse)
	d.mu.Unlock()
	if gw := d.gw.Load(); gw != nil {
		for _, id := range dropped {
			gw.Forget(id)
		}
		gw.Sweep()
	}
	d.p.mem.dropped(len(dropped))
}

// sweepLoop runs the directory's sweep every half idle period until Close.
func (p *Platform) sweepLoop() {
	defer close(p.swept)
	idle := p.cfg.idleTimeout()
	t := time.NewTicker(max(idle/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stopSweep:
			return
		case now := <-t.C:
			p.dir.sweep(now, idle)
		}
	}
}

// SweepIdle drops at once, as if the time were now, the per-account state
// of every account idle at now (see Config.Runtime): idle instances and the
// runtime's account state, cached views and policies, compiled routes and
// full rate-limit buckets, and cached keys older than Refresh. Background
// sweeps do the same every half idle period; tests call it with a time in
// the future. The provider's open files follow their own IdleTimeout.
func (p *Platform) SweepIdle(now time.Time) {
	p.Runtime.Sweep(now)
	p.dir.sweep(now, p.cfg.idleTimeout())
}

// held reports how many accounts the directory holds a view or a policy
// of, for tests.
func (d *directory) held() (views, policies int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.views), len(d.policies)
}

func (d *directory) load(ctx context.Context, id silo.AccountID) (*view, error) {
	v := &view{read: time.Now()}
	v.used.Store(v.read.UnixNano())
	var rs []silo.Resource
	err := d.p.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if v.acct, err = tx.Account(id); err != nil {
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
	if v.err == nil && v.acct.State == silo.StateDeleted {
		v.err = silo.Errorf(silo.CodeNotFound, "account %s is deleted", id)
	}
	var ap *isolation.AccountPolicy
	if v.err == nil {
		v.fns = map[string]silo.FunctionSpec{}
		for _, r := range rs {
			switch r.Type {
			case silo.TypeRoute:
				var rsp silo.RouteSpec
				if err := json.Unmarshal(r.Spec, &rsp); err != nil {
					return nil, fmt.Errorf("decode route %s of %s: %w", r.Name, id, err)
				}
				v.routes = append(v.routes, gateway.Route{Method: rsp.Method, Path: rsp.Path, Function: rsp.Function})
			case silo.TypeFunction:
				var fs silo.FunctionSpec
				if err := json.Unmarshal(r.Spec, &fs); err != nil {
					return nil, fmt.Errorf("decode function %s of %s: %w", r.Name, id, err)
				}
				v.fns[r.Name] = fs
			}
		}
		sort.Slice(v.routes, func(i, j int) bool {
			a, b := v.routes[i], v.routes[j]
			return a.Path < b.Path || a.Path == b.Path && a.Method < b.Method
		})
		if ap, err = isolation.Compile(v.acct, rs); err != nil {
			return nil, err
		}
		if v.data, err = d.p.Provider.Data(ctx, id); err != nil && !errors.Is(err, silo.ErrNotFound) {
			return nil, err
		}
	}
	d.mu.Lock()
	if ap != nil {
		d.p.Policy.Set(ap)
		d.policies[id] = struct{}{}
		grew(len(d.policies), &d.peakPolicies)
	} else {
		d.p.Policy.Remove(id)
		delete(d.policies, id)
	}
	d.views[id] = v
	grew(len(d.views), &d.peakViews)
	d.mu.Unlock()
	return v, nil
}

// Account implements gateway.Directory.
func (d *directory) Account(ctx context.Context, id silo.AccountID) (silo.Account, error) {
	v, err := d.view(ctx, id)
	if err != nil {
		return silo.Account{}, err
	}
	return v.acct, nil
}

// Routes implements gateway.Directory.
func (d *directory) Routes(ctx context.Context, id silo.AccountID) ([]gateway.Route, error) {
	v, err := d.view(ctx, id)
	if err != nil {
		return nil, err
	}
	return v.routes, nil
}

// Key implements gateway.Directory.
func (d *directory) Key(ctx context.Context, id string) (store.APIKey, error) {
	d.mu.Lock()
	e, ok := d.keys[id]
	d.mu.Unlock()
	if ok && d.fresh(e.read) {
		return e.k, e.err
	}
	e = keyEntry{read: time.Now()}
	err := d.p.Store.View(ctx, func(tx store.Tx) error {
		var err error
		e.k, err = tx.Key(id)
		return err
	})
	switch {
	case errors.Is(err, silo.ErrNotFound):
		e.err = silo.Errorf(silo.CodeNotFound, "no key %s", id)
	case err != nil:
		return store.APIKey{}, err
	}
	d.mu.Lock()
	if len(d.keys) > 100000 {
		d.keys, d.peakKeys = map[string]keyEntry{}, 0 // unknown key IDs must not grow it without bound
	}
	d.keys[id] = e
	grew(len(d.keys), &d.peakKeys)
	d.mu.Unlock()
	return e.k, e.err
}

// invoke implements gateway.Invoker: it finds the function's recorded spec,
// makes sure its artifact is loaded, binds a host to the account through the
// decision point, and runs it.
func (p *Platform) invoke(ctx context.Context, acct silo.AccountID, fn string, req gateway.Request) (gateway.Response, error) {
	v, err := p.dir.pin(ctx, acct)
	if err != nil {
		return gateway.Response{}, err
	}
	defer p.dir.unpin(acct)
	fs, ok := v.fns[fn]
	if !ok {
		return gateway.Response{}, silo.Errorf(silo.CodeNotFound, "the route's function %q is not deployed in this account; deploy again", fn)
	}
	if err := p.load(ctx, fs.Artifact); err != nil {
		p.logError(acct, fn, req.RequestID, "load function", err)
		return gateway.Response{}, err
	}
	if v.data == nil {
		return gateway.Response{}, silo.Errorf(silo.CodeUnavailable, "account %s has no data plane yet; try again shortly", acct)
	}
	if err := p.degraded(acct, fn, req.RequestID); err != nil {
		return gateway.Response{}, err
	}
	var prod provider.Data
	if pv, err := p.dir.view(ctx, silo.ProductionID); err == nil {
		prod = pv.data
	} else if !errors.Is(err, silo.ErrNotFound) {
		return gateway.Response{}, err
	}
	host := isolation.FunctionHost(p.Policy, acct, fn, p.Stored.Data(acct, v.data), prod, p.guestLog)
	pages := uint32(0)
	if fs.Memory > 0 {
		pages = uint32((fs.Memory + 65535) / 65536)
	}
	resp, err := p.Runtime.Invoke(ctx, runtime.Invocation{
		Account: acct, Function: fn, Digest: fs.Artifact, Handler: fs.Handler, Release: v.acct.Release,
		Limits: runtime.Limits{MemoryPages: pages, Timeout: fs.Timeout, Concurrency: fs.Concurrency},
		Host:   host,
		Request: runtime.Request{
			ID: req.RequestID, Method: req.Method, Path: req.Path, Params: req.PathParams,
			Query: req.Query, Header: req.Header, Body: req.Body,
		},
	})
	if derr := p.degraded(acct, fn, req.RequestID); derr != nil {
		// The invocation found a file of the account damaged: whatever
		// the function made of the failed call, the tenant is out of
		// service until the file is restored.
		return gateway.Response{}, derr
	}
	if err != nil {
		p.logError(acct, fn, req.RequestID, "invocation failed", err)
		return gateway.Response{}, err
	}
	return gateway.Response{Status: resp.Status, Header: resp.Header, Body: resp.Body}, nil
}

// msgDegraded is what a client of a degraded account is told; the damage
// itself is for the operator (the platform's log and the account's log).
const msgDegraded = "this tenant is out of service until its operator repairs its storage; try again later"

// degraded returns a CodeUnavailable error if a file of the account is
// damaged (the provider found it so and it is still in place), after
// logging the damage for the operator; nil otherwise. The account's other
// tenants' requests are not affected: no other account is looked at.
func (p *Platform) degraded(acct silo.AccountID, fn, reqID string) error {
	derr := p.damaged(acct)
	if derr == nil {
		return nil
	}
	if old, ok := p.degradedLog.Swap(acct, derr.Error()); !ok || old != derr.Error() { // once per damage
		p.cfg.Logger.Error("account degraded: a file of it is damaged; its requests get 503 until it is restored", "account", acct, "error", errors.Unwrap(derr))
		p.logError(acct, fn, reqID, "account degraded", derr)
	}
	return &silo.Error{Code: silo.CodeUnavailable, Message: msgDegraded, Err: derr}
}

// logError records a platform-side failure of an invocation in the
// account's own log, so silo logs shows it next to the guest's lines.
func (p *Platform) logError(acct silo.AccountID, fn, reqID, msg string, err error) {
	p.guestLog.LogAttrs(context.Background(), slog.LevelError, msg,
		slog.String("account", string(acct)), slog.String("function", fn),
		slog.String("request_id", reqID), slog.String("error", silo.UserMessage(err)), slog.String("source", "platform"))
}

// load makes sure the runtime has compiled the artifact with this digest,
// reading it from the artifact directory (compiled code comes from the
// compile cache when it is there).
func (p *Platform) load(ctx context.Context, digest string) error {
	if !validDigest(digest) {
		return silo.Errorf(silo.CodeInvalid, "function artifact %q is not a digest; deploy again", digest)
	}
	if _, ok := p.loaded.Load(digest); ok {
		return nil
	}
	p.compileMu.Lock()
	defer p.compileMu.Unlock()
	if _, ok := p.loaded.Load(digest); ok {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(p.artifacts, digest+".wasm"))
	if errors.Is(err, os.ErrNotExist) {
		return silo.Errorf(silo.CodeUnavailable, "function module %.12s is missing from %s; run silo apply to rebuild it", digest, p.artifacts)
	}
	if err != nil {
		return fmt.Errorf("read artifact %.12s: %w", digest, err)
	}
	got, err := p.Runtime.Compile(ctx, b)
	if err != nil {
		return err
	}
	if got != digest {
		return silo.Errorf(silo.CodeFailedCheck, "function module %.12s on disk does not match its digest (it is %.12s); rebuild it with silo apply", digest, got)
	}
	p.loaded.Store(digest, true)
	return nil
}

func validDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}
