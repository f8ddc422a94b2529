package runtime

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// Closing the runtime while an invocation is in flight leaves the
// instance's linear memory mapped until the invocation has let go of it.
// Closing the wazero runtime closes every module, including those whose
// guests still run on a worker (in flight, or abandoned at the deadline
// and not yet at a checkpoint), and a module's memory went back to the
// system at once: the guest then touched unmapped memory and the process
// died (SIGSEGV in guest code). Here the guest is parked in a host call
// when Close comes; the call then returns into the guest, which writes its
// response into its memory. It runs in a child process: without the hold
// the child crashes instead of failing.
func TestCloseDuringInvocation(t *testing.T) {
	if inSubprocess(t) {
		return
	}
	for _, tc := range []struct {
		name  string
		warm  bool // the invocation reuses an idle instance
		close bool // close the runtime while the guest is in the host call
	}{
		{"close while a new instance runs", false, true},
		{"close while a warm instance runs", true, true},
		{"control: new instance, no close", false, false},
		{"control: warm instance, no close", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			if tc.warm {
				e.must(t, "acme", Request{Path: "/echo"}, 200)
			}
			g := newGate(2, time.Minute) // opened by hand below
			type result struct {
				resp Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := e.rt.Invoke(context.Background(), Invocation{
					Account: "acme", Function: "api", Digest: e.guest,
					Host:    gateHost{e.hosts["acme"], g},
					Request: Request{Path: "/config", Query: map[string][]string{"k": {"gate"}}},
				})
				done <- result{resp, err}
			}()
			waitGate(t, g, 1)
			if haveMmap && e.rt.mem.mappings() != 1 {
				t.Fatalf("%d linear memories mapped with one instance running, want 1", e.rt.mem.mappings())
			}
			if tc.close {
				if err := e.rt.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := e.rt.mem.mappings(); haveMmap && got != 1 {
					t.Fatalf("Close left %d linear memories mapped while a guest runs on one, want 1 (its memory was taken from under it)", got)
				}
			}
			g.mu.Lock()
			g.want = 1
			g.cond.Broadcast()
			g.mu.Unlock()
			res := <-done
			if tc.close {
				// The guest ran on to its end on its memory; the
				// invocation fails as the runtime is closed.
				wantCode(t, res.err, silo.CodeUnavailable)
				if !strings.Contains(res.err.Error(), "shutting down") {
					t.Fatalf("got error %q, want one saying the runtime is shutting down", res.err)
				}
			} else {
				if res.err != nil || res.resp.Status != 200 || string(res.resp.Body) != "open" {
					t.Fatalf("got %d %q, %v; want 200 \"open\"", res.resp.Status, res.resp.Body, res.err)
				}
				// Must: the idle instance keeps its memory until Close.
				if got := e.rt.mem.mappings(); haveMmap && got != 1 {
					t.Fatalf("%d linear memories mapped with one idle instance, want 1", got)
				}
				if err := e.rt.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			// Closed and idle: every memory went back to the system.
			if got := e.rt.mem.mappings(); got != 0 {
				t.Fatalf("%d linear memories still mapped after Close and the invocation's end, want 0", got)
			}
		})
	}
}

// waitGate waits until n host calls are in g, for at most a minute.
func waitGate(t *testing.T, g *gate, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		g.mu.Lock()
		in := g.in
		g.mu.Unlock()
		if in == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d host calls in the gate after a minute, want %d", in, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Closing the runtime while it compiles a module waits for the
// compilation, and the invocation then fails as shut down. Closing
// wazero's runtime under a compilation dropped its store's maps under the
// call, and the compilation panicked (assignment to entry in nil map),
// taking the process down. It runs in a child process: without the guard
// the child crashes instead of failing.
func TestCloseDuringCompilation(t *testing.T) {
	if inSubprocess(t) {
		return
	}
	for _, closeIt := range []bool{true, false} {
		e := newEnv(t, Config{})
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		compileHook = func() {
			once.Do(func() { close(entered); <-release })
		}
		done := make(chan error, 1)
		go func() {
			// A memory limit other than the default: the module is compiled
			// again, for the engine of that limit, under the invocation.
			_, err := e.rt.Invoke(context.Background(), Invocation{Account: "acme", Function: "api", Digest: e.guest,
				Limits: Limits{MemoryPages: 256}, Host: e.hosts["acme"], Request: Request{Path: "/echo"}})
			done <- err
		}()
		<-entered
		closed := make(chan error, 1)
		if closeIt {
			go func() { closed <- e.rt.Close(context.Background()) }()
			// Give Close the time to run under the compilation if
			// nothing holds it back; with the guard it waits.
			select {
			case err := <-closed:
				closed <- err
			case <-time.After(200 * time.Millisecond):
			}
		}
		close(release)
		err := <-done
		compileHook = nil
		if closeIt {
			if err := <-closed; err != nil {
				t.Fatal(err)
			}
			wantCode(t, err, silo.CodeUnavailable)
			if !strings.Contains(err.Error(), "shutting down") {
				t.Fatalf("got error %q, want one saying the runtime is shutting down", err)
			}
			continue
		}
		// Must: without Close the compilation finishes and the call runs.
		if err != nil {
			t.Fatalf("invocation without Close: %v", err)
		}
		if err := e.rt.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
