package platform

import (
	"context"
	"sync"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/gateway"
)

// Pin holds an account as a running invocation does, for tests; call the
// returned function to release it.
func (p *Platform) Pin(ctx context.Context, id silo.AccountID) (func(), error) {
	if _, err := p.dir.Pin(ctx, id); err != nil {
		return nil, err
	}
	return func() { p.dir.Unpin(id) }, nil
}

// Held reports how many accounts the directory holds a view or a policy of.
func (p *Platform) Held() (views, policies int) { return p.dir.Held() }

// Invoke runs function fn of account acct as the gateway does after it has
// routed a request (the gateway's metering and access log aside).
func (p *Platform) Invoke(ctx context.Context, acct silo.AccountID, fn string, req gateway.Request) (gateway.Response, error) {
	return p.invoke(ctx, acct, fn, req)
}

// Smoke runs a rollout ring's smoke check of function fn in account acct,
// as the rollout runner does.
func (p *Platform) Smoke(ctx context.Context, acct silo.AccountID, fn string) error {
	return smoker{p}.Smoke(ctx, acct, fn)
}

// HoldCompilations makes every compilation of a function module from now
// on wait, before it reads the module, until the returned function is
// called, and forgets which modules are compiled, so the next request for
// each compiles it again. The returned function also removes the hold.
func (p *Platform) HoldCompilations() (release func()) {
	held := make(chan struct{})
	hold := func(string) { <-held }
	compileHook.Store(&hold)
	p.loaded.Clear()
	var once sync.Once
	return func() { once.Do(func() { compileHook.Store(nil); close(held) }) }
}
