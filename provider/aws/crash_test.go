package aws_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/providertest"
)

// crasher stops the provider at one AWS operation, once: before the call
// reaches AWS, or after AWS performed it but before the provider sees the
// answer, as a process killed at that moment would.
type crasher struct {
	mu    sync.Mutex
	op    string // "Service.Operation"
	after bool
	fired bool
}

var errCrash = errors.New("crash")

func (c *crasher) install(cfg *siloaws.Config) {
	cfg.AWS.APIOptions = append(cfg.AWS.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("silo-crash", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
			c.mu.Lock()
			hit := op == c.op && !c.fired
			c.fired = c.fired || hit
			c.mu.Unlock()
			if hit && !c.after {
				return middleware.InitializeOutput{}, middleware.Metadata{}, errCrash
			}
			out, md, err := next.HandleInitialize(ctx, in)
			if hit && err == nil {
				return middleware.InitializeOutput{}, md, errCrash
			}
			return out, md, err
		}), middleware.After)
	})
}

// TestCreateAccountResumesAfterCrash stops CreateAccount at each step of
// the vending and checks that a new provider (a restarted server) finishes
// the same AWS account: no second account, in its OU, with a data key.
func TestCreateAccountResumesAfterCrash(t *testing.T) {
	steps := []struct {
		name  string
		op    string
		after bool
	}{
		{"after CreateAccount", "Organizations.CreateAccount", true},
		{"after the first poll", "Organizations.DescribeCreateAccountStatus", true},
		{"before MoveAccount", "Organizations.MoveAccount", false},
		{"after CreateKey", "KMS.CreateKey", true},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			ctx := context.Background()
			c := &crasher{op: step.op, after: step.after}
			p, org := newAWS(t, c.install)
			if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err == nil || !c.fired {
				t.Fatalf("CreateAccount with a crash at %s: got %v, fired %v; want the crash", step.op, err, c.fired)
			}
			restarted, _ := newProviderOn(t, org)
			if err := restarted.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatalf("CreateAccount after the crash: %v", err)
			}
			if n := org.OrgCalls()["CreateAccount"]; n != 1 {
				t.Errorf("Organizations.CreateAccount called %d times, want 1", n)
			}
			ids, err := restarted.Accounts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]silo.AccountID{"acme"}, ids); diff != "" {
				t.Errorf("Accounts (-want +got):\n%s", diff)
			}
			awsID := awsIDOf(t, restarted, "acme")
			if got, want := org.Parent(awsID), ous(t, accountClients(org, ""))["tenants"]; got != want {
				t.Errorf("acme is in parent %q, want OU tenants %q", got, want)
			}
			if _, err := restarted.KeyInfo(ctx, "acme"); err != nil {
				t.Errorf("KeyInfo after the resumed create: %v", err)
			}
		})
	}
}

// TestDeleteAccountResumesAfterCrash stops DeleteAccount at each step and
// checks that calling it again (from a restarted provider) finishes it:
// the key shredded, the data gone, the account closed.
func TestDeleteAccountResumesAfterCrash(t *testing.T) {
	steps := []struct {
		name  string
		op    string
		after bool
	}{
		{"after the key is scheduled for deletion", "KMS.ScheduleKeyDeletion", true},
		{"before the tables are deleted", "DynamoDB.DeleteTable", false},
		{"before the bucket is deleted", "S3.DeleteBucket", false},
		{"before the secrets are deleted", "SSM.DescribeParameters", true},
		{"after the account is marked offboarding", "Organizations.TagResource", true},
		{"after the first role is denied", "IAM.PutRolePolicy", true},
		{"before the account is closed", "Organizations.CloseAccount", false},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			ctx := context.Background()
			c := &crasher{}
			p, org := newAWS(t, c.install)
			if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatal(err)
			}
			providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
			if err := p.PutSecret(ctx, "acme", "api_token", []byte("s")); err != nil {
				t.Fatal(err)
			}
			k, err := p.KeyInfo(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			awsID := awsIDOf(t, p, "acme")
			c.mu.Lock()
			c.op, c.after = step.op, step.after
			c.mu.Unlock()
			if _, err := p.DeleteAccount(ctx, "acme"); err == nil || !c.fired {
				t.Fatalf("DeleteAccount with a crash at %s: got %v, fired %v; want the crash", step.op, err, c.fired)
			}
			restarted, _ := newProviderOn(t, org)
			if _, err := restarted.DeleteAccount(ctx, "acme"); err != nil {
				t.Fatalf("DeleteAccount after the crash: %v", err)
			}
			gone := holdings{KeyState: "PendingDeletion", Tables: []string{}, Closed: true}
			if diff := cmp.Diff(gone, holdingsOf(t, org, awsID, k.WrappedBy)); diff != "" {
				t.Errorf("acme after the resumed delete (-want +got):\n%s", diff)
			}
			if ids, err := restarted.Accounts(ctx); err != nil || len(ids) != 0 {
				t.Errorf("Accounts after the resumed delete = %v, %v; want none", ids, err)
			}
		})
	}
}
