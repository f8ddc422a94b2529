package aws_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/provider/providertest"
)

// TestOffboardingOrder deletes an account with the deployer and data
// roles and two function roles, and checks the order of the steps (key
// scheduled for deletion, data deleted, account marked, every role
// denied, account closed) and that every role ends with the deny-all
// policy.
func TestOffboardingOrder(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var ops []string
	p, org := newAWS(t, func(c *siloaws.Config) {
		c.Principal = principal
		awstest.OnCall(&c.AWS, func(op string) {
			mu.Lock()
			ops = append(ops, op)
			mu.Unlock()
		})
	})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	awsID := awsIDOf(t, p, "acme")
	mu.Lock()
	ops = nil
	mu.Unlock()
	if _, err := p.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	first := func(op string) int {
		mu.Lock()
		defer mu.Unlock()
		i := slices.Index(ops, op)
		if i < 0 {
			t.Errorf("DeleteAccount never called %s; calls: %v", op, ops)
		}
		return i
	}
	order := []string{"KMS.ScheduleKeyDeletion", "DynamoDB.DeleteTable", "S3.DeleteBucket", "SSM.DeleteParameters", "Organizations.TagResource", "IAM.PutRolePolicy", "Organizations.CloseAccount"}
	for i := 1; i < len(order); i++ {
		if a, b := first(order[i-1]), first(order[i]); a >= b {
			t.Errorf("%s (call %d) does not come before %s (call %d)", order[i-1], a, order[i], b)
		}
	}
	c := iam.NewFromConfig(org.Config(), func(o *iam.Options) { o.BaseEndpoint = aws.String(org.Endpoint(awsID)) })
	roles, err := c.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(siloaws.DenyAllPolicy())
	var denied []string
	for _, r := range roles.Roles {
		out, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: r.RoleName, PolicyName: aws.String("silo-deny-all")})
		if err != nil {
			t.Errorf("role %s has no deny-all policy: %v", aws.ToString(r.RoleName), err)
			continue
		}
		doc, _ := url.QueryUnescape(aws.ToString(out.PolicyDocument))
		if diff := cmp.Diff(string(want), doc); diff != "" {
			t.Errorf("role %s's deny policy (-want +got):\n%s", aws.ToString(r.RoleName), diff)
		}
		denied = append(denied, aws.ToString(r.RoleName))
	}
	slices.Sort(denied)
	if len(denied) < 4 || !slices.Contains(denied, "silo-deployer") || !slices.Contains(denied, "silo-data") {
		t.Errorf("denied roles %v; want the deployer, the data role and the function roles", denied)
	}
	if !org.Closed(awsID) {
		t.Errorf("acme's AWS account is not closed")
	}
}

// TestResumedOffboardingToleratesDeniedRoles: once the account is marked
// offboarding, the access role may already be denied (AWS refuses its
// calls): a resumed deletion takes that as done and closes the account.
// Its twin, a deletion not yet at that step, reports the refusal.
func TestResumedOffboardingToleratesDeniedRoles(t *testing.T) {
	for _, marked := range []bool{true, false} {
		ctx := context.Background()
		c := &crasher{op: "Organizations.CloseAccount"}
		if !marked {
			c.op = "KMS.ScheduleKeyDeletion"
		}
		p, org := newAWS(t, quick, c.install)
		if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
		awsID := awsIDOf(t, p, "acme")
		if _, err := p.DeleteAccount(ctx, "acme"); err == nil || !c.fired {
			t.Fatalf("DeleteAccount with a crash at %s: %v", c.op, err)
		}
		org.Inject(awsID, "ListRoles", awstest.Fault{Code: "AccessDenied", Status: 403})
		restarted, _ := newProviderOn(t, org)
		_, err := restarted.DeleteAccount(ctx, "acme")
		if marked {
			if err != nil || !org.Closed(awsID) {
				t.Errorf("resumed after the roles were denied: %v, closed %v; want closed", err, org.Closed(awsID))
			}
			continue
		}
		checkFault(t, err, silo.CodeInternal, "iam:ListRoles", "acme")
		if org.Closed(awsID) {
			t.Errorf("an account whose roles could not be denied was closed")
		}
	}
}

// TestSnapshotAfterOffboarding: once an account is deleted (its AWS account
// closed, still listed by Organizations), the IAM snapshot silo verify
// reads leaves it out and still reads every live account.
func TestSnapshotAfterOffboarding(t *testing.T) {
	ctx := context.Background()
	p, _ := newAWS(t)
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
	}
	acme, err := p.AWSAccountID(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DeleteAccount(ctx, "globex"); err != nil {
		t.Fatal(err)
	}
	snap, err := p.IAMSnapshot(ctx)
	if err != nil {
		t.Fatalf("IAMSnapshot after globex was deleted: %v", err)
	}
	var got []string
	for _, a := range snap.Accounts {
		got = append(got, a.Silo+"="+a.ID)
	}
	if want := []string{"acme=" + acme}; !slices.Equal(got, want) {
		t.Errorf("snapshot accounts = %v, want %v", got, want)
	}
}
