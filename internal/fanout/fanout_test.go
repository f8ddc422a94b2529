package fanout

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// TestBound: with n slots, no more than n functions run at once (must not),
// and n of them do run together (must: the bound is not lower); Wait
// returns after all of them.
func TestBound(t *testing.T) {
	const n, total = 3, 30
	g := New(n)
	var running, peak, done atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	for range total {
		err := g.Go(context.Background(), func() {
			cur := running.Add(1)
			for {
				p := peak.Load()
				if cur <= p || peak.CompareAndSwap(p, cur) {
					break
				}
			}
			if cur == n {
				once.Do(func() { close(release) })
			}
			<-release // the first n wait for each other, so n run together
			running.Add(-1)
			done.Add(1)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	g.Wait()
	if got := peak.Load(); got != n {
		t.Errorf("at most %d ran at once, want exactly %d", got, n)
	}
	if got := done.Load(); got != total {
		t.Errorf("Wait returned after %d of %d", got, total)
	}
}

// TestCancelled: once ctx is done, Go waiting for a slot returns ctx's
// error and does not run fn; before, it runs it.
func TestCancelled(t *testing.T) {
	g := New(1)
	block := make(chan struct{})
	ran := atomic.Bool{}
	if err := g.Go(context.Background(), func() { <-block; ran.Store(true) }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	second := atomic.Bool{}
	if err := g.Go(ctx, func() { second.Store(true) }); !errors.Is(err, context.Canceled) {
		t.Errorf("Go with every slot taken and ctx done: %v, want context.Canceled", err)
	}
	close(block)
	g.Wait()
	if !ran.Load() || second.Load() {
		t.Errorf("ran first %v (want true), second %v (want false)", ran.Load(), second.Load())
	}
}

func TestAtLeastOne(t *testing.T) {
	g := New(0)
	ran := false
	if err := g.Go(context.Background(), func() { ran = true }); err != nil {
		t.Fatal(err)
	}
	g.Wait()
	if !ran {
		t.Error("a Group of 0 ran nothing; want a bound of 1")
	}
}
