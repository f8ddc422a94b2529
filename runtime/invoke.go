package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/sdk/fn/abi"
)

// Invocation is one call of a function.
type Invocation struct {
	Account  silo.AccountID
	Function string // the function's name in the stack
	Digest   string // from Compile
	Handler  string // export to call; default "handle"
	Limits   Limits // zero fields take Config.Limits
	// WallClock grants the real wall clock. Without it the guest's time.Now
	// reads a fixed date (2022-01-01) and only the monotonic clock is real.
	WallClock bool
	// Release, if set, is the release the account serves the invocation
	// under; its metrics are kept per release too (Runtime.ReleaseMetrics).
	Release string
	// Host is the account's data plane, already scoped and authorized.
	Host    Host
	Request Request
}

// Request is the HTTP-shaped request given to the guest.
type Request struct {
	ID     string // request ID; attached to every guest log line
	Method string
	Path   string
	Params map[string]string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Response is the guest's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Invoke runs one request through a warm or new instance of the function in
// the account's sandbox. Instances are pooled per (account, function, digest,
// limits) and never shared across accounts or digests.
//
// Invoke returns by the invocation's deadline (the earlier of ctx's and
// Limits.Timeout) even if the guest or a host call is stuck; a stuck guest is
// stopped at its next checkpoint, or when a table, blob, secret or export
// call returns after the deadline (the call's result never reaches it), and
// its instance discarded; until it has stopped it holds its concurrency
// slots.
//
// # Errors
//
// CodeInvalid for a bad invocation, a handler the module does not export, or
// a memory limit too small for the module's host allocations (budget.go)
// plus its initial memory;
// CodeNotFound for a digest not compiled by this Runtime; CodeTooMany when the
// function's (Limits.Concurrency) or the account's (Config.AccountConcurrency)
// concurrency cap stays full for Config.QueueWait; CodeUnavailable
// when the invocation times out or the runtime is closing; CodeInternal
// (message safe to show) when the guest traps, exits or runs out of memory.
// A response with status 500 is not an error.
func (r *Runtime) Invoke(ctx context.Context, inv Invocation) (Response, error) {
	start := time.Now()
	if inv.Account == "" || inv.Function == "" || inv.Host == nil {
		return Response{}, silo.Errorf(silo.CodeInvalid, "runtime: invocation needs an account, a function name and a host")
	}
	if inv.Handler == "" {
		inv.Handler = abi.ExportHandle
	}
	lim := inv.Limits
	if lim.MemoryPages == 0 {
		lim.MemoryPages = r.cfg.Limits.MemoryPages
	}
	if lim.Timeout <= 0 {
		lim.Timeout = r.cfg.Limits.Timeout
	}
	if lim.Concurrency <= 0 {
		lim.Concurrency = r.cfg.Limits.Concurrency
	}
	if lim.MemoryPages > r.cfg.MaxMemoryPages {
		return Response{}, silo.Errorf(silo.CodeInvalid, "function %q asks for %d memory pages, over the %d page cap", inv.Function, lim.MemoryPages, r.cfg.MaxMemoryPages)
	}
	acct := r.account(inv.Account)
	resp, err := r.invoke(ctx, acct, inv, lim)
	acct.metrics.record(inv.Release, time.Since(start), len(inv.Request.Body), len(resp.Body), resp.Status, err)
	r.unref(acct)
	return resp, err
}

func (r *Runtime) invoke(ctx context.Context, acct *account, inv Invocation, lim Limits) (Response, error) {
	r.mu.Lock()
	a := r.artifacts[inv.Digest]
	r.mu.Unlock()
	if a == nil {
		return Response{}, silo.Errorf(silo.CodeNotFound, "function %q: module %.12s is not loaded; deploy (compile) it first", inv.Function, inv.Digest)
	}
	if linearPages(a, lim) < max(a.minPages, 1) {
		return Response{}, silo.Errorf(silo.CodeInvalid, "function %q needs %d KiB of host memory for its tables, globals and segments plus %d KiB of linear memory, over its memory limit of %d KiB; raise its memory or declare smaller tables",
			inv.Function, a.hostPages*64, a.minPages*64, lim.MemoryPages*64)
	}
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()

	sem, err := r.acquireSlots(ctx, acct, inv, lim)
	if err != nil {
		return Response{}, err
	}

	// The job, its call, its context and its copy of the invocation are one
	// allocation.
	now := time.Now()
	j := &job{inv: inv, art: a, sem: sem}
	j.c = &j.call
	c := j.c
	*c = call{
		rt: r, host: inv.Host, acct: inv.Account, fn: inv.Function, reqID: inv.Request.ID,
		cpu: &acct.cpu, done: ctx.Done(), deadline: now.Add(lim.Timeout), yieldAt: now.Add(timeSlice),
	}
	if d, ok := ctx.Deadline(); ok && d.Before(c.deadline) {
		c.deadline = d
	}
	// The CPU slot is taken before the instance: an invocation waiting for
	// its account's CPU share holds no instance, so a busy function cycles
	// through as many instances as run at once (a few, warm in the
	// processor's caches) rather than one per waiting request, each a
	// separate guest heap.
	if !c.takeCPU() {
		sem.release()
		return Response{}, r.ctxError(ctx, inv, lim)
	}
	key := poolKey{acct: inv.Account, fn: inv.Function, digest: inv.Digest, lim: lim, clock: inv.WallClock}
	in, err := r.take(key)
	if err != nil {
		c.leaveCPU()
		sem.release()
		return Response{}, err
	}
	j.vctx = callCtx{Context: ctx, c: c}
	j.ctx = &j.vctx
	in.jobs <- j
	select {
	case <-in.done:
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobRunning, jobAbandoned) {
			// The worker stops the guest at its next checkpoint (or when a
			// stuck host call returns), then discards the instance and
			// frees the slot.
			return Response{}, r.ctxError(ctx, inv, lim)
		}
		<-in.done // finished just now
	}
	// The slot is given back once the instance is back in its pool: an
	// invocation that takes the slot finds it idle rather than starting
	// another, so the instances alive stay within the function's
	// concurrency.
	if j.err == nil && !c.stopped {
		r.release(key, in)
	}
	sem.release()
	return j.resp, j.err
}

// slots are the two concurrency slots an invocation holds: one of its
// function's (Limits.Concurrency) and one of its account's
// (Config.AccountConcurrency).
type slots struct{ fn, acct chan struct{} }

func (s slots) release() {
	<-s.fn
	<-s.acct
}

// acquireSlots takes a function slot and an account slot, waiting at most
// Config.QueueWait for both.
func (r *Runtime) acquireSlots(ctx context.Context, acct *account, inv Invocation, lim Limits) (slots, error) {
	s := slots{fn: acct.sem(inv.Function, lim.Concurrency), acct: acct.all}
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	// The message naming the full cap is formatted only when the wait
	// times out, not on every invocation.
	take := func(ch chan struct{}, fnCap bool, n int) error {
		select {
		case ch <- struct{}{}:
			return nil
		default:
		}
		if t == nil {
			t = time.NewTimer(r.cfg.QueueWait)
		}
		select {
		case ch <- struct{}{}:
			return nil
		case <-t.C:
			what := "account " + string(inv.Account)
			if fnCap {
				what = fmt.Sprintf("function %q of account %s", inv.Function, inv.Account)
			}
			return silo.Errorf(silo.CodeTooMany, "%s is running %d invocations already; retry later", what, n)
		case <-ctx.Done():
			return r.ctxError(ctx, inv, lim)
		}
	}
	if err := take(s.fn, true, lim.Concurrency); err != nil {
		return slots{}, err
	}
	if err := take(s.acct, false, cap(s.acct)); err != nil {
		<-s.fn
		return slots{}, err
	}
	return s, nil
}

// job is one invocation handed to an instance's worker goroutine.
type job struct {
	ctx   context.Context // &vctx
	vctx  callCtx
	c     *call // &call
	call  call
	inv   Invocation
	art   *artifact
	sem   slots
	resp  Response
	err   error
	state atomic.Int32
}

// callCtx is the invocation's context carrying its call (callOf), as
// context.WithValue(ctx, callKey{}, c) would, kept inside the job instead
// of allocated next to it.
type callCtx struct {
	context.Context
	c *call
}

func (x *callCtx) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return x.c
	}
	return x.Context.Value(key)
}

const (
	jobRunning int32 = iota
	jobFinished
	jobAbandoned
)

func (r *Runtime) ctxError(ctx context.Context, inv Invocation, lim Limits) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return failure(silo.CodeUnavailable, ctx.Err(), "function %q timed out (limit %s); make it faster or raise its timeout", inv.Function, lim.Timeout)
	}
	return failure(silo.CodeUnavailable, ctx.Err(), "function %q was cancelled (the client went away or the server is stopping)", inv.Function)
}

// worker runs an instance's invocations one at a time on one goroutine,
// whose stack stays grown between invocations. The first job instantiates
// the module. The worker ends when the instance is discarded: after a
// failed or stopped invocation, an abandoned one, or eviction (jobs closed).
func (r *Runtime) worker(in *instance) {
	for j := range in.jobs {
		// j holds its CPU slot (taken in invoke); a host call waiting for
		// I/O gives it back meanwhile and takes it again.
		// The worker holds the instance's linear memory while it runs
		// code on it, so that closing the module meanwhile (Close) does not
		// take the memory from under the guest (heldMemory).
		held := false
		if j.err == nil && in.mod == nil {
			j.err = r.instantiate(j.ctx, in, j.art, j.c)
			held = in.mem != nil // allocated held
		} else if j.err == nil && in.mem != nil {
			if held = in.mem.hold(); !held {
				j.err = silo.Errorf(silo.CodeUnavailable, "the function runtime is shutting down; try again")
			}
		}
		if j.err == nil {
			in.logw.n.Store(0)
			in.call.Store(j.c)
			j.resp, j.err = r.exec(j.ctx, in, j.c, j.inv)
			in.call.Store(nil)
		}
		if held {
			in.mem.unhold()
		}
		j.c.leaveCPU()
		bad := j.err != nil || j.c.stopped
		if bad {
			r.discard(context.Background(), in)
		}
		if !j.state.CompareAndSwap(jobRunning, jobFinished) {
			if !bad {
				r.discard(context.Background(), in)
			}
			j.sem.release()
			return // abandoned: nobody waits, nor gives the slot back
		}
		in.done <- struct{}{}
		if bad {
			return
		}
	}
}

func (r *Runtime) exec(ctx context.Context, in *instance, c *call, inv Invocation) (Response, error) {
	h := in.handlers[inv.Handler]
	if h == nil {
		f := in.mod.ExportedFunction(inv.Handler)
		if f == nil || !sameTypes(f.Definition().ParamTypes(), []api.ValueType{i32, i32}) || !sameTypes(f.Definition().ResultTypes(), []api.ValueType{i64}) {
			// The release's fault, not the caller's (the release build
			// refuses such a module; one stored before it did can
			// still get here): a server failure, detail for the log.
			return Response{}, silo.Errorf(silo.CodeInternal, "function %q does not export its handler %q of type (i32, i32) i64; build the release again and deploy it (the build names the handlers the module exports)", inv.Function, inv.Handler)
		}
		h = f
		in.handlers[inv.Handler] = f
	}
	req := abi.Request{
		ID: inv.Request.ID, Method: inv.Request.Method, Path: inv.Request.Path,
		Params: inv.Request.Params, Query: inv.Request.Query, Header: inv.Request.Header, Body: inv.Request.Body,
	}
	size := abi.RequestSize(&req)
	if size > r.cfg.MaxRequestSize {
		return Response{}, silo.Errorf(silo.CodeInvalid, "request to %q is %d bytes encoded, over the %d byte limit", inv.Function, size, r.cfg.MaxRequestSize)
	}
	in.buf = abi.AppendRequest(in.buf[:0], &req)
	if cap(in.buf) > 1<<20 {
		defer func() { in.buf = nil }()
	}
	in.stack[0] = uint64(len(in.buf))
	in.stackLeft.Set(uint64(r.cfg.MaxCallStack))
	if err := in.alloc.CallWithStack(ctx, in.stack[:]); err != nil {
		return Response{}, r.guestError(inv, in, c, err)
	}
	ptr := uint32(in.stack[0])
	mem := in.mod.Memory()
	if !mem.Write(ptr, in.buf) {
		return Response{}, silo.Errorf(silo.CodeInternal, "function %q returned a bad request buffer from silo_alloc", inv.Function)
	}
	in.stack[0], in.stack[1] = uint64(ptr), uint64(len(in.buf))
	in.stackLeft.Set(uint64(r.cfg.MaxCallStack))
	if err := h.CallWithStack(ctx, in.stack[:]); err != nil {
		return Response{}, r.guestError(inv, in, c, err)
	}
	if c.stopped {
		return Response{}, r.ctxError(ctx, inv, in.key.lim)
	}
	packed := in.stack[0]
	rp, rl := uint32(packed>>32), uint32(packed)
	if int(rl) > r.cfg.MaxResponseSize {
		return Response{}, silo.Errorf(silo.CodeInternal, "function %q returned a %d byte response, over the %d byte limit", inv.Function, rl, r.cfg.MaxResponseSize)
	}
	b, ok := mem.Read(rp, rl)
	if !ok {
		return Response{}, silo.Errorf(silo.CodeInternal, "function %q returned a response outside its memory", inv.Function)
	}
	ar, err := abi.DecodeResponse(b)
	if err != nil {
		return Response{}, failure(silo.CodeInternal, err, "function %q returned a malformed response; rebuild it with the current sdk/fn", inv.Function)
	}
	resp := Response{Status: ar.Status, Body: append([]byte(nil), ar.Body...)}
	if ar.Header != nil {
		resp.Header = http.Header(ar.Header)
	}
	if resp.Status < 100 || resp.Status > 999 {
		return Response{}, silo.Errorf(silo.CodeInternal, "function %q returned HTTP status %d", inv.Function, resp.Status)
	}
	return resp, nil
}

// failure returns a *silo.Error whose message is the sentence, safe to
// show to a client (no wasm error text or stack trace), and whose cause is
// err, for the operator's log.
func failure(c silo.Code, err error, format string, args ...any) error {
	return &silo.Error{Code: c, Message: fmt.Sprintf(format, args...), Err: err}
}

func (r *Runtime) guestError(inv Invocation, in *instance, c *call, err error) error {
	lim := in.key.lim
	if c.stopped {
		return failure(silo.CodeUnavailable, err, "function %q timed out (limit %s) and was stopped; make it faster or raise its timeout", inv.Function, lim.Timeout)
	}
	// The detail (the wasm error and the guest's stack) goes to the log,
	// which is the function's own: the client gets one sentence.
	r.cfg.Logger.LogAttrs(context.Background(), slog.LevelError, "function failed",
		slog.String("account", string(inv.Account)), slog.String("function", inv.Function),
		slog.String("request_id", inv.Request.ID), slog.String("error", err.Error()))
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		// Close closed the module under the call: wazero reports it as
		// an exit when the call returns.
		return failure(silo.CodeUnavailable, err, "the function runtime is shutting down; try again")
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return failure(silo.CodeInternal, err, "function %q exited with code %d (out of memory or a fatal error); see its logs", inv.Function, exit.ExitCode())
	}
	if int32(uint32(in.stackLeft.Get())) < 0 {
		return failure(silo.CodeInternal, err, "function %q recursed deeper than its call stack allows (%s of frames); make its recursion shallower or iterative", inv.Function, sizeString(uint64(r.cfg.MaxCallStack)))
	}
	if used, limit, full := r.memoryFull(in); full {
		return failure(silo.CodeInternal, err, "function %q crashed (it trapped) with its memory at %s of its %s limit: it probably ran out of memory; raise its memory in silo.yaml or make it use less, and see its logs",
			inv.Function, sizeString(used), sizeString(limit))
	}
	return failure(silo.CodeInternal, err, "function %q crashed (it trapped); see its logs", inv.Function)
}

// memoryFull reports the linear memory in's guest uses and may use (the
// invocation's memory limit less the host's share), and whether it is
// within a tenth of the limit: a trap there is most likely the guest's
// allocator giving up (Go's throws "out of memory" and traps), which the
// trap itself does not say.
func (r *Runtime) memoryFull(in *instance) (used, limit uint64, full bool) {
	r.mu.Lock()
	a := r.artifacts[in.key.digest]
	r.mu.Unlock()
	m := in.mod.Memory()
	if a == nil || m == nil {
		return 0, 0, false
	}
	limit = uint64(linearPages(a, in.key.lim)) * 65536
	used = uint64(m.Size())
	return used, limit, limit > 0 && used >= limit-limit/10
}
