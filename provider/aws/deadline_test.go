package aws_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/provider/providertest"
)

// TestDataCallRetriesUntilItsDeadline: a call of an account's data plane
// whose context has a deadline (a function's table or blob call) retries
// a failing or unreachable AWS until that deadline, however many attempts
// that takes, and ends with the deadline's error, never with a count
// exhausted; the same call without a deadline gives up after
// Config.MaxAttempts attempts with one clear error.
func TestDataCallRetriesUntilItsDeadline(t *testing.T) {
	t.Parallel() // its own emulated organization
	const maxAttempts = 2
	retries := func(c *siloaws.Config) { c.MaxAttempts, c.MaxBackoff = maxAttempts, time.Millisecond }
	p, org := newAWS(t, retries)
	ctx := context.Background()
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	stack := providertest.Stack(t)
	providertest.ApplyAll(t, p, "acme", []silo.Resource{stack[0], stack[2]}) // table findings, bucket uploads
	awsID := awsIDOf(t, p, "acme")
	data, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := data.Put(ctx, "findings", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	failing := awstest.Fault{Code: "InternalServerError", Status: http.StatusInternalServerError}
	withDeadline := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(ctx, d)
		t.Cleanup(cancel)
		return c
	}

	t.Run("without a deadline, failing for good: gives up after MaxAttempts", func(t *testing.T) {
		org.Inject(awsID, "GetItem", failing)
		defer org.Clear(awsID)
		before := org.Faulted(awsID, "GetItem")
		_, err := data.Get(ctx, "findings", "k")
		checkFault(t, err, silo.CodeUnavailable, "kept failing", "findings", "acme")
		if n := org.Faulted(awsID, "GetItem") - before; n != maxAttempts {
			t.Errorf("%d attempts, want %d", n, maxAttempts)
		}
	})
	t.Run("with a deadline, failing for a while: more attempts than MaxAttempts, then served", func(t *testing.T) {
		const fails = 4 * maxAttempts
		org.Inject(awsID, "GetItem", awstest.Fault{Code: failing.Code, Status: failing.Status, Times: fails})
		defer org.Clear(awsID)
		before := org.Faulted(awsID, "GetItem")
		v, err := data.Get(withDeadline(time.Minute), "findings", "k")
		if err != nil || string(v) != "v" {
			t.Fatalf("got %q, %v; want the value once AWS answers", v, err)
		}
		if n := org.Faulted(awsID, "GetItem") - before; n != fails {
			t.Errorf("%d failed attempts, want %d", n, fails)
		}
	})
	t.Run("with a deadline, failing for good: ends with the deadline", func(t *testing.T) {
		org.Inject(awsID, "GetItem", failing)
		defer org.Clear(awsID)
		_, err := data.Get(withDeadline(2*time.Second), "findings", "k")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v; want the deadline's error", err)
		}
	})

	// The account's AWS endpoint unreachable: a closed port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	cut, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", MaxAttempts: maxAttempts, MaxBackoff: time.Millisecond,
		Endpoint: func(account string) string {
			if account == awsID {
				return closed
			}
			return org.Endpoint(account)
		}})
	if err != nil {
		t.Fatal(err)
	}
	unreachable, err := cut.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"table", func(ctx context.Context) error { _, err := unreachable.Get(ctx, "findings", "k"); return err }},
		{"blob", func(ctx context.Context) error { return unreachable.PutBlob(ctx, "uploads", "a", []byte("b")) }},
	}
	for _, c := range calls {
		t.Run("unreachable, "+c.name+" call without a deadline: gives up", func(t *testing.T) {
			checkFault(t, c.call(ctx), silo.CodeUnavailable, "kept failing", "acme")
		})
		t.Run("unreachable, "+c.name+" call with a deadline: ends with the deadline", func(t *testing.T) {
			if err := c.call(withDeadline(2 * time.Second)); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v; want the deadline's error", err)
			}
		})
	}
}
