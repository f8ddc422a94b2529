package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// TestInvokeDeadlineMessage: the gateway says the function did not answer
// within the invoke timeout only when that timeout passed; a shorter
// deadline inside the invocation (a store that stayed locked) is reported
// as such, not as the function's own timeout.
func TestInvokeDeadlineMessage(t *testing.T) {
	inner := InvokerFunc(func(ctx context.Context, acct silo.AccountID, fn string, req Request) (Response, error) {
		return Response{}, fmt.Errorf("open account store: %w", context.DeadlineExceeded)
	})
	f := newFixture(t, Config{InvokeTimeout: time.Hour}, inner)
	r := f.do(call{host: "acme.localhost", path: "/echo", key: f.keys["acme"]})
	if r.status != 503 || strings.Contains(string(r.body), "did not answer within") || !strings.Contains(string(r.body), "did not answer in time") {
		t.Errorf("inner deadline: got %d %s, want 503 that does not blame the function's timeout", r.status, r.body)
	}

	// Twin: the function's own timeout passes.
	slow := InvokerFunc(func(ctx context.Context, acct silo.AccountID, fn string, req Request) (Response, error) {
		<-ctx.Done()
		return Response{}, fmt.Errorf("invoke: %w", ctx.Err())
	})
	g := newFixture(t, Config{InvokeTimeout: 20 * time.Millisecond}, slow)
	r = g.do(call{host: "acme.localhost", path: "/echo", key: g.keys["acme"]})
	if r.status != 503 || !strings.Contains(string(r.body), "did not answer within 20ms") {
		t.Errorf("own timeout: got %d %s, want 503 naming the 20ms timeout", r.status, r.body)
	}
}
