package aws_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// trustOrg is an emulated organization with a production account
// exporting a table and a bucket, and a tenant whose function reads them.
type trustOrg struct {
	p          *siloaws.Provider
	org        *awstest.Org
	prod, acme string // AWS account IDs
}

func mkRes(t testing.TB, typ silo.ResourceType, name string, spec any) silo.Resource {
	t.Helper()
	r, err := silo.NewResource(typ, name, spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func apply(t testing.TB, p *siloaws.Provider, acct silo.AccountID, op silo.Op, r silo.Resource) {
	t.Helper()
	if err := p.Apply(context.Background(), acct, silo.Change{Op: op, Type: r.Type, Name: r.Name, Desired: &r}); err != nil {
		t.Fatalf("%s %s in %s: %v", op, r.Key(), acct, err)
	}
}

// ingestSpec is the grants of the tenant's function "ingest".
var ingestSpec = silo.FunctionSpec{
	Artifact: strings.Repeat("a", 64),
	Tables:   map[string]string{"findings": "read-write", "sessions": "read"},
	Buckets:  map[string]string{"uploads": "read"},
	Config:   []string{"plan"},
	Secrets:  []string{"api_token"},
	Exports:  []string{"threat-intel", "feeds"},
}

func newTrustOrg(t *testing.T, extra ...string) trustOrg {
	t.Helper()
	ctx := context.Background()
	p, org := newAWS(t, func(c *siloaws.Config) { c.Principal = principal; c.DataPrincipal = dataPrincipal })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(p.CreateAccount(ctx, "production", silo.KindProduction))
	must(p.CreateAccount(ctx, "acme", silo.KindTenant))
	for _, id := range extra {
		must(p.CreateAccount(ctx, silo.AccountID(id), silo.KindTenant))
	}
	// The emulator's default key policy names account 000000000000; AWS's
	// names the key's own account. Put AWS's back, so that the account's
	// principals may use their key through IAM as on AWS.
	for _, id := range append([]string{"production", "acme"}, extra...) {
		a := trustOrg{org: org}.account(awsIDOf(t, p, silo.AccountID(id)))
		a.keyPolicy(t, `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+a.id+`:root"},"Action":["kms:*"],"Resource":["*"]}]}`)
	}
	for _, r := range []silo.Resource{
		mkRes(t, silo.TypeTable, "intel", map[string]any{}),
		mkRes(t, silo.TypeBucket, "feeds", map[string]any{}),
		mkRes(t, silo.TypeTable, "internal", map[string]any{}),
		mkRes(t, silo.TypeExport, "threat-intel", silo.ExportSpec{Table: "intel"}),
		mkRes(t, silo.TypeExport, "feeds", silo.ExportSpec{Bucket: "feeds"}),
	} {
		apply(t, p, "production", silo.OpCreate, r)
	}
	for _, id := range append([]string{"acme"}, extra...) {
		for _, r := range []silo.Resource{
			mkRes(t, silo.TypeTable, "findings", map[string]any{}),
			mkRes(t, silo.TypeTable, "sessions", map[string]any{}),
			mkRes(t, silo.TypeBucket, "uploads", map[string]any{}),
			mkRes(t, silo.TypeConfig, "plan", map[string]any{"value": "pro"}),
			mkRes(t, silo.TypeSecret, "api_token", map[string]any{}),
			mkRes(t, silo.TypeSecret, "other_token", map[string]any{}),
			mkRes(t, silo.TypeFunction, "ingest", ingestSpec),
			mkRes(t, silo.TypeFunction, "List", silo.FunctionSpec{Artifact: strings.Repeat("b", 64), Tables: map[string]string{"findings": "read"}}),
		} {
			apply(t, p, silo.AccountID(id), silo.OpCreate, r)
		}
	}
	return trustOrg{p: p, org: org, prod: awsIDOf(t, p, "production"), acme: awsIDOf(t, p, "acme")}
}

func (o trustOrg) iam(awsID string) *iam.Client {
	return iam.NewFromConfig(o.org.Config(), func(op *iam.Options) { op.BaseEndpoint = aws.String(o.org.Endpoint(awsID)) })
}

func TestFunctionRoleHasExactlyItsGrants(t *testing.T) {
	ctx := context.Background()
	o := newTrustOrg(t)
	c := o.iam(o.acme)
	role, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(siloaws.FunctionRole("ingest"))})
	if err != nil {
		t.Fatalf("GetRole: %v", err)
	}
	// kumo answers every IAM ARN in account 123456789012, so only the
	// path and name are compared.
	if got, want := aws.ToString(role.Role.Arn), siloaws.FunctionRoleARN(o.acme, "ingest"); got[strings.Index(got, ":role/"):] != want[strings.Index(want, ":role/"):] {
		t.Errorf("role ARN %s, want %s", got, want)
	}
	trust := decodePolicy(t, aws.ToString(role.Role.AssumeRolePolicyDocument))
	wantTrust := siloaws.Policy{Version: "2012-10-17", Statement: []siloaws.Statement{{
		Effect: "Allow", Principal: map[string]string{"Service": "lambda.amazonaws.com"}, Action: []string{"sts:AssumeRole"},
		Condition: map[string]map[string][]string{"StringEquals": {"aws:SourceAccount": {o.acme}}},
	}}}
	if diff := cmp.Diff(wantTrust, trust); diff != "" {
		t.Errorf("trust policy (-want +got):\n%s", diff)
	}
	pol, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(siloaws.FunctionRole("ingest")), PolicyName: aws.String("silo-grants")})
	if err != nil {
		t.Fatalf("GetRolePolicy: %v", err)
	}
	doc := decodePolicy(t, aws.ToString(pol.PolicyDocument))
	// Every (action, resource) pair the policy grants, with its condition.
	got := map[string]bool{}
	for _, st := range doc.Statement {
		for _, a := range st.Action {
			for _, r := range st.Resource {
				k := a + " " + r
				if st.Condition != nil {
					k += " via " + strings.Join(st.Condition["StringEquals"]["kms:ViaService"], ",")
				}
				got[k] = true
			}
		}
	}
	region := "us-east-1"
	ddb := "arn:aws:dynamodb:" + region + ":"
	key, err := o.p.KeyInfo(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"dynamodb:GetItem " + ddb + o.acme + ":table/silo.findings",
		"dynamodb:Query " + ddb + o.acme + ":table/silo.findings",
		"dynamodb:PutItem " + ddb + o.acme + ":table/silo.findings",
		"dynamodb:DeleteItem " + ddb + o.acme + ":table/silo.findings",
		"dynamodb:GetItem " + ddb + o.acme + ":table/silo.sessions",
		"dynamodb:Query " + ddb + o.acme + ":table/silo.sessions",
		"s3:ListBucket arn:aws:s3:::" + bucketOf(o.acme, "uploads"),
		"s3:GetObject arn:aws:s3:::" + bucketOf(o.acme, "uploads") + "/*",
		"ssm:GetParameter arn:aws:ssm:" + region + ":" + o.acme + ":parameter/silo/config/plan",
		"ssm:GetParameters arn:aws:ssm:" + region + ":" + o.acme + ":parameter/silo/config/plan",
		"ssm:GetParameter arn:aws:ssm:" + region + ":" + o.acme + ":parameter/silo-secret/api_token",
		"kms:Decrypt arn:aws:kms:us-east-1:" + o.acme + ":key/" + key.WrappedBy[strings.LastIndex(key.WrappedBy, "/")+1:] + " via s3." + region + ".amazonaws.com,ssm." + region + ".amazonaws.com",
		"dynamodb:GetItem " + ddb + o.prod + ":table/silo.intel",
		"dynamodb:Query " + ddb + o.prod + ":table/silo.intel",
		"s3:ListBucket arn:aws:s3:::" + bucketOf(o.prod, "feeds"),
		"s3:GetObject arn:aws:s3:::" + bucketOf(o.prod, "feeds") + "/*",
		"kms:Decrypt arn:aws:kms:" + region + ":" + o.prod + ":key/* via dynamodb." + region + ".amazonaws.com,s3." + region + ".amazonaws.com",
	}
	wantSet := map[string]bool{}
	for _, w := range want {
		wantSet[w] = true
	}
	if diff := cmp.Diff(wantSet, got); diff != "" {
		t.Errorf("grants of ingest (-want +got):\n%s", diff)
	}
	// A name IAM would fold or refuse gets a hashed role name, stable.
	if r := siloaws.FunctionRole("List"); r == "silo-fn-List" || r != siloaws.FunctionRole("List") || !strings.HasPrefix(r, "silo-fn-.") {
		t.Errorf("FunctionRole(List) = %s", r)
	}
	if _, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(siloaws.FunctionRole("List"))}); err != nil {
		t.Errorf("the role of function List: %v", err)
	}

	// Narrowing the grants narrows the policy; deleting the function
	// deletes its role.
	narrow := ingestSpec
	narrow.Tables, narrow.Buckets, narrow.Config, narrow.Secrets, narrow.Exports = map[string]string{"sessions": "read"}, nil, nil, nil, nil
	apply(t, o.p, "acme", silo.OpUpdate, mkRes(t, silo.TypeFunction, "ingest", narrow))
	pol, err = c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(siloaws.FunctionRole("ingest")), PolicyName: aws.String("silo-grants")})
	if err != nil {
		t.Fatal(err)
	}
	if doc := decodePolicy(t, aws.ToString(pol.PolicyDocument)); len(doc.Statement) != 1 || doc.Statement[0].Resource[0] != ddb+o.acme+":table/silo.sessions" {
		t.Errorf("narrowed policy %+v", doc)
	}
	if err := o.p.Apply(ctx, "acme", silo.Change{Op: silo.OpDelete, Type: silo.TypeFunction, Name: "ingest"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(siloaws.FunctionRole("ingest"))}); err == nil {
		t.Errorf("the role of a deleted function still exists")
	}
}

func bucketOf(awsID, name string) string {
	return siloaws.BucketName(awsID, name)
}

func TestExportPoliciesShareReadOnlyWithTheOrgPaths(t *testing.T) {
	ctx := context.Background()
	o := newTrustOrg(t)
	ep := aws.String(o.org.Endpoint(o.prod))
	ddb := dynamodb.NewFromConfig(o.org.Config(), func(op *dynamodb.Options) { op.BaseEndpoint = ep })
	s3c := s3.NewFromConfig(o.org.Config(), func(op *s3.Options) { op.BaseEndpoint = ep; op.UsePathStyle = true })
	tableARN := "arn:aws:dynamodb:us-east-1:" + o.prod + ":table/silo.intel"
	tp, err := ddb.GetResourcePolicy(ctx, &dynamodb.GetResourcePolicyInput{ResourceArn: aws.String(tableARN)})
	if err != nil {
		t.Fatalf("the exported table has no resource policy: %v", err)
	}
	doc := decodePolicy(t, aws.ToString(tp.Policy))
	if len(doc.Statement) != 1 {
		t.Fatalf("table policy %+v", doc)
	}
	st := doc.Statement[0]
	if diff := cmp.Diff([]string{"dynamodb:GetItem", "dynamodb:Query"}, st.Action); diff != "" {
		t.Errorf("exported table actions (-want +got):\n%s", diff)
	}
	paths := st.Condition["ForAnyValue:StringLike"]["aws:PrincipalOrgPaths"]
	if len(paths) != 3 || len(st.Condition["StringEquals"]["aws:PrincipalOrgID"]) != 1 {
		t.Errorf("the export is not limited to the three reader OUs of the organization: %v", st.Condition)
	}
	bp, err := s3c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(bucketOf(o.prod, "feeds"))})
	if err != nil {
		t.Fatalf("the exported bucket has no policy: %v", err)
	}
	for _, st := range decodePolicy(t, aws.ToString(bp.Policy)).Statement {
		for _, a := range st.Action {
			if a != "s3:GetObject" && a != "s3:ListBucket" {
				t.Errorf("the bucket export allows %s", a)
			}
		}
	}
	// Production's key lets the reader OUs decrypt, through S3 and
	// DynamoDB only.
	prodKey := o.account(o.prod)
	if kp := keyStatement(t, prodKey); kp == nil {
		t.Errorf("production's key policy does not share decryption with the readers")
	} else if via := kp.Condition["StringEquals"]["kms:ViaService"]; len(via) != 2 || !strings.HasPrefix(via[0], "dynamodb.") || !strings.HasPrefix(via[1], "s3.") {
		t.Errorf("production's key is shared beyond S3 and DynamoDB: %v", kp.Condition)
	}
	// Replacing the exported table recreates it with its export policy.
	apply(t, o.p, "production", silo.OpReplace, mkRes(t, silo.TypeTable, "intel", map[string]any{}))
	if _, err := ddb.GetResourcePolicy(ctx, &dynamodb.GetResourcePolicyInput{ResourceArn: aws.String(tableARN)}); err != nil {
		t.Errorf("the replaced exported table lost its resource policy: %v", err)
	}
	// Twin: the unexported table has no policy; deleting the export removes
	// it.
	if _, err := ddb.GetResourcePolicy(ctx, &dynamodb.GetResourcePolicyInput{ResourceArn: aws.String("arn:aws:dynamodb:us-east-1:" + o.prod + ":table/silo.internal")}); err == nil {
		t.Errorf("an unexported table has a resource policy")
	}
	if err := o.p.Apply(ctx, "production", silo.Change{Op: silo.OpDelete, Type: silo.TypeExport, Name: "threat-intel"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ddb.GetResourcePolicy(ctx, &dynamodb.GetResourcePolicyInput{ResourceArn: aws.String(tableARN)}); err == nil {
		t.Errorf("the resource policy outlived its export")
	}
	if err := o.p.Apply(ctx, "production", silo.Change{Op: silo.OpDelete, Type: silo.TypeExport, Name: "feeds"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(bucketOf(o.prod, "feeds"))}); err == nil {
		t.Errorf("the bucket policy outlived its export")
	}
	if kp := keyStatement(t, prodKey); kp != nil {
		t.Errorf("production's key is still shared with no export left: %+v", kp)
	}
}

// keyStatement returns the statement of the account's data key policy that
// shares decryption with the readers of exports, nil if none.
func keyStatement(t *testing.T, a account) *siloaws.Statement {
	t.Helper()
	out, err := a.kms.GetKeyPolicy(context.Background(), &kms.GetKeyPolicyInput{KeyId: aws.String(a.dataKey(t)), PolicyName: aws.String("default")})
	ok(t, "get the key policy", err)
	for _, st := range decodePolicy(t, aws.ToString(out.Policy)).Statement {
		if st.Sid == "SiloExportDecrypt" {
			return &st
		}
	}
	return nil
}

func TestFunctionWithAnUndeployedExportIsRefused(t *testing.T) {
	ctx := context.Background()
	o := newTrustOrg(t)
	spec := silo.FunctionSpec{Artifact: strings.Repeat("c", 64), Exports: []string{"no-such-export"}}
	r := mkRes(t, silo.TypeFunction, "reader", spec)
	err := o.p.Apply(ctx, "acme", silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r})
	if silo.ErrorCode(err) != silo.CodeNotFound || !strings.Contains(silo.UserMessage(err), "no-such-export") {
		t.Fatalf("Apply = %v, want CodeNotFound naming the export", err)
	}
	if _, err := o.iam(o.acme).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(siloaws.FunctionRole("reader"))}); err == nil {
		t.Errorf("a refused function left a role behind")
	}
	// Twin: the same function reading a deployed export is applied.
	spec.Exports = []string{"threat-intel"}
	apply(t, o.p, "acme", silo.OpCreate, mkRes(t, silo.TypeFunction, "reader", spec))
	if _, err := o.iam(o.acme).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(siloaws.FunctionRole("reader"))}); err != nil {
		t.Errorf("the role of a function reading a deployed export: %v", err)
	}
}
