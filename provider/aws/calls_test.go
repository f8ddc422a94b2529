package aws_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/providertest"
)

// callCounter counts AWS API calls (not retries) by "Service.Operation",
// through an SDK middleware that every client of the provider inherits.
type callCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *callCounter) install(cfg *siloaws.Config) {
	c.counts = map[string]int{}
	cfg.AWS.APIOptions = append(cfg.AWS.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("silo-count", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			c.counts[awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
	})
}

// take returns the counts so far and their total, and starts again.
func (c *callCounter) take() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	total := 0
	for k, n := range c.counts {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		total += n
	}
	sort.Strings(parts)
	c.counts = map[string]int{}
	return strings.Join(parts, " "), total
}

// TestAPICalls counts the AWS calls of an onboarding (CreateAccount of the
// second tenant, the OUs existing, plus applying the ten-resource example
// stack) and of a no-change Resources, and holds the latter to its design:
// one SSM call per ten records, one call each to list tables, buckets and
// config values, and two per bucket to check its public access block and
// encryption.
func TestAPICalls(t *testing.T) {
	t.Run("deployer role", func(t *testing.T) {
		testAPICalls(t, func(c *siloaws.Config) { c.Principal = principal })
	})
	t.Run("access role", func(t *testing.T) { testAPICalls(t) })
}

func testAPICalls(t *testing.T, edit ...func(*siloaws.Config)) {
	ctx := context.Background()
	var c callCounter
	p, _ := newAWS(t, append(edit, c.install)...)
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	c.take()
	if err := p.CreateAccount(ctx, "globex", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	create, nCreate := c.take()
	stack := providertest.Stack(t)
	providertest.ApplyAll(t, p, "globex", stack)
	apply, nApply := c.take()
	if _, err := p.Resources(ctx, "globex"); err != nil {
		t.Fatal(err)
	}
	res, nRes := c.take()
	t.Logf("CreateAccount: %d calls: %s", nCreate, create)
	t.Logf("apply %d resources: %d calls: %s", len(stack), nApply, apply)
	t.Logf("no-change Resources: %d calls: %s", nRes, res)
	buckets := 0
	for _, r := range stack {
		if r.Type == silo.TypeBucket {
			buckets++
		}
	}
	if want := (len(stack)+9)/10 + 3 + 2*buckets; nRes != want {
		t.Errorf("no-change Resources made %d calls, want %d: %s", nRes, want, res)
	}
	if nCreate == 0 || nApply < len(stack) {
		t.Errorf("the counter saw %d and %d calls; it is not counting", nCreate, nApply)
	}
}
