package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// awsCalls counts the AWS calls the CLI's provider makes, by
// "Service.Operation".
type awsCalls struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *awsCalls) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[string]int{}
	return out
}

func format(m map[string]int) string {
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// mutatingCall reports whether an AWS operation may change something.
func mutatingCall(op string) bool {
	_, name, _ := strings.Cut(op, ".")
	for _, read := range []string{"Get", "List", "Describe", "Head", "AssumeRole"} {
		if strings.HasPrefix(name, read) {
			return false
		}
	}
	return true
}

// TestNoChangePlanOnAWS counts the AWS calls of the CLI's paths on the
// emulated organization: an onboarding of the example app, then a
// no-change silo plan, which must make no mutating call and at most one
// read per resource kind.
func TestNoChangePlanOnAWS(t *testing.T) {
	awsEnv(t, true)
	org := awstest.NewOrg(t)
	calls := &awsCalls{counts: map[string]int{}}
	old := loadAWS
	t.Cleanup(func() { loadAWS = old })
	loadAWS = func(ctx context.Context, region string, cfg siloaws.Config) (provider.Provider, error) {
		cfg.AWS = org.Config()
		awstest.OnCall(&cfg.AWS, func(op string) {
			calls.mu.Lock()
			calls.counts[op]++
			calls.mu.Unlock()
		})
		cfg.Endpoint, cfg.PollInterval = org.Endpoint, time.Millisecond
		p, err := siloaws.New(cfg)
		if err != nil {
			return nil, err
		}
		return p, p.Check(ctx)
	}
	c := newCLI(t)
	c.ok("--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com", "tenant", "create", "acme", "--no-key")
	onboard := calls.take()
	t.Logf("tenant create acme (with the production account): %d AWS calls: %s", total(onboard), format(onboard))
	// Twin of the check below: the onboarding's calls are seen as mutating.
	if onboard["Organizations.CreateAccount"] == 0 || !mutatingCall("Organizations.CreateAccount") {
		t.Fatalf("the onboarding made no CreateAccount call that counts as mutating: %s", format(onboard))
	}
	c.ok("plan", "--all")
	plan := calls.take()
	t.Logf("no-change silo plan: %d AWS calls: %s", total(plan), format(plan))
	for op := range plan {
		if mutatingCall(op) {
			t.Errorf("a no-change plan called %s", op)
		}
	}
	// The reads: the CLI checks the organization once at start (ListRoots);
	// nothing else may be read more than once.
	for op, n := range plan {
		if n > 1 {
			t.Errorf("a no-change plan called %s %d times; want at most once", op, n)
		}
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
