package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// plans is a LimitSource for tests: each account's limits, changeable while
// the gateway runs.
type plans struct {
	mu   sync.Mutex
	of   map[silo.AccountID]Limits
	err  error
	read int
}

func (p *plans) source() LimitSource {
	return LimitFunc(func(ctx context.Context, acct silo.AccountID) (Limits, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.read++
		if p.err != nil {
			return Limits{}, p.err
		}
		l, ok := p.of[acct]
		if !ok {
			return Limits{}, silo.ErrNotFound
		}
		return l, nil
	})
}

func (p *plans) set(acct silo.AccountID, l Limits) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.of[acct] = l
}

// message returns the message of a JSON error body.
func (r result) message() string {
	var e errorBody
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Message
}

func free(rate float64, burst int) Limits {
	return Limits{Limits: silo.Limits{Rate: rate, Burst: burst}, Plan: "free"}
}

// TestPlanRateLimit: a tenant on a small plan is served up to its burst,
// then refused with a 429 that names the limit, its plan and how to raise
// it; a tenant on a larger plan (and one with no limits of its own) is
// served at the same time.
func TestPlanRateLimit(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	p := &plans{of: map[silo.AccountID]Limits{
		"acme": free(1, 3),
		"beta": {Limits: silo.Limits{Rate: 1000}, Plan: "pro"},
	}}
	f := newFixture(t, Config{Limits: p.source(), Now: clk.Now}, nil)
	f.addAccount("gamma", silo.KindTenant, silo.StateActive, nil)
	acme := call{host: "acme.localhost", path: "/findings", key: f.keys["acme"]}
	for i := range 3 {
		if r := f.do(acme); r.status != 200 {
			t.Fatalf("acme request %d within its burst: got %d %s, want 200", i+1, r.status, r.body)
		}
	}
	r := f.do(acme)
	if r.status != 429 || r.errCode() != silo.CodeTooMany {
		t.Fatalf("acme over its burst: got %d %s, want 429", r.status, r.body)
	}
	if got := r.header.Get("X-Silo-Limit"); got != "rate" {
		t.Errorf("X-Silo-Limit: got %q, want rate", got)
	}
	for _, want := range []string{"rate limit", "1 requests per second (burst 3)", `plan "free"`, "larger plan", "silo limits set"} {
		if !strings.Contains(r.message(), want) {
			t.Errorf("refusal %s: want it to contain %q", r.body, want)
		}
	}
	for i := range 10 {
		if r := f.do(call{host: "beta.localhost", path: "/findings", key: f.keys["beta"]}); r.status != 200 {
			t.Fatalf("beta (pro) request %d: got %d, want 200", i+1, r.status)
		}
		if r := f.do(call{host: "gamma.localhost", path: "/findings", key: f.keys["gamma"]}); r.status != 200 {
			t.Fatalf("gamma (no limits of its own) request %d: got %d, want 200", i+1, r.status)
		}
	}
	clk.add(time.Second) // one token back
	if r := f.do(acme); r.status != 200 {
		t.Fatalf("acme after its rate refilled a token: got %d, want 200", r.status)
	}
}

// TestPlanConcurrencyLimit: a plan's concurrency bounds requests in flight,
// and the refusal names that limit.
func TestPlanConcurrencyLimit(t *testing.T) {
	entered, unblock := make(chan struct{}, 4), make(chan struct{})
	inv := InvokerFunc(func(ctx context.Context, acct silo.AccountID, fn string, req Request) (Response, error) {
		entered <- struct{}{}
		<-unblock
		return Response{Body: []byte("ok")}, nil
	})
	p := &plans{of: map[silo.AccountID]Limits{"acme": {Limits: silo.Limits{Concurrency: 1}, Plan: "free"}}}
	f := newFixture(t, Config{Limits: p.source()}, inv)
	acme := call{host: "acme.localhost", path: "/echo", key: f.keys["acme"]}
	done := make(chan int)
	go func() { done <- f.do(acme).status }()
	<-entered
	r := f.do(acme)
	if r.status != 429 || r.header.Get("X-Silo-Limit") != "concurrency" || !strings.Contains(string(r.body), "1 requests in flight") {
		t.Fatalf("second request in flight: got %d %v %s, want 429 naming concurrency", r.status, r.header.Get("X-Silo-Limit"), r.body)
	}
	close(unblock)
	if s := <-done; s != 200 {
		t.Fatalf("first request: got %d, want 200", s)
	}
	if r := f.do(acme); r.status != 200 {
		t.Fatalf("after the slot freed: got %d, want 200", r.status)
	}
}

// TestMonthlyInvocations: a plan's monthly invocations count the month's
// earlier requests (Used) and the ones admitted since; a new month starts
// afresh.
func TestMonthlyInvocations(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC)}
	p := &plans{of: map[silo.AccountID]Limits{"acme": {Limits: silo.Limits{Invocations: 3}, Plan: "free", Used: 1}}}
	f := newFixture(t, Config{Limits: p.source(), Now: clk.Now, LimitRefresh: time.Hour}, nil)
	acme := call{host: "acme.localhost", path: "/findings", key: f.keys["acme"]}
	for i := range 2 {
		if r := f.do(acme); r.status != 200 {
			t.Fatalf("request %d of the month's 3 (1 used before): got %d, want 200", i+2, r.status)
		}
	}
	r := f.do(acme)
	if r.status != 429 || r.header.Get("X-Silo-Limit") != "invocations" || !strings.Contains(string(r.body), "3 requests per calendar month") {
		t.Fatalf("fourth request of the month: got %d %s, want 429 naming invocations", r.status, r.body)
	}
	clk.add(2 * time.Hour) // April; the limits held still say March
	p.set("acme", Limits{Limits: silo.Limits{Invocations: 3}, Plan: "free"})
	if r := f.do(acme); r.status != 200 {
		t.Fatalf("first request of a new month: got %d %s, want 200", r.status, r.body)
	}
}

// TestPlanChangeWithoutRestart: when an account's limits change (a plan
// change or an override), the gateway applies the new ones within
// LimitRefresh, and reads them at most once per LimitRefresh meanwhile.
func TestPlanChangeWithoutRestart(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	p := &plans{of: map[silo.AccountID]Limits{"acme": free(0.001, 1)}}
	f := newFixture(t, Config{Limits: p.source(), Now: clk.Now, LimitRefresh: time.Second}, nil)
	acme := call{host: "acme.localhost", path: "/findings", key: f.keys["acme"]}
	if r := f.do(acme); r.status != 200 {
		t.Fatalf("first request: got %d, want 200", r.status)
	}
	if r := f.do(acme); r.status != 429 {
		t.Fatalf("second request on free: got %d, want 429", r.status)
	}
	p.set("acme", Limits{Limits: silo.Limits{Rate: 1000}, Plan: "pro"})
	if r := f.do(acme); r.status != 429 {
		t.Fatalf("within LimitRefresh of the change: got %d, want 429 (the held limits)", r.status)
	}
	clk.add(time.Second)
	for i := range 5 {
		if r := f.do(acme); r.status != 200 {
			t.Fatalf("request %d after the change to pro: got %d %s, want 200", i+1, r.status, r.body)
		}
	}
	p.mu.Lock()
	read := p.read
	p.mu.Unlock()
	if read != 2 {
		t.Errorf("limits read %d times, want 2 (once per LimitRefresh)", read)
	}
}

// TestLimitSourceFailure: when an account's limits cannot be read at its
// first request, the request is refused as unavailable (not served without
// limits); once they can be, it is served.
func TestLimitSourceFailure(t *testing.T) {
	p := &plans{of: map[silo.AccountID]Limits{"acme": free(100, 100)}, err: errors.New("database gone")}
	f := newFixture(t, Config{Limits: p.source(), LimitRefresh: time.Nanosecond}, nil)
	acme := call{host: "acme.localhost", path: "/findings", key: f.keys["acme"]}
	if r := f.do(acme); r.status != 503 || strings.Contains(string(r.body), "database gone") {
		t.Fatalf("limits unreadable: got %d %s, want 503 without the cause", r.status, r.body)
	}
	p.mu.Lock()
	p.err = nil
	p.mu.Unlock()
	if r := f.do(acme); r.status != 200 {
		t.Fatalf("limits readable again: got %d, want 200", r.status)
	}
}
