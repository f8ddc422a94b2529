package runtime

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// TestCompileWaitEndsWithItsContext: while one compilation is held under
// way (compileHook), a caller asking for the same module with a short
// deadline returns with a clear error before the compilation ends, and a
// caller compiling another module is not held up by it; once released,
// the held compilation finishes for its own caller, and both modules
// answer. What is checked is the order of events (the compilation still
// held when each call returns), not durations.
func TestCompileWaitEndsWithItsContext(t *testing.T) {
	e := newEnv(t, Config{})
	entered, release := make(chan struct{}), make(chan struct{})
	var held, first1 atomic.Bool
	compileHook = func() { // holds the first compilation only (a sync.Once would hold the others too)
		if first1.CompareAndSwap(false, true) {
			held.Store(true)
			close(entered)
			<-release
			held.Store(false)
		}
	}
	t.Cleanup(func() { compileHook = nil })
	// If a wait ignored its context, the calls below would wait for the
	// release: it comes after 30 s, and the test fails instead of hanging.
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	timer := time.AfterFunc(30*time.Second, let)
	defer timer.Stop()
	defer let()

	slow, other := hostileSpec{handle: returnOK()}.build(), recursionModule(3)
	first := make(chan error, 1)
	go func() {
		_, err := e.rt.Compile(context.Background(), slow)
		first <- err
	}()
	<-entered

	t.Run("same module, short deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := e.rt.Compile(ctx, slow)
		if !held.Load() {
			t.Fatalf("the call returned (%v) only once the compilation it waited for was released", err)
		}
		wantCode(t, err, silo.CodeUnavailable)
		if !strings.Contains(silo.UserMessage(err), "still being compiled") {
			t.Errorf("got %q, want a message saying the module is still being compiled", silo.UserMessage(err))
		}
	})
	t.Run("another module meanwhile", func(t *testing.T) {
		d, err := e.rt.Compile(context.Background(), other)
		if !held.Load() {
			t.Fatalf("the compilation of another module returned (%v) only once the held one was released", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.invokeDigest("acme", d, Limits{}, "/")
		wantOK(t, resp, err)
	})

	let()
	if err := <-first; err != nil {
		t.Fatalf("the held compilation, released: %v", err)
	}
	// Twin of the short deadline: the same call, the compilation done,
	// succeeds.
	d, err := e.rt.Compile(context.Background(), slow)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.invokeDigest("acme", d, Limits{}, "/")
	wantOK(t, resp, err)
}
