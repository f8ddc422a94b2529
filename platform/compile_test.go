package platform_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/silotest"
)

// TestRequestDuringCompilation: a request whose function's module is still
// being compiled (held here, as a slow compilation would be) waits no
// longer than its own deadline and gets a 503 saying the function is being
// prepared, not a store error, and so does the next one; once the
// compilation finishes, the next request is served.
func TestRequestDuringCompilation(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme")
	plat := p.Platform()
	release := plat.HoldCompilations()
	// If the wait ignored the deadline, the hold would end here and the
	// requests below be served: the test fails instead of hanging.
	timer := time.AfterFunc(30*time.Second, release)
	defer timer.Stop()
	defer release()

	req := gateway.Request{Method: "GET", Path: "/findings", Header: http.Header{}, RequestID: "01HZX3J5Q8V7N2M4K6P9R0S1T2"}
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		resp, err := plat.Invoke(ctx, acme.ID, "list", req)
		cancel()
		if silo.ErrorCode(err) != silo.CodeUnavailable {
			t.Fatalf("request %d during the compilation: got status %d, error %v (code %s); want unavailable", i+1, resp.Status, err, silo.ErrorCode(err))
		}
		if msg := silo.UserMessage(err); msg != "silo is still preparing function list; try again shortly" {
			t.Fatalf("request %d during the compilation: got message %q, want the one saying list is being prepared", i+1, msg)
		}
	}
	// Through the gateway, the same error is a 503 with that message (the
	// function's own timeout bounds the wait).
	if r := acme.GET(t, "/findings"); r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "still preparing function list") {
		t.Fatalf("GET /findings during the compilation: %s; want 503 saying the function is being prepared", r)
	}

	release()
	// The compilation goes on without the requests that gave up on it: the
	// next request is served once it is done.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := plat.Invoke(ctx, acme.ID, "list", req)
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("request after the compilation: %d, %v; want 200", resp.Status, err)
	}
	if r := acme.GET(t, "/findings"); r.Status != http.StatusOK {
		t.Fatalf("GET /findings after the compilation: %s; want 200", r)
	}
}

// TestSmokeCheckWaitsForCompilation: a rollout's smoke check of a function
// whose module is still being compiled (held here, as on a busy machine
// for a release built in another process) waits for the compilation, where
// a request gives up at the function's timeout with 503: a slow
// compilation is not a failing release. Once the compilation finishes,
// the check passes.
func TestSmokeCheckWaitsForCompilation(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme")
	plat := p.Platform()
	release := plat.HoldCompilations()
	timer := time.AfterFunc(2*time.Minute, release) // a hang fails below instead
	defer timer.Stop()
	defer release()

	smoked := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		smoked <- plat.Smoke(context.Background(), acme.ID, "list")
	}()
	<-started
	// A request that began after the check gives up at the function's
	// timeout; by then a check bounded the same way would have given up.
	if r := acme.GET(t, "/findings"); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("GET /findings during the compilation: %s; want 503", r)
	}
	select {
	case err := <-smoked:
		t.Fatalf("the smoke check ended while its function was still being compiled: %v; want it to wait", err)
	default:
	}
	release()
	if err := <-smoked; err != nil {
		t.Fatalf("the smoke check once the compilation finished: %v; want it to pass", err)
	}
}
