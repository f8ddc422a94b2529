package aws_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
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
// Config.MaxAttempts attempts with one clear error, and after one attempt
// when the endpoint refuses the connection (nothing listens there: more
// attempts would only make the user wait).
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
	tries := &countingClient{host: l.Addr().String()}
	cutCfg := org.Config()
	cutCfg.HTTPClient = tries
	cut, err := siloaws.New(siloaws.Config{AWS: cutCfg, Email: "aws@example.com", MaxAttempts: maxAttempts, MaxBackoff: time.Millisecond,
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
		t.Run("unreachable, "+c.name+" call without a deadline: gives up after one attempt", func(t *testing.T) {
			before := tries.n.Load()
			err := c.call(ctx)
			checkFault(t, err, silo.CodeUnavailable, "silo cannot reach AWS", "acme", "nothing accepts connections at its address", "AWS_ENDPOINT_URL")
			if n := tries.n.Load() - before; n != 1 {
				t.Errorf("%d attempts at a port that refuses connections, want 1", n)
			}
			if cause := silo.Cause(err); cause == nil || !strings.Contains(cause.Error(), "connection refused") {
				t.Errorf("the cause %v does not keep the network's error", cause)
			}
		})
		t.Run("unreachable, "+c.name+" call with a deadline: ends with the deadline", func(t *testing.T) {
			before := tries.n.Load()
			if err := c.call(withDeadline(2 * time.Second)); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v; want the deadline's error", err)
			}
			if n := tries.n.Load() - before; n < 2 {
				t.Errorf("%d attempts before the deadline, want it retried", n)
			}
		})
	}
}

// countingClient is the SDK's HTTP client counting the requests sent to
// host.
type countingClient struct {
	host string
	n    atomic.Int64
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	if r.URL.Host == c.host {
		c.n.Add(1)
	}
	return http.DefaultClient.Do(r)
}
