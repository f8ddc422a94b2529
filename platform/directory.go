package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
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
type directory struct {
	p *Platform

	mu    sync.Mutex
	views map[silo.AccountID]*view
	keys  map[string]keyEntry
}

// view is what was read about one account at one moment.
type view struct {
	acct   silo.Account
	routes []gateway.Route
	fns    map[string]engine.FunctionSpec
	data   provider.Data // the account's data plane handle
	read   time.Time     // wall clock: cache age, not platform time
	err    error         // silo.ErrNotFound for a missing account
}

type keyEntry struct {
	k    store.APIKey
	err  error
	read time.Time
}

func newDirectory(p *Platform) *directory {
	return &directory{p: p, views: map[silo.AccountID]*view{}, keys: map[string]keyEntry{}}
}

// invalidate forgets what was read about an account (all accounts if id is
// "") and every cached key, so the next request reads the store.
func (d *directory) invalidate(id silo.AccountID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id == "" {
		d.views = map[silo.AccountID]*view{}
	} else {
		delete(d.views, id)
	}
	d.keys = map[string]keyEntry{}
}

// Invalidate makes the gateway read an account (every account if id is "")
// afresh from the store on its next request. Methods of Platform that change
// accounts call it; call it after changing the store by other means.
func (p *Platform) Invalidate(id silo.AccountID) { p.dir.invalidate(id) }

func (d *directory) fresh(t time.Time) bool { return time.Since(t) < d.p.cfg.Refresh }

// view returns the account's view, reading the store when the cached one is
// older than Refresh. Reading an account also (re)installs its policy, and
// that of production, in the decision point.
func (d *directory) view(ctx context.Context, id silo.AccountID) (*view, error) {
	d.mu.Lock()
	v := d.views[id]
	d.mu.Unlock()
	if v != nil && d.fresh(v.read) {
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

func (d *directory) load(ctx context.Context, id silo.AccountID) (*view, error) {
	v := &view{read: time.Now()}
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
	if v.err != nil {
		d.p.Policy.Remove(id)
	} else {
		v.fns = map[string]engine.FunctionSpec{}
		for _, r := range rs {
			switch r.Type {
			case silo.TypeRoute:
				var rsp engine.RouteSpec
				if err := json.Unmarshal(r.Spec, &rsp); err != nil {
					return nil, fmt.Errorf("decode route %s of %s: %w", r.Name, id, err)
				}
				v.routes = append(v.routes, gateway.Route{Method: rsp.Method, Path: rsp.Path, Function: rsp.Function})
			case silo.TypeFunction:
				var fs engine.FunctionSpec
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
		ap, err := isolation.Compile(v.acct, rs)
		if err != nil {
			return nil, err
		}
		if v.data, err = d.p.Provider.Data(ctx, id); err != nil && !errors.Is(err, silo.ErrNotFound) {
			return nil, err
		}
		d.p.Policy.Set(ap)
	}
	d.mu.Lock()
	d.views[id] = v
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
		d.keys = map[string]keyEntry{} // unknown key IDs must not grow it without bound
	}
	d.keys[id] = e
	d.mu.Unlock()
	return e.k, e.err
}

// invoke implements gateway.Invoker: it finds the function's recorded spec,
// makes sure its artifact is loaded, binds a host to the account through the
// decision point, and runs it.
func (p *Platform) invoke(ctx context.Context, acct silo.AccountID, fn string, req gateway.Request) (gateway.Response, error) {
	v, err := p.dir.view(ctx, acct)
	if err != nil {
		return gateway.Response{}, err
	}
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
	var prod provider.Data
	if pv, err := p.dir.view(ctx, silo.ProductionID); err == nil {
		prod = pv.data
	} else if !errors.Is(err, silo.ErrNotFound) {
		return gateway.Response{}, err
	}
	host := isolation.FunctionHost(p.Policy, acct, fn, v.data, prod, p.guestLog)
	pages := uint32(0)
	if fs.Memory > 0 {
		pages = uint32((fs.Memory + 65535) / 65536)
	}
	resp, err := p.Runtime.Invoke(ctx, runtime.Invocation{
		Account: acct, Function: fn, Digest: fs.Artifact, Handler: fs.Handler,
		Limits: runtime.Limits{MemoryPages: pages, Timeout: fs.Timeout, Concurrency: fs.Concurrency},
		Host:   host,
		Request: runtime.Request{
			ID: req.RequestID, Method: req.Method, Path: req.Path, Params: req.PathParams,
			Query: req.Query, Header: req.Header, Body: req.Body,
		},
	})
	if err != nil {
		p.logError(acct, fn, req.RequestID, "invocation failed", err)
		return gateway.Response{}, err
	}
	out := gateway.Response{Status: resp.Status, Body: resp.Body}
	if len(resp.Header) > 0 {
		out.Header = make(map[string]string, len(resp.Header))
		for k, vs := range resp.Header {
			if len(vs) > 0 {
				out.Header[http.CanonicalHeaderKey(k)] = vs[0]
			}
		}
	}
	return out, nil
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
