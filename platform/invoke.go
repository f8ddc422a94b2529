package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/runtime"
	"github.com/silo-run/silo/spec"
)

// This file is the platform's invoker: it runs a function of an account
// for the gateway (and for schedules and smoke tests), reading the account
// through the data plane's directory (package dataplane).

// Invalidate makes the gateway read an account (every account if id is "")
// afresh from the store on its next request, and the provider read its
// config and secrets afresh (when it caches them: the local provider).
// Methods of Platform that change accounts call it, and so does every
// change announced by a server sharing the store; call it after changing
// the store or the account by other means.
func (p *Platform) Invalidate(id silo.AccountID) {
	if f, ok := p.Provider.(cacheForgetter); ok {
		f.Forget(id)
	}
	if p.dir != nil { // changes made while Open runs, before the gateway exists
		p.dir.Invalidate(id)
	}
	p.wakeAhead() // the change may be a release made current or an account moved
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
			p.dir.Sweep(now)
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
	p.dir.Sweep(now)
}

// invoke implements gateway.Invoker: it finds the function's recorded spec,
// makes sure its artifact is loaded, binds a host to the account through the
// decision point, and runs it.
func (p *Platform) invoke(ctx context.Context, acct silo.AccountID, fn string, req gateway.Request) (gateway.Response, error) {
	start := time.Now()
	v, err := p.dir.Pin(ctx, acct)
	if err != nil {
		return gateway.Response{}, err
	}
	defer p.dir.Unpin(acct)
	fs, ok := v.Functions[fn]
	if !ok {
		return gateway.Response{}, silo.Errorf(silo.CodeNotFound, "the route's function %q is not deployed in this account; deploy again", fn)
	}
	if err := p.loadFor(ctx, fn, fs.Artifact, fs.Timeout); err != nil {
		p.logError(acct, fn, req.RequestID, "load function", err)
		if !errors.Is(err, errPreparing) {
			// The module does not load: the release's fault, not the
			// caller's. The gates count it as a failed request; the
			// client is told no more than that (the operator's fix is
			// in the account's log and the server's).
			p.Runtime.CountFailure(acct, v.Account.Release, len(req.Body), time.Since(start))
			if p.published != nil {
				p.published.Touch(acct, v.Account.Release)
			}
			return gateway.Response{}, &silo.Error{Code: silo.CodeInternal, Message: fmt.Sprintf("function %s could not be loaded", fn), Err: err}
		}
		return gateway.Response{}, err
	}
	if v.Data == nil {
		return gateway.Response{}, silo.Errorf(silo.CodeUnavailable, "account %s has no data plane yet; try again shortly", acct)
	}
	if err := p.degraded(acct, fn, req.RequestID); err != nil {
		return gateway.Response{}, err
	}
	// Production's view (its data handle and, in the decision point, its
	// exports) only for a function that lists exports: no other can read
	// production, so no other waits for it.
	var prod provider.Data
	if len(fs.Exports) > 0 && acct != silo.ProductionID {
		if pv, err := p.dir.View(ctx, silo.ProductionID); err == nil {
			prod = pv.Data
		} else if !errors.Is(err, silo.ErrNotFound) {
			return gateway.Response{}, err
		}
	}
	data := p.Stored.Data(acct, v.Data)
	watch := p.watchData(data, prod)
	data, prod = watch.handles(data, prod)
	host := isolation.FunctionHost(p.Policy, acct, fn, data, prod, p.guestLog)
	pages := uint32(0)
	if fs.Memory > 0 {
		pages = uint32((fs.Memory + 65535) / 65536)
	}
	resp, err := p.Runtime.Invoke(ctx, runtime.Invocation{
		Account: acct, Function: fn, Digest: fs.Artifact, Handler: fs.Handler, Release: v.Account.Release,
		Limits: runtime.Limits{MemoryPages: pages, Timeout: fs.Timeout, Concurrency: fs.Concurrency},
		Host:   host,
		Request: runtime.Request{
			ID: req.RequestID, Method: req.Method, Path: req.Path, Params: req.PathParams,
			Query: req.Query, Header: req.Header, Body: req.Body,
		},
	})
	if p.published != nil {
		p.published.Touch(acct, v.Account.Release) // counted: for the other servers' gates
	}
	if derr := p.degraded(acct, fn, req.RequestID); derr != nil {
		// The invocation found a file of the account damaged: whatever
		// the function made of the failed call, the tenant is out of
		// service until the file is restored.
		return gateway.Response{}, derr
	}
	if err != nil {
		err = dataWaitError(watch, fn, fs.Timeout, err)
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

// compileHook, if set, runs in a compilation before it reads the module;
// tests use it to hold a compilation under way.
var compileHook atomic.Pointer[func(digest string)]

// compiling is one compilation of a function module, under way in the
// background; done is closed when err is set.
type compiling struct {
	done chan struct{}
	err  error
}

// load makes sure the runtime has compiled the artifact with this digest,
// reading it from the artifact directory (compiled code comes from the
// compile cache when it is there). It waits for the compilation until
// ctx is done.
func (p *Platform) load(ctx context.Context, digest string) error {
	if _, ok := p.loaded.Load(digest); ok { // only digests are stored
		return nil
	}
	if !validDigest(digest) {
		return silo.Errorf(silo.CodeInvalid, "function artifact %q is not a digest; deploy again", digest)
	}
	c := p.compile(digest)
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("load function module %.12s: %w", digest, ctx.Err())
	}
}

// loadFor is load for an invocation of function fn: it waits for the
// compilation (its own, or another request's of the same module) until
// ctx is done or for bound (the function's timeout), whichever comes
// first, and then returns a CodeUnavailable error saying the function is
// still being prepared (errPreparing in its chain); the compilation goes
// on, for the requests after. Any other error is the compilation's own: the
// module does not load.
func (p *Platform) loadFor(ctx context.Context, fn, digest string, bound time.Duration) error {
	if _, ok := p.loaded.Load(digest); ok {
		return nil
	}
	if !validDigest(digest) {
		return silo.Errorf(silo.CodeInvalid, "function artifact %q is not a digest; deploy again", digest)
	}
	if bound <= 0 {
		bound = spec.DefaultTimeout
	}
	c := p.compile(digest)
	t := time.NewTimer(bound)
	defer t.Stop()
	var why error
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		why = ctx.Err()
	case <-t.C:
		why = fmt.Errorf("compilation not done after %v", bound)
	}
	return &silo.Error{Code: silo.CodeUnavailable, Message: fmt.Sprintf("silo is still preparing function %s; try again shortly", fn),
		Err: fmt.Errorf("load function module %.12s: %w: %w", digest, errPreparing, why)}
}

// errPreparing is in the chain of loadFor's error when the module is still
// being compiled (the request may be served later), as opposed to a
// module that failed to load.
var errPreparing = errors.New("still compiling")

// compile returns the compilation of the module with this digest, starting
// it if none is under way. Compilations run in the background, one at a
// time, whoever waits for them; a failed one is forgotten, so the next
// request tries again.
func (p *Platform) compile(digest string) *compiling {
	p.compilesMu.Lock()
	defer p.compilesMu.Unlock()
	if c := p.compiles[digest]; c != nil {
		return c
	}
	if p.compiles == nil {
		p.compiles = map[string]*compiling{}
	}
	c := &compiling{done: make(chan struct{})}
	p.compiles[digest] = c
	p.compilations.Add(1)
	go func() {
		defer p.compilations.Done()
		p.compileMu.Lock()
		c.err = p.compile1(digest)
		p.compileMu.Unlock()
		p.compilesMu.Lock()
		delete(p.compiles, digest)
		p.compilesMu.Unlock()
		close(c.done)
	}()
	return c
}

// compile1 compiles the module with this digest, unless it is by now.
func (p *Platform) compile1(digest string) error {
	if _, ok := p.loaded.Load(digest); ok {
		return nil
	}
	if hook := compileHook.Load(); hook != nil {
		(*hook)(digest)
	}
	b, err := ReadArtifact(p.cfg.DataDir, digest)
	if err != nil {
		return err
	}
	got, err := p.Runtime.Compile(context.Background(), b)
	if err != nil {
		return err
	}
	if got != digest {
		return silo.Errorf(silo.CodeFailedCheck, "function module %.12s on disk does not match its digest (it is %.12s); rebuild it with silo apply", digest, got)
	}
	p.loaded.Store(digest, true)
	return nil
}

// CheckModule compiles the function module wasm, whose SHA-256 is digest,
// as a request runs it, before it is stored (the artifact upload of the
// API, server.Modules): one that cannot run is refused then, not at its
// first request. It compiles through the queue requests compile through,
// once: the module is kept compiled, so neither CompileAhead nor the first
// request compiles it again, and the compile cache holds it for other
// processes. Safe for concurrent use.
//
// # Errors
//
// Those of runtime.Runtime.Compile: CodeInvalid saying why the module
// cannot run; CodeUnavailable when the platform is closing or ctx ends.
func (p *Platform) CheckModule(ctx context.Context, digest string, wasm []byte) error {
	if _, ok := p.loaded.Load(digest); ok {
		return nil
	}
	p.compileMu.Lock()
	defer p.compileMu.Unlock()
	if _, ok := p.loaded.Load(digest); ok {
		return nil
	}
	got, err := p.Runtime.Compile(ctx, wasm)
	if err != nil {
		return err
	}
	if got != digest {
		return silo.Errorf(silo.CodeInvalid, "function module %.12s is %.12s by its content; upload the bytes its digest names", digest, got)
	}
	p.loaded.Store(digest, true)
	return nil
}

// ReadArtifact reads the built function module whose SHA-256 is digest
// (hex) from the artifacts of data dir dataDir, where the platform keeps
// them: what a provider that runs functions itself deploys.
//
// # Errors
//
// CodeInvalid for a digest that is not 64 hex digits; CodeUnavailable if
// the module is missing.
func ReadArtifact(dataDir, digest string) ([]byte, error) {
	if !validDigest(digest) {
		return nil, silo.Errorf(silo.CodeInvalid, "function artifact %q is not a digest; deploy again", digest)
	}
	dir := filepath.Join(dataDir, artifactDir)
	b, err := os.ReadFile(filepath.Join(dir, digest+".wasm"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, silo.Errorf(silo.CodeUnavailable, "function module %.12s is missing from %s; run silo apply to rebuild it", digest, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read artifact %.12s: %w", digest, err)
	}
	return b, nil
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
