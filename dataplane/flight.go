package dataplane

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	silo "github.com/silo-run/silo"
)

// flight runs at most one read of each thing at a time: a request that
// needs an account's view (or a key) while a read of it runs waits for that
// read instead of starting its own. After an account's view is dropped (a
// change announced, a rollout step finished) or goes stale, every request
// of a busy account would otherwise read the store at once, and a store
// whose connections are all taken makes each of them wait in line.
//
// The read runs on a context of its own: the caller's values, not its
// cancellation, and a deadline of Config.Wait. A caller that gives up (its
// client went away) does not fail the others, and a read that does not end
// within Wait fails all its callers with an error that says silo waited,
// not the function.
//
// A read that began before its account changed must not serve a request
// that came after: forget makes the reads running for a key stale, so the
// next caller starts a read of its own, and the stale read's result goes
// only to the callers that were waiting for it (the directory does not
// cache it).
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done  chan struct{}
	stale atomic.Bool // forgotten: its result is not to be cached
	v     V
	err   error
}

// do returns what read returns for key, joining the read of key that runs
// if there is one. It returns ctx's error if ctx ends first, and
// errWait's if the read does not end within wait.
// read's stale reports whether the read was forgotten meanwhile; the
// caller of forget holds the lock that read holds when it asks, so a
// result is either cached before forget or not at all.
func (f *flight[K, V]) do(ctx context.Context, key K, wait time.Duration, what string, read func(ctx context.Context, stale func() bool) (V, error)) (V, error) {
	f.mu.Lock()
	c := f.calls[key]
	if c == nil {
		if f.calls == nil {
			f.calls = map[K]*flightCall[V]{}
		}
		c = &flightCall[V]{done: make(chan struct{})}
		f.calls[key] = c
		go f.run(ctx, key, c, wait, what, read)
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		var zero V
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return zero, waitError(what, wait, ctx.Err())
		}
		return zero, ctx.Err()
	}
}

func (f *flight[K, V]) run(ctx context.Context, key K, c *flightCall[V], wait time.Duration, what string, read func(context.Context, func() bool) (V, error)) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
	c.v, c.err = read(rctx, c.stale.Load)
	if c.err != nil && rctx.Err() != nil && errors.Is(c.err, context.DeadlineExceeded) {
		c.err = waitError(what, wait, c.err)
	}
	cancel()
	f.mu.Lock()
	if f.calls[key] == c {
		delete(f.calls, key)
	}
	f.mu.Unlock()
	close(c.done)
}

// forget makes the read running for key stale (every read if all).
func (f *flight[K, V]) forget(key K, all bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, c := range f.calls {
		if all || k == key {
			c.stale.Store(true)
			delete(f.calls, k)
		}
	}
}

// waitError is what a request that waited too long for silo's own state is
// told: it is silo that did not answer, not the function.
func waitError(what string, wait time.Duration, cause error) error {
	return &silo.Error{Code: silo.CodeUnavailable, Err: cause,
		Message: "silo could not read " + what + " within " + wait.String() + " (its state database is busy); try again shortly"}
}
