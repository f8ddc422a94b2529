package aws_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// quick makes the provider retry at once: the retries are the SDK's, the
// waits between them are not what the tests look at.
func quick(c *siloaws.Config) { c.MaxBackoff = time.Millisecond }

// TestFaultsGiveOneClearErrorAndResume injects, in front of the emulated
// accounts, the faults AWS may answer, and checks for each: one error with
// the right code naming the account and the step (and the IAM action when
// a call is denied), no AWS text in it, and a next call that, the fault
// gone, finishes with one AWS account.
func TestFaultsGiveOneClearErrorAndResume(t *testing.T) {
	table, err := silo.NewResource(silo.TypeTable, "findings", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	applyTable := func(p *siloaws.Provider) error {
		return p.Apply(context.Background(), "acme", silo.Change{Op: silo.OpCreate, Type: table.Type, Name: table.Name, Desired: &table})
	}
	create := func(p *siloaws.Provider) error { return p.CreateAccount(context.Background(), "acme", silo.KindTenant) }
	tests := []struct {
		name string
		// existing: acme exists before the fault (the fault is then
		// injected in its AWS account, else in the management account).
		existing bool
		account  bool // inject in acme's AWS account rather than the management account
		op       string
		fault    awstest.Fault
		act      func(*siloaws.Provider) error
		code     silo.Code
		says     []string
		// faulted: how many calls the fault answered (0: not checked).
		faulted int
		// ok: the call succeeds despite the fault (retried).
		ok bool
	}{
		{name: "wrong credentials", op: "*", fault: awstest.Fault{Code: "UnrecognizedClientException"}, act: create,
			code: silo.CodeInvalid, says: []string{"acme", "credentials", "AWS_PROFILE"}},
		{name: "expired credentials", op: "*", fault: awstest.Fault{Code: "ExpiredTokenException"}, act: create,
			code: silo.CodeInvalid, says: []string{"acme", "expired"}},
		{name: "CreateAccount denied", op: "CreateAccount", fault: awstest.Fault{Code: "AccessDeniedException"}, act: create,
			code: silo.CodeInternal, says: []string{"organizations:CreateAccount", "create the AWS account of account acme"}},
		{name: "AssumeRole denied", op: "AssumeRole", fault: awstest.Fault{Code: "AccessDenied", Status: 403}, act: create,
			code: silo.CodeInternal, says: []string{"sts:AssumeRole", "acme", "trust"}},
		{name: "CreateTable denied", existing: true, account: true, op: "CreateTable", fault: awstest.Fault{Code: "AccessDeniedException"}, act: applyTable,
			code: silo.CodeInternal, says: []string{"dynamodb:CreateTable", "acme"}},
		{name: "throttled twice then served", op: "CreateAccount", fault: awstest.Fault{Code: "TooManyRequestsException", Times: 2}, act: create,
			ok: true, faulted: 2},
		{name: "throttled for good", existing: true, account: true, op: "CreateTable", fault: awstest.Fault{Code: "ThrottlingException"}, act: applyTable,
			code: silo.CodeUnavailable, says: []string{"busy", "table findings", "acme"}, faulted: 5},
		{name: "failing service", op: "DescribeCreateAccountStatus", fault: awstest.Fault{Code: "ServiceException", Status: 500}, act: create,
			code: silo.CodeUnavailable, says: []string{"kept failing", "creation status", "acme"}, faulted: 5},
		{name: "account quota reached", op: "CreateAccount", act: create,
			fault: awstest.Fault{Code: "ConstraintViolationException", Fields: map[string]string{"Reason": "ACCOUNT_NUMBER_LIMIT_EXCEEDED"}},
			code:  silo.CodeUnavailable, says: []string{"quota", "acme"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p, org := newAWS(t, quick)
			where := ""
			if tt.existing {
				if err := create(p); err != nil {
					t.Fatal(err)
				}
				if tt.account {
					where = awsIDOf(t, p, "acme")
				}
			}
			if tt.op != "" {
				org.Inject(where, tt.op, tt.fault)
			}
			err := tt.act(p)
			if tt.faulted > 0 {
				if n := org.Faulted(where, tt.op); n != tt.faulted {
					t.Errorf("the fault answered %d calls, want %d (bounded retries)", n, tt.faulted)
				}
			}
			if tt.ok {
				if err != nil {
					t.Fatalf("with the fault %s on %s: %v; want the retries to get through", tt.fault.Code, tt.op, err)
				}
			} else {
				checkFault(t, err, tt.code, tt.says...)
				// Restarted, the fault gone: the next run finishes.
				org.Clear(where)
				p, _ = newProviderOn(t, org)
				if err := tt.act(p); err != nil {
					t.Fatalf("after the fault: %v", err)
				}
			}
			if n := org.OrgCalls()["CreateAccount"]; tt.op != "CreateAccount" && n != 1 {
				t.Errorf("Organizations.CreateAccount called %d times, want 1", n)
			}
			if ids, err := p.Accounts(ctx); err != nil || len(ids) != 1 {
				t.Errorf("Accounts = %v, %v; want acme alone", ids, err)
			}
		})
	}
}

// checkFault checks that err is one clear error: code, the words it must
// say, and none of AWS's own text.
func checkFault(t *testing.T, err error, code silo.Code, says ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %s", code)
	}
	if got := silo.ErrorCode(err); got != code {
		t.Errorf("code %s, want %s (%v)", got, code, err)
	}
	msg := silo.UserMessage(err)
	for _, s := range says {
		if !strings.Contains(msg, s) {
			t.Errorf("message %q does not say %q", msg, s)
		}
	}
	for _, raw := range []string{"injected fault", "Exception", "api error", "StatusCode", "RequestID"} {
		if strings.Contains(msg, raw) {
			t.Errorf("message %q leaks AWS's text %q", msg, raw)
		}
	}
}

// TestFailedCreationIsNamed: a creation AWS fails for the account quota
// is one clear error naming the account; once the quota allows, the next
// call creates it.
func TestFailedCreationIsNamed(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t, quick)
	org.FailCreations("ACCOUNT_LIMIT_EXCEEDED")
	checkFault(t, p.CreateAccount(ctx, "acme", silo.KindTenant), silo.CodeUnavailable, "account acme", "quota")
	if ids, err := p.Accounts(ctx); err != nil || len(ids) != 0 {
		t.Errorf("Accounts after a failed creation = %v, %v; want none", ids, err)
	}
	org.FailCreations("")
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatalf("CreateAccount once the quota allows: %v", err)
	}
	if ids, err := p.Accounts(ctx); err != nil || len(ids) != 1 {
		t.Errorf("Accounts = %v, %v; want acme", ids, err)
	}
}

// TestStuckCreationIsReportedAndResumed: a creation AWS does not finish
// is reported as stuck, naming the account, and stays pending; once AWS
// finishes it, the next call completes the same account.
func TestStuckCreationIsReportedAndResumed(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t, quick, func(c *siloaws.Config) { c.PollTimeout, c.StuckAfter = time.Millisecond, time.Nanosecond })
	org.SlowCreations(1 << 20)
	err := p.CreateAccount(ctx, "acme", silo.KindTenant)
	checkFault(t, err, silo.CodeUnavailable, "creating the AWS account of account acme", "AWS Support")
	if !provider.IsPending(err) {
		t.Errorf("a stuck creation is not pending: %v", err)
	}
	// Twin: a slow creation not yet past StuckAfter is merely pending.
	patient, _ := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint, PollInterval: time.Millisecond, PollTimeout: time.Millisecond})
	err = patient.CreateAccount(ctx, "acme", silo.KindTenant)
	if !provider.IsPending(err) || strings.Contains(silo.UserMessage(err), "AWS Support") {
		t.Errorf("a recent creation: got %v, want merely pending", err)
	}
	org.FinishCreations()
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatalf("after AWS finished: %v", err)
	}
	if n := org.OrgCalls()["CreateAccount"]; n != 1 {
		t.Errorf("Organizations.CreateAccount called %d times, want 1", n)
	}
}

// TestClosedAccountIsNamed: an account closed outside silo is reported as
// closed, not as missing, and creating it again vends a new AWS account.
func TestClosedAccountIsNamed(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t, quick)
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
	}
	old := awsIDOf(t, p, "acme")
	if _, err := accountClients(org, "").org.CloseAccount(ctx, &organizations.CloseAccountInput{AccountId: aws.String(old)}); err != nil {
		t.Fatal(err)
	}
	restarted, _ := newProviderOn(t, org)
	_, err := restarted.Resources(ctx, "acme")
	checkFault(t, err, silo.CodeNotFound, "AWS account "+old+" of account acme is closed")
	// Twin: the open account is served.
	if _, err := restarted.Resources(ctx, "globex"); err != nil {
		t.Errorf("Resources(globex): %v", err)
	}
	if ids, err := restarted.Accounts(ctx); err != nil || len(ids) != 1 || ids[0] != "globex" {
		t.Errorf("Accounts = %v, %v; want globex", ids, err)
	}
	if _, err := restarted.DeleteAccount(ctx, "acme"); err != nil {
		t.Errorf("DeleteAccount of a closed account: %v", err)
	}
	if err := restarted.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	if now := awsIDOf(t, restarted, "acme"); now == old {
		t.Errorf("acme was created again in its closed AWS account %s", old)
	}
}
