package aws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/providertest"
)

const (
	principal     = "arn:aws:iam::111111111111:role/silo-control-plane"
	dataPrincipal = "arn:aws:iam::111111111111:role/silo-runtime"
)

// reads are the actions that read tenant data; the control plane's
// deployer role must have none of them (I3).
var reads = []string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchGetItem", "s3:GetObject", "secretsmanager:GetSecretValue", "kms:Decrypt"}

// paramReads are the SSM actions that return parameter values: the
// deployer holds them on /silo (config and records), never on a secret.
var paramReads = []string{"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"}

// readsSecrets returns the statements of doc that let a paramReads action
// reach a secret parameter (or, through GetParametersByPath, the path
// above one) of account awsID.
func readsSecrets(doc siloaws.Policy, awsID string) []string {
	secret := "arn:aws:ssm:us-east-1:" + awsID + ":parameter/silo-secret/api_token"
	var out []string
	for _, st := range doc.Statement {
		for _, a := range st.Action {
			if !slices.Contains(paramReads, a) && a != "ssm:*" && a != "*" {
				continue
			}
			for _, r := range st.Resource {
				for _, target := range []string{secret, secret[:strings.LastIndex(secret, "/")]} {
					if wildMatch(r, target) {
						out = append(out, st.Sid+": "+a+" on "+r)
					}
				}
			}
		}
	}
	return out
}

// wildMatch matches an IAM resource pattern ('*' any run, '?' one
// character, '/' included) against s.
func wildMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if wildMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && wildMatch(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && wildMatch(pattern[1:], s[1:])
}

func actions(doc siloaws.Policy) map[string]bool {
	out := map[string]bool{}
	for _, st := range doc.Statement {
		for _, a := range st.Action {
			out[a] = true
		}
	}
	return out
}

// overbroad returns what in a deployer policy reaches beyond silo's
// resources of account awsID: a wildcard action, a Deny-less "*" resource
// for an action IAM can scope, or a resource of another account.
func overbroad(doc siloaws.Policy, awsID string) []string {
	unscoped := map[string]bool{}
	for _, a := range siloaws.Unscoped {
		unscoped[a] = true
	}
	var out []string
	for _, st := range doc.Statement {
		for _, a := range st.Action {
			if strings.Contains(a, "*") {
				out = append(out, fmt.Sprintf("%s: wildcard action %s", st.Sid, a))
			}
		}
		for _, r := range st.Resource {
			switch {
			case r == "*":
				for _, a := range st.Action {
					if !unscoped[a] {
						out = append(out, fmt.Sprintf("%s: %s on every resource", st.Sid, a))
					}
				}
			case strings.HasPrefix(r, "arn:aws:s3:::"):
				if !strings.HasPrefix(r, "arn:aws:s3:::silo-"+awsID+"-") {
					out = append(out, fmt.Sprintf("%s: bucket %s is not the account's", st.Sid, r))
				}
			case readOnly(st.Action) && (r == "arn:aws:iam::"+awsID+":role/*" || r == "arn:aws:iam::"+awsID+":policy/*" || r == "arn:aws:iam::aws:policy/*"):
				// silo verify reads every role and policy of the account.
			default:
				parts := strings.SplitN(r, ":", 6)
				if len(parts) < 6 || parts[4] != awsID {
					out = append(out, fmt.Sprintf("%s: %s is not in account %s", st.Sid, r, awsID))
				} else if !strings.Contains(parts[5], "silo") && parts[5] != "key/*" {
					out = append(out, fmt.Sprintf("%s: %s is not a silo resource", st.Sid, r))
				}
			}
		}
	}
	return out
}

// readOnly reports whether actions only read IAM or key policies.
func readOnly(actions []string) bool {
	for _, a := range actions {
		if !strings.HasPrefix(a, "iam:Get") && !strings.HasPrefix(a, "iam:List") && a != "kms:GetKeyPolicy" {
			return false
		}
	}
	return true
}

func decodePolicy(t *testing.T, raw string) siloaws.Policy {
	t.Helper()
	if s, err := url.QueryUnescape(raw); err == nil && strings.HasPrefix(strings.TrimSpace(s), "{") {
		raw = s
	}
	var doc siloaws.Policy
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("policy %q: %v", raw, err)
	}
	return doc
}

func TestDeployerRoleHasExactlySilosGrants(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var assumed []string
	p, org := newAWS(t, func(c *siloaws.Config) {
		c.Principal = principal
		c.DataPrincipal = dataPrincipal
		c.AWS.APIOptions = append(c.AWS.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("roles", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if ar, ok := in.Parameters.(*sts.AssumeRoleInput); ok {
					mu.Lock()
					assumed = append(assumed, aws.ToString(ar.RoleArn))
					mu.Unlock()
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
		})
	})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	awsID := awsIDOf(t, p, "acme")
	ep := aws.String(org.Endpoint(awsID))
	c := iam.NewFromConfig(org.Config(), func(o *iam.Options) { o.BaseEndpoint = ep })

	role, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("silo-deployer")})
	if err != nil {
		t.Fatalf("GetRole silo-deployer: %v", err)
	}
	trust := decodePolicy(t, aws.ToString(role.Role.AssumeRolePolicyDocument))
	want := siloaws.Policy{Version: "2012-10-17", Statement: []siloaws.Statement{{
		Effect: "Allow", Principal: map[string]string{"AWS": principal}, Action: []string{"sts:AssumeRole"},
	}}}
	if diff := cmp.Diff(want, trust); diff != "" {
		t.Errorf("trust policy (-want +got):\n%s", diff)
	}
	pol, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("silo-deployer"), PolicyName: aws.String("silo-deployer")})
	if err != nil {
		t.Fatalf("GetRolePolicy: %v", err)
	}
	doc := decodePolicy(t, aws.ToString(pol.PolicyDocument))
	if diff := cmp.Diff(siloaws.DeployerPolicy("us-east-1", awsID), doc); diff != "" {
		t.Errorf("deployer policy read back (-want +got):\n%s", diff)
	}
	if found := overbroad(doc, awsID); len(found) != 0 {
		t.Errorf("the deployer policy reaches beyond silo's resources of %s:\n%s", awsID, strings.Join(found, "\n"))
	}
	// Twin: the check flags each kind of over-broad grant.
	mutations := map[string]func(*siloaws.Policy){
		"wildcard action": func(d *siloaws.Policy) { d.Statement[0].Action = append(d.Statement[0].Action, "dynamodb:*") },
		"any table":       func(d *siloaws.Policy) { d.Statement[0].Resource = []string{"*"} },
		"another account": func(d *siloaws.Policy) {
			d.Statement[4].Resource = []string{"arn:aws:ssm:us-east-1:999999999999:parameter/silo-secret/*"}
		},
		"any bucket": func(d *siloaws.Policy) { d.Statement[2].Resource = []string{"arn:aws:s3:::*/*"} },
		"write any role": func(d *siloaws.Policy) {
			d.Statement[len(d.Statement)-2].Action = append(d.Statement[len(d.Statement)-2].Action, "iam:PutRolePolicy")
		},
		"non-silo resource": func(d *siloaws.Policy) {
			d.Statement[3].Resource = []string{"arn:aws:ssm:us-east-1:" + awsID + ":parameter/*"}
		},
	}
	for name, mutate := range mutations {
		bad := siloaws.DeployerPolicy("us-east-1", awsID)
		mutate(&bad)
		if len(overbroad(bad, awsID)) == 0 {
			t.Errorf("mutation %q is not flagged", name)
		}
	}
	// I3: the deployer reads no tenant data; the data role does (twin).
	for _, a := range reads {
		if actions(doc)[a] {
			t.Errorf("the deployer role may %s: the control plane could read tenant data", a)
		}
	}
	if found := readsSecrets(doc, awsID); len(found) != 0 {
		t.Errorf("the deployer role may read secret parameters:\n%s", strings.Join(found, "\n"))
	}
	// Twin: the check sees a deployer whose parameter grant covers the
	// secrets' path.
	wide := siloaws.DeployerPolicy("us-east-1", awsID)
	for i := range wide.Statement {
		if wide.Statement[i].Sid == "Parameters" {
			wide.Statement[i].Resource = []string{"arn:aws:ssm:us-east-1:" + awsID + ":parameter/silo*"}
		}
	}
	if len(readsSecrets(wide, awsID)) == 0 {
		t.Errorf("a deployer granted ssm:GetParameter on parameter/silo* is not seen reading secrets")
	}
	dataRole, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("silo-data")})
	if err != nil {
		t.Fatalf("GetRole silo-data: %v", err)
	}
	want.Statement[0].Principal = map[string]string{"AWS": dataPrincipal}
	if diff := cmp.Diff(want, decodePolicy(t, aws.ToString(dataRole.Role.AssumeRolePolicyDocument))); diff != "" {
		t.Errorf("data role trust policy (-want +got):\n%s", diff)
	}
	dpol, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("silo-data"), PolicyName: aws.String("silo-data")})
	if err != nil {
		t.Fatalf("GetRolePolicy silo-data: %v", err)
	}
	ddoc := decodePolicy(t, aws.ToString(dpol.PolicyDocument))
	if diff := cmp.Diff(siloaws.DataPolicy("us-east-1", awsID), ddoc); diff != "" {
		t.Errorf("data policy read back (-want +got):\n%s", diff)
	}
	if found := overbroad(ddoc, awsID); len(found) != 0 {
		t.Errorf("the data policy reaches beyond silo's resources of %s:\n%s", awsID, strings.Join(found, "\n"))
	}
	if len(readsSecrets(ddoc, awsID)) == 0 {
		t.Errorf("the data role may not read secret parameters; the data plane needs it")
	}
	for _, a := range []string{"dynamodb:GetItem", "dynamodb:Query", "s3:GetObject", "ssm:GetParameter", "kms:Decrypt"} {
		if !actions(ddoc)[a] {
			t.Errorf("the data role may not %s; the data plane needs it", a)
		}
	}
	for a := range actions(ddoc) {
		if strings.HasPrefix(a, "iam:") || strings.Contains(a, "Delete") && !strings.HasSuffix(a, "Item") && !strings.HasSuffix(a, "Object") {
			t.Errorf("the data role may %s, which is the control plane's", a)
		}
	}
	// The provider created the roles through the access role, and reaches
	// the account through the deployer role (control) and the data role
	// (data plane).
	mu.Lock()
	roles := map[string]bool{}
	for _, r := range assumed {
		roles[r] = true
	}
	mu.Unlock()
	got := keys(roles)
	sort.Strings(got)
	wantRoles := []string{
		"arn:aws:iam::" + awsID + ":role/OrganizationAccountAccessRole",
		"arn:aws:iam::" + awsID + ":role/silo-data",
		"arn:aws:iam::" + awsID + ":role/silo-deployer",
	}
	if diff := cmp.Diff(wantRoles, got); diff != "" {
		t.Errorf("roles assumed (-want +got):\n%s", diff)
	}
}

func TestWithoutPrincipalNoDeployerRole(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t)
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	c := iam.NewFromConfig(org.Config(), func(o *iam.Options) { o.BaseEndpoint = aws.String(org.Endpoint(awsIDOf(t, p, "acme"))) })
	if _, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("silo-deployer")}); err == nil {
		t.Errorf("a deployer role exists although no principal was configured")
	}
}

// TestRolesWrittenAgainAfterAnUpgrade: an account whose deployer role
// holds an earlier version's policy (and its roles tag) gets this
// version's policy written again by the next change applied to it, by a
// provider that never created it (a restarted, upgraded server). The
// twin: an account whose roles are current is not written again.
func TestRolesWrittenAgainAfterAnUpgrade(t *testing.T) {
	ctx := context.Background()
	withRoles := func(c *siloaws.Config) { c.Principal = principal; c.DataPrincipal = dataPrincipal }
	p, org := newAWS(t, withRoles)
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	awsID := awsIDOf(t, p, "acme")
	c := iam.NewFromConfig(org.Config(), func(o *iam.Options) { o.BaseEndpoint = aws.String(org.Endpoint(awsID)) })
	deployer := aws.String("silo-deployer")
	policy := func() siloaws.Policy {
		t.Helper()
		out, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: deployer, PolicyName: deployer})
		if err != nil {
			t.Fatalf("GetRolePolicy: %v", err)
		}
		return decodePolicy(t, aws.ToString(out.PolicyDocument))
	}
	stack := providertest.Stack(t)

	// An earlier version's deployer: fewer grants, another roles tag.
	old := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:GetParameter"],"Resource":["arn:aws:ssm:us-east-1:` + awsID + `:parameter/silo/*"]}]}`
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: deployer, PolicyName: deployer, PolicyDocument: aws.String(old)}); err != nil {
		t.Fatal(err)
	}
	// (The emulator serves no UntagRole: the tag names another version
	// instead of being absent; both differ from this version's.)
	if _, err := c.TagRole(ctx, &iam.TagRoleInput{RoleName: deployer, Tags: []iamtypes.Tag{{Key: aws.String("silo:roles"), Value: aws.String("earlier")}}}); err != nil {
		t.Fatal(err)
	}
	upgraded, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint, PollInterval: time.Millisecond,
		Principal: principal, DataPrincipal: dataPrincipal})
	if err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, upgraded, "acme", stack[:1])
	if diff := cmp.Diff(siloaws.DeployerPolicy("us-east-1", awsID), policy()); diff != "" {
		t.Errorf("after the upgraded server's apply, the deployer policy is not this version's (-want +got):\n%s", diff)
	}

	// Twin: roles current, so a third server applying writes no role.
	var calls callCounter
	cfg := siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint, PollInterval: time.Millisecond,
		Principal: principal, DataPrincipal: dataPrincipal}
	calls.install(&cfg)
	third, err := siloaws.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, third, "acme", stack[1:2])
	if got, _ := calls.take(); strings.Contains(got, "IAM.PutRolePolicy") || !strings.Contains(got, "IAM.GetRole=1") {
		t.Errorf("applying to an account with current roles made these calls: %s; want one GetRole and no PutRolePolicy", got)
	}
}
