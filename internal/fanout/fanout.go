// Package fanout runs work concurrently with a bound: the one way silo's
// packages fan out over accounts (applying a release to a fleet, a ring's
// account steps, live verification, reading usage for a page).
//
// It imports only the standard library.
package fanout

import (
	"context"
	"sync"
)

// Group runs functions in goroutines, at most a fixed number at a time.
// A Group is used by one goroutine that calls Go and then Wait; the
// functions it runs may run concurrently with each other and must
// synchronize what they share.
type Group struct {
	slots chan struct{}
	wg    sync.WaitGroup
}

// New returns a Group running at most n functions at a time (1 if n < 1).
func New(n int) *Group {
	return &Group{slots: make(chan struct{}, max(n, 1))}
}

// Go waits for a free slot and runs fn in a goroutine that holds it. If ctx
// is done before, fn does not run and Go returns ctx's error.
func (g *Group) Go(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.wg.Add(1)
	go func() {
		defer func() { <-g.slots; g.wg.Done() }()
		fn()
	}()
	return nil
}

// Wait waits until every function Go started has returned.
func (g *Group) Wait() { g.wg.Wait() }
