package platform_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/platform"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/silotest"
)

// onAWS starts a platform whose provider is the AWS provider on a fresh
// emulated organization (one kumo process per account). It skips the test
// only when kumo, the emulator, cannot be built here.
func onAWS(t *testing.T) (*silotest.Platform, *siloaws.Provider, *awstest.Org) {
	t.Helper()
	if out, err := exec.Command("go", "tool", "-n", "kumo").CombinedOutput(); err != nil {
		t.Skipf("kumo, the AWS emulator, cannot be built here (go tool -n kumo: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	org := awstest.NewOrg(t)
	prov, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint, PollInterval: 2 * time.Millisecond, PollTimeout: time.Millisecond}) // the first wait outlasts the timeout: every call polls exactly once
	if err != nil {
		t.Fatal(err)
	}
	p := silotest.New(t, silotest.WithConfig(func(c *platform.Config) { c.Provider = prov }))
	return p, prov, org
}

// TestExampleOnTheAWSProvider runs the example app on the AWS provider:
// three tenants onboarded (an AWS member account each), an update applied,
// functions called through the gateway (in the platform's runtime, against
// each account's DynamoDB table and secret parameter), and one tenant
// offboarded (its AWS account closed, nothing of it left).
func TestExampleOnTheAWSProvider(t *testing.T) {
	t.Parallel() // its own emulated organization and platform
	ctx := context.Background()
	p, prov, _ := onAWS(t)
	app := silotest.CopyExample(t)
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"), silotest.Secret("github-token", "ghp_example"))
	globex := p.Tenant(t, "globex")
	initech := p.Tenant(t, "initech")

	// Each tenant is its own AWS account.
	seen := map[string]silo.AccountID{}
	for _, id := range []silo.AccountID{acme.ID, globex.ID, initech.ID, silo.ProductionID} {
		awsID, err := prov.AWSAccountID(ctx, id)
		if err != nil || len(awsID) != 12 {
			t.Fatalf("AWS account of %s = %q, %v", id, awsID, err)
		}
		if other, dup := seen[awsID]; dup {
			t.Fatalf("%s and %s share AWS account %s", id, other, awsID)
		}
		seen[awsID] = id
	}

	// Calls through the gateway reach each account's own data.
	resp := acme.POST(t, "/findings", `{"severity":"high","app":"github","cve":"CVE-2024-3094"}`)
	if resp.Status != http.StatusCreated || !strings.Contains(string(resp.Body), `"remediation":"available"`) {
		t.Fatalf("acme POST /findings: %s; want 201 with remediation available (acme's secret, from its SSM SecureString parameter)", resp)
	}
	if !strings.Contains(string(resp.Body), `"known_exploited":true`) {
		t.Errorf("acme POST /findings: %s; want the enrichment from production's export", resp)
	}
	if resp := globex.POST(t, "/findings", `{"severity":"low","app":"slack"}`); resp.Status != http.StatusCreated || !strings.Contains(string(resp.Body), `"remediation":"manual"`) {
		t.Fatalf("globex POST /findings: %s; want 201 with remediation manual", resp)
	}
	if resp := acme.GET(t, "/findings"); resp.Status != http.StatusOK || !strings.Contains(string(resp.Body), `"count":1`) || !strings.Contains(string(resp.Body), "github") || strings.Contains(string(resp.Body), "slack") {
		t.Errorf("acme GET /findings: %s; want its one finding and not globex's", resp)
	}
	// The finding is in acme's DynamoDB table, read through the provider.
	d, err := prov.Data(ctx, acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	if kvs, err := d.Scan(ctx, "findings", "", "", 10); err != nil || len(kvs) != 1 {
		t.Errorf("acme's findings table on AWS holds %d items (%v); want 1", len(kvs), err)
	}

	// An update: a new table in every tenant account.
	spec := filepath.Join(app, "silo.yaml")
	b, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	updated := strings.Replace(string(b), "tables:\n  findings:", "tables:\n  audit-trail: {description: \"added by an update\"}\n  findings:", 1)
	if updated == string(b) {
		t.Fatal("the example's silo.yaml no longer has the tables section this test edits")
	}
	if err := os.WriteFile(spec, []byte(updated), 0o644); err != nil {
		t.Fatal(err)
	}
	dep := p.Deploy(t, app)
	for _, id := range []silo.AccountID{acme.ID, globex.ID, initech.ID} {
		if !slices.Contains(dep.Changed, id) {
			t.Errorf("the update did not change %s: changed %v", id, dep.Changed)
		}
		rs, err := prov.Resources(ctx, id)
		if err != nil || !slices.ContainsFunc(rs, func(r silo.Resource) bool { return r.Key() == "table/audit-trail" }) {
			t.Errorf("%s on AWS after the update: %v, %v; want table audit-trail", id, rs, err)
		}
	}
	// Twin of the new table: the old data survived the update.
	if resp := acme.GET(t, "/findings"); !strings.Contains(string(resp.Body), `"count":1`) {
		t.Errorf("acme GET /findings after the update: %s; want its finding kept", resp)
	}

	// Offboarding: the AWS account is closed and nothing of it is left.
	closed, err := prov.AWSAccountID(ctx, initech.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Platform().DeleteAccount(ctx, initech.ID); err != nil {
		t.Fatalf("delete initech: %v", err)
	}
	if err := p.Platform().VerifyGone(ctx, initech.ID); err != nil {
		t.Error(err)
	}
	if _, err := prov.AWSAccountID(ctx, initech.ID); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("initech's AWS account %s after offboarding: %v; want it closed (not found)", closed, err)
	}
	if resp := initech.GET(t, "/findings"); resp.Status < 400 {
		t.Errorf("initech GET /findings after offboarding: %s; want refused", resp)
	}
	// Twin: the others still answer.
	if resp := globex.GET(t, "/findings"); resp.Status != http.StatusOK {
		t.Errorf("globex GET /findings after initech left: %s", resp)
	}
}

// TestPendingCreationOnAWS: when AWS takes longer to create an account than
// the provider waits, onboarding returns at once with the account in state
// provisioning, the gateway refuses it, a deploy meanwhile reports it
// pending (not failed), and the next recovery pass finishes it; a second
// pass changes nothing.
func TestPendingCreationOnAWS(t *testing.T) {
	t.Parallel() // its own emulated organization and platform
	ctx := context.Background()
	p, prov, org := onAWS(t)
	app := silotest.CopyExample(t)
	p.Deploy(t, app)
	org.SlowCreations(2) // AWS answers IN_PROGRESS to the first two polls; the provider waits 1 ms

	c, err := p.Platform().CreateAccount(ctx, control.CreateRequest{ID: "hooli", WithKey: true})
	if err != nil {
		t.Fatalf("create hooli: %v; want it registered, provisioning", err)
	}
	if c.Account.State != silo.StateProvisioning {
		t.Fatalf("hooli after a pending creation: state %s, want provisioning", c.Account.State)
	}
	if _, err := prov.AWSAccountID(ctx, "hooli"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("hooli's AWS account while pending: %v; want not found yet", err)
	}
	hooli := p.Client(c.Account.ID, c.Key)
	if resp := hooli.GET(t, "/findings"); resp.Status < 500 {
		t.Errorf("GET /findings of a provisioning account: %s; want 503", resp)
	}

	// A deploy meanwhile is not held up: the account is pending, not failed.
	dep, err := p.Platform().Deploy(ctx, app)
	if err != nil || !slices.Equal(dep.Pending, []silo.AccountID{"hooli"}) || len(dep.Failed) != 0 {
		t.Fatalf("deploy while hooli is pending: %+v, %v; want hooli pending, nothing failed", dep, err)
	}

	rep, err := p.Platform().Plane.Resume(ctx)
	if err != nil || !slices.Contains(rep.Resumed, "hooli") {
		t.Fatalf("resume: %+v, %v; want hooli finished", rep, err)
	}
	a, err := p.Platform().Plane.Account(ctx, "hooli")
	if err != nil || a.State != silo.StateActive {
		t.Fatalf("hooli after resume: %s, %v; want active", a.State, err)
	}
	p.Platform().Invalidate("hooli")
	if resp := hooli.GET(t, "/findings"); resp.Status != http.StatusOK {
		t.Errorf("GET /findings after the creation finished: %s", resp)
	}
	if rep, err := p.Platform().Plane.Resume(ctx); err != nil || len(rep.Resumed)+len(rep.Pending)+len(rep.Failed) != 0 {
		t.Errorf("a second resume: %+v, %v; want nothing to do", rep, err)
	}
	ids, err := prov.Accounts(ctx)
	if err != nil || !slices.Equal(ids, []silo.AccountID{"hooli", silo.ProductionID}) {
		t.Errorf("AWS accounts: %v, %v; want hooli and production, one each", ids, err)
	}
}

// TestFunctionWaitingForAWSIsNotBlamed: when the account's DynamoDB keeps
// failing, the function's table call is retried until the function's
// deadline (never given up on after a count of attempts, which could end
// it before the deadline and let the function answer its own failure),
// the guest is stopped when the call comes back (runtime), and the
// gateway says the function waited for AWS, not that it is slow; once
// AWS answers again, the same request succeeds.
//
// What is put down to AWS is a table call blocked for at least half the
// function's timeout (1 s of the example's 2 s): the function is warm
// (one request served before the fault), so its call begins at once.
func TestFunctionWaitingForAWSIsNotBlamed(t *testing.T) {
	t.Parallel() // its own emulated organization and platform
	ctx := context.Background()
	p, prov, org := onAWS(t)
	p.Deploy(t, silotest.CopyExample(t))
	acme := p.Tenant(t, "acme")
	awsID, err := prov.AWSAccountID(ctx, acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	if resp := acme.GET(t, "/findings"); resp.Status != http.StatusOK {
		t.Fatalf("GET /findings before the fault: %s; want 200", resp)
	}
	org.Inject(awsID, "Query", awstest.Fault{Code: "InternalServerError", Status: http.StatusInternalServerError})
	resp := acme.GET(t, "/findings")
	if resp.Status != http.StatusServiceUnavailable || !strings.Contains(string(resp.Body), "timed out waiting for its account's table store: the aws provider's table calls got no answer in time") {
		t.Errorf("GET /findings while DynamoDB fails: %s; want 503 naming the wait for AWS", resp)
	}
	if strings.Contains(string(resp.Body), "make it faster") {
		t.Errorf("GET /findings while DynamoDB fails blames the function: %s", resp)
	}
	org.Clear(awsID)
	if resp := acme.GET(t, "/findings"); resp.Status != http.StatusOK {
		t.Errorf("GET /findings once DynamoDB answers: %s; want 200", resp)
	}
}

// TestFunctionWaitingForAWSNamesTheStore: every data call a function makes
// is watched, not only its table calls. While S3 answers the account's
// blob calls with 503 SlowDown (retried until the function's deadline), a
// function blocked in its blob read is told it waited for its account's
// blob store; while SSM fails, one blocked in its config read is told it
// waited for its configuration; neither is told to make itself faster.
// Once AWS answers again, the same requests succeed. The twin: a function
// that computes past its timeout (after a quick blob read) gets the
// runtime's "make it faster" answer, not a wait for AWS.
func TestFunctionWaitingForAWSNamesTheStore(t *testing.T) {
	t.Parallel() // its own emulated organization and platform
	ctx := context.Background()
	p, prov, org := onAWS(t)
	p.Deploy(t, "testdata/waits")
	acme := p.Tenant(t, "acme")
	awsID, err := prov.AWSAccountID(ctx, acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Warm: the function is compiled and its first calls made, so a
	// blocked call begins at once.
	if resp := acme.POST(t, "/files", "remember"); resp.Status != http.StatusCreated {
		t.Fatalf("POST /files before the fault: %s; want 201", resp)
	}
	for _, tc := range []struct {
		path, op, code, want string
	}{
		{"/files", "GetObject", "SlowDown", `timed out waiting for its account's blob store: the aws provider's blob calls got no answer in time`},
		{"/mode", "GetParameter", "InternalServerError", `timed out waiting for its account's configuration: the aws provider's config reads got no answer in time`},
	} {
		t.Run(tc.op, func(t *testing.T) {
			if resp := acme.GET(t, tc.path); resp.Status != http.StatusOK {
				t.Fatalf("GET %s before the fault: %s; want 200", tc.path, resp)
			}
			org.Inject(awsID, tc.op, awstest.Fault{Code: tc.code, Status: http.StatusServiceUnavailable})
			resp := acme.GET(t, tc.path)
			org.Clear(awsID)
			if resp.Status != http.StatusServiceUnavailable || !strings.Contains(string(resp.Body), tc.want) {
				t.Errorf("GET %s while %s fails: %s; want 503 with %q", tc.path, tc.op, resp, tc.want)
			}
			if strings.Contains(string(resp.Body), "make it faster") {
				t.Errorf("GET %s while %s fails blames the function: %s", tc.path, tc.op, resp)
			}
			if org.Faulted(awsID, tc.op) == 0 {
				t.Errorf("no %s call met the fault: the test did not make the function wait", tc.op)
			}
			if resp := acme.GET(t, tc.path); resp.Status != http.StatusOK {
				t.Errorf("GET %s once AWS answers: %s; want 200", tc.path, resp)
			}
		})
	}
	t.Run("slow function", func(t *testing.T) {
		resp := acme.GET(t, "/spin")
		if resp.Status != http.StatusServiceUnavailable || !strings.Contains(string(resp.Body), "make it faster") || strings.Contains(string(resp.Body), "waiting for") {
			t.Errorf("GET /spin (computes past its timeout): %s; want 503 telling to make it faster, not a wait for AWS", resp)
		}
	})
}
