package aws_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	iameval "github.com/silo-run/silo/isolation/iam"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

func proof(t *testing.T, o trustOrg) iameval.Result {
	t.Helper()
	snap, err := o.p.IAMSnapshot(context.Background())
	if err != nil {
		t.Fatalf("IAMSnapshot: %v", err)
	}
	return iameval.Verify(snap)
}

// lines returns each counterexample and unverifiable note of r, one a line.
func lines(r iameval.Result) []string {
	var all []string
	for _, f := range r.Findings {
		all = append(all, f.String())
	}
	return append(all, r.Unverifiable...)
}

// account holds the clients of one emulated member account, as an
// administrator of that account would use them.
type account struct {
	id  string
	iam *iam.Client
	s3  *s3.Client
	ddb *dynamodb.Client
	kms *kms.Client
}

func (o trustOrg) account(awsID string) account {
	ep := aws.String(o.org.Endpoint(awsID))
	cfg := o.org.Config()
	return account{
		id:  awsID,
		iam: iam.NewFromConfig(cfg, func(op *iam.Options) { op.BaseEndpoint = ep }),
		s3:  s3.NewFromConfig(cfg, func(op *s3.Options) { op.BaseEndpoint = ep; op.UsePathStyle = true }),
		ddb: dynamodb.NewFromConfig(cfg, func(op *dynamodb.Options) { op.BaseEndpoint = ep }),
		kms: kms.NewFromConfig(cfg, func(op *kms.Options) { op.BaseEndpoint = ep }),
	}
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (a account) tableARN(name string) string {
	return "arn:aws:dynamodb:us-east-1:" + a.id + ":table/silo." + name
}

func (a account) bucket(name string) string { return bucketOf(a.id, name) }

func (a account) putRole(t *testing.T, name, trust, policy string) {
	t.Helper()
	_, err := a.iam.CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	ok(t, "create role "+name, err)
	if policy != "" {
		a.putRolePolicy(t, name, "extra", policy)
	}
}

func (a account) deleteRole(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	a.iam.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("extra")})
	_, err := a.iam.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)})
	ok(t, "delete role "+name, err)
}

func (a account) putRolePolicy(t *testing.T, role, name, policy string) {
	t.Helper()
	_, err := a.iam.PutRolePolicy(context.Background(), &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name), PolicyDocument: aws.String(policy)})
	ok(t, "put policy "+name+" on "+role, err)
}

func (a account) deleteRolePolicy(t *testing.T, role, name string) {
	t.Helper()
	_, err := a.iam.DeleteRolePolicy(context.Background(), &iam.DeleteRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
	ok(t, "delete policy "+name+" of "+role, err)
}

func (a account) trust(t *testing.T, role, doc string) {
	t.Helper()
	_, err := a.iam.UpdateAssumeRolePolicy(context.Background(), &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(role), PolicyDocument: aws.String(doc)})
	ok(t, "update the trust of "+role, err)
}

func (a account) bucketPolicy(t *testing.T, bucket, doc string) {
	t.Helper()
	ctx := context.Background()
	if doc == "" {
		_, err := a.s3.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String(bucket)})
		ok(t, "delete the policy of "+bucket, err)
		return
	}
	_, err := a.s3.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(doc)})
	ok(t, "put the policy of "+bucket, err)
}

func (a account) getBucketPolicy(t *testing.T, bucket string) string {
	t.Helper()
	out, err := a.s3.GetBucketPolicy(context.Background(), &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)})
	ok(t, "get the policy of "+bucket, err)
	return aws.ToString(out.Policy)
}

func (a account) tablePolicy(t *testing.T, table, doc string) {
	t.Helper()
	ctx := context.Background()
	if doc == "" {
		_, err := a.ddb.DeleteResourcePolicy(ctx, &dynamodb.DeleteResourcePolicyInput{ResourceArn: aws.String(a.tableARN(table))})
		ok(t, "delete the policy of table "+table, err)
		return
	}
	_, err := a.ddb.PutResourcePolicy(ctx, &dynamodb.PutResourcePolicyInput{ResourceArn: aws.String(a.tableARN(table)), Policy: aws.String(doc)})
	ok(t, "put the policy of table "+table, err)
}

func (a account) getTablePolicy(t *testing.T, table string) string {
	t.Helper()
	out, err := a.ddb.GetResourcePolicy(context.Background(), &dynamodb.GetResourcePolicyInput{ResourceArn: aws.String(a.tableARN(table))})
	ok(t, "get the policy of table "+table, err)
	return aws.ToString(out.Policy)
}

// dataKey returns the key ID of the account's data key.
func (a account) dataKey(t *testing.T) string {
	t.Helper()
	out, err := a.kms.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String("alias/silo-data")})
	ok(t, "describe the data key", err)
	return aws.ToString(out.KeyMetadata.KeyId)
}

func (a account) keyPolicy(t *testing.T, doc string) string {
	t.Helper()
	ctx := context.Background()
	key := aws.String(a.dataKey(t))
	old, err := a.kms.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: key, PolicyName: aws.String("default")})
	ok(t, "get the key policy", err)
	_, err = a.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: key, PolicyName: aws.String("default"), Policy: aws.String(doc)})
	ok(t, "put the key policy", err)
	return aws.ToString(old.Policy)
}

func allow(principal, actions, resource string) string {
	p := ""
	if principal != "" {
		p = `"Principal":` + principal + `,`
	}
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` + p + `"Action":` + actions + `,"Resource":"` + resource + `"}]}`
}

func trustAWS(who string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + who + `"},"Action":"sts:AssumeRole"}]}`
}

func TestMutationsAreCaught(t *testing.T) {
	o := newTrustOrg(t, "globex")
	acme, prod := o.account(o.acme), o.account(o.prod)
	globex := o.account(awsIDOf(t, o.p, "globex"))
	for _, id := range []silo.AccountID{"acme", "globex"} {
		for _, name := range []string{"api_token", "other_token"} {
			ok(t, "put secret "+name, o.p.PutSecret(context.Background(), id, name, []byte("s3cr3t")))
		}
	}
	clean := proof(t, o)
	if !clean.Proved() {
		t.Fatalf("the untouched organization is not proved:\n%s", strings.Join(lines(clean), "\n"))
	}
	if wired := isolation.ProveIAM(context.Background(), o.p, isolation.Result{Status: isolation.StatusProved}); !wired.Proved() {
		t.Fatalf("isolation.ProveIAM does not prove the untouched organization: %+v", wired)
	}
	if clean.Checked == 0 || clean.Resources == 0 {
		t.Fatalf("the proof checked nothing: %+v", clean)
	}
	ingest := siloaws.FunctionRole("ingest")
	list := siloaws.FunctionRole("List")
	var restore string // state a mutation saves for its undo

	for _, tt := range []struct {
		name     string
		do, undo func(t *testing.T)
		want     []string // every part must appear in one line of the report
	}{
		{"Principal * bucket policy",
			func(t *testing.T) {
				acme.bucketPolicy(t, acme.bucket("uploads"), allow(`"*"`, `"s3:GetObject"`, "arn:aws:s3:::"+acme.bucket("uploads")+"/*"))
			},
			func(t *testing.T) { acme.bucketPolicy(t, acme.bucket("uploads"), "") },
			[]string{"I1", "any principal outside the organization", "s3:GetObject", acme.bucket("uploads")}},
		{"bucket policy naming another tenant",
			func(t *testing.T) {
				acme.bucketPolicy(t, acme.bucket("uploads"), allow(`{"AWS":"`+globex.id+`"}`, `"s3:*"`, "arn:aws:s3:::"+acme.bucket("uploads")+"/*"))
			},
			func(t *testing.T) { acme.bucketPolicy(t, acme.bucket("uploads"), "") },
			[]string{"I1", "any principal of account " + globex.id, "s3:GetObject", acme.bucket("uploads")}},
		{"trust policy naming another tenant's account",
			func(t *testing.T) {
				acme.putRole(t, "support", trustAWS(globex.id), allow("", `"dynamodb:GetItem"`, acme.tableARN("findings")))
			},
			func(t *testing.T) { acme.deleteRole(t, "support") },
			[]string{"I1", "any principal of account " + globex.id, "sts:AssumeRole", acme.id + ":role/support"}},
		{"data role trusted by another tenant",
			func(t *testing.T) { acme.trust(t, "silo-data", trustAWS("arn:aws:iam::"+globex.id+":root")) },
			func(t *testing.T) { acme.trust(t, "silo-data", trustAWS(dataPrincipal)) },
			[]string{"I1", "any principal of account " + globex.id, "through arn:aws:iam::" + acme.id + ":role/silo-data", "dynamodb:GetItem", acme.tableARN("findings")}},
		{"role in another tenant trusting a function role",
			func(t *testing.T) {
				globex.putRole(t, "bridge", trustAWS(siloaws.FunctionRoleARN(acme.id, "ingest")), allow("", `"dynamodb:*"`, globex.tableARN("findings")))
			},
			func(t *testing.T) { globex.deleteRole(t, "bridge") },
			[]string{"I1", "any principal of account " + acme.id, "sts:AssumeRole", globex.id + ":role/bridge"}},
		{"Lambda trust without the source account",
			func(t *testing.T) {
				acme.trust(t, ingest, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
			},
			func(t *testing.T) {
				acme.trust(t, ingest, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"`+acme.id+`"}}}]}`)
			},
			[]string{"I1", "a Lambda function of account " + globex.id, "sts:AssumeRole", acme.id + ":role/silo/" + ingest}},
		{"role trusted by a service for any account",
			func(t *testing.T) {
				acme.putRole(t, "pipeline", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"states.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, allow("", `"dynamodb:GetItem"`, acme.tableARN("findings")))
			},
			func(t *testing.T) { acme.deleteRole(t, "pipeline") },
			[]string{"I1", "the service states.amazonaws.com acting for account " + globex.id, "sts:AssumeRole", acme.id + ":role/pipeline"}},
		{"dynamodb:* on * for the control plane",
			func(t *testing.T) {
				acme.putRolePolicy(t, "silo-deployer", "extra", allow("", `"dynamodb:*"`, "*"))
			},
			func(t *testing.T) { acme.deleteRolePolicy(t, "silo-deployer", "extra") },
			[]string{"I3", "the control plane " + principal, "dynamodb:GetItem", acme.tableARN("findings")}},
		{"control plane reads objects",
			func(t *testing.T) {
				acme.putRolePolicy(t, "silo-deployer", "extra", allow("", `"s3:GetObject"`, "arn:aws:s3:::"+acme.bucket("uploads")+"/*"))
			},
			func(t *testing.T) { acme.deleteRolePolicy(t, "silo-deployer", "extra") },
			[]string{"I3", "the control plane", "s3:GetObject", acme.bucket("uploads")}},
		{"control plane reads secret values",
			func(t *testing.T) {
				acme.putRolePolicy(t, "silo-deployer", "extra", allow("", `["ssm:GetParameter"]`, "*"))
			},
			func(t *testing.T) { acme.deleteRolePolicy(t, "silo-deployer", "extra") },
			[]string{"I3", "the control plane", "ssm:GetParameter", ":parameter/silo-secret/api_token"}},
		{"control plane reads the secrets' path",
			func(t *testing.T) {
				acme.putRolePolicy(t, "silo-deployer", "extra", allow("", `"ssm:GetParametersByPath"`, "arn:aws:ssm:us-east-1:"+acme.id+":parameter/silo-secret"))
			},
			func(t *testing.T) { acme.deleteRolePolicy(t, "silo-deployer", "extra") },
			[]string{"I3", "the control plane", "ssm:GetParametersByPath", acme.id + ":parameter/silo-secret"}},
		{"control plane decrypts with any key",
			func(t *testing.T) {
				acme.putRolePolicy(t, "silo-deployer", "extra", allow("", `"kms:Decrypt"`, "*"))
			},
			func(t *testing.T) { acme.deleteRolePolicy(t, "silo-deployer", "extra") },
			[]string{"I3", "the control plane", "kms:Decrypt", ":" + acme.id + ":key/"}},
		{"wildcard KMS key policy",
			func(t *testing.T) { restore = acme.keyPolicy(t, allow(`"*"`, `"kms:*"`, "*")) },
			func(t *testing.T) { acme.keyPolicy(t, restore) },
			[]string{"I1", "any principal outside the organization", "kms:Decrypt", ":" + acme.id + ":key/"}},
		{"key policy granting another tenant",
			func(t *testing.T) {
				restore = acme.keyPolicy(t, allow(`{"AWS":"arn:aws:iam::`+globex.id+`:root"}`, `"kms:Decrypt"`, "*"))
			},
			func(t *testing.T) { acme.keyPolicy(t, restore) },
			[]string{"I1", "any principal of account " + globex.id, "kms:Decrypt", ":" + acme.id + ":key/"}},
		{"table policy naming another tenant",
			func(t *testing.T) {
				acme.tablePolicy(t, "findings", allow(`{"AWS":"`+globex.id+`"}`, `"dynamodb:*"`, acme.tableARN("findings")))
			},
			func(t *testing.T) { acme.tablePolicy(t, "findings", "") },
			[]string{"I1", "any principal of account " + globex.id, "dynamodb:GetItem", acme.tableARN("findings")}},
		{"production role trusted by a tenant",
			func(t *testing.T) { prod.putRole(t, "ops", trustAWS(acme.id), "") },
			func(t *testing.T) { prod.deleteRole(t, "ops") },
			[]string{"I1", "any principal of account " + acme.id, "sts:AssumeRole", prod.id + ":role/ops"}},
		{"tenant role assumable from production",
			func(t *testing.T) { acme.putRole(t, "from-prod", trustAWS("arn:aws:iam::"+prod.id+":root"), "") },
			func(t *testing.T) { acme.deleteRole(t, "from-prod") },
			[]string{"I2", "(production)", "sts:AssumeRole", acme.id + ":role/from-prod"}},
		{"s3:* in an export policy",
			func(t *testing.T) {
				restore = prod.getBucketPolicy(t, prod.bucket("feeds"))
				prod.bucketPolicy(t, prod.bucket("feeds"), strings.ReplaceAll(restore, `"s3:GetObject"`, `"s3:*"`))
			},
			func(t *testing.T) { prod.bucketPolicy(t, prod.bucket("feeds"), restore) },
			[]string{"I1", "any principal of account " + acme.id, "s3:PutObject", prod.bucket("feeds")}},
		{"production key shared without kms:ViaService",
			func(t *testing.T) {
				out, err := prod.kms.GetKeyPolicy(context.Background(), &kms.GetKeyPolicyInput{KeyId: aws.String(prod.dataKey(t)), PolicyName: aws.String("default")})
				ok(t, "get the key policy", err)
				restore = aws.ToString(out.Policy)
				doc := decodePolicy(t, restore)
				found := false
				for i := range doc.Statement {
					if doc.Statement[i].Sid == "SiloExportDecrypt" {
						delete(doc.Statement[i].Condition["StringEquals"], "kms:ViaService")
						found = true
					}
				}
				if !found {
					t.Fatalf("production's key policy does not share decryption: %s", restore)
				}
				b, _ := json.Marshal(doc)
				prod.keyPolicy(t, string(b))
			},
			func(t *testing.T) { prod.keyPolicy(t, restore) },
			[]string{"I1", "any principal of account " + acme.id, "kms:Decrypt", ":" + prod.id + ":key/"}},
		{"export policy without the org-path condition",
			func(t *testing.T) {
				restore = prod.getTablePolicy(t, "intel")
				prod.tablePolicy(t, "intel", allow(`{"AWS":"*"}`, `["dynamodb:GetItem","dynamodb:Query"]`, prod.tableARN("intel")))
			},
			func(t *testing.T) { prod.tablePolicy(t, "intel", restore) },
			[]string{"I1", "any principal outside the organization", "dynamodb:GetItem", prod.tableARN("intel")}},
		{"export policy open to every org path",
			func(t *testing.T) {
				restore = prod.getTablePolicy(t, "intel")
				prod.tablePolicy(t, "intel", strings.ReplaceAll(restore, `"aws:PrincipalOrgPaths":[`, `"aws:PrincipalOrgPaths":["*",`))
			},
			func(t *testing.T) { prod.tablePolicy(t, "intel", restore) },
			[]string{"I3", "any other principal of the management account", "dynamodb:GetItem", prod.tableARN("intel")}},
		{"unexported production table shared",
			func(t *testing.T) {
				prod.tablePolicy(t, "internal", strings.ReplaceAll(prod.getTablePolicy(t, "intel"), "silo.intel", "silo.internal"))
			},
			func(t *testing.T) { prod.tablePolicy(t, "internal", "") },
			[]string{"I1", "any principal of account " + acme.id, "dynamodb:GetItem", prod.tableARN("internal"), "unexported"}},
		{"execution role granted another function's secret",
			func(t *testing.T) {
				acme.putRolePolicy(t, list, "extra", allow("", `"ssm:GetParameter"`, "arn:aws:ssm:us-east-1:"+acme.id+":parameter/silo-secret/api_token"))
			},
			func(t *testing.T) { acme.deleteRolePolicy(t, list, "extra") },
			[]string{"I1", "a Lambda function of account " + acme.id, list, "ssm:GetParameter", ":parameter/silo-secret/api_token", "does not declare"}},
		{"execution role reading every secret of its account",
			func(t *testing.T) {
				acme.putRolePolicy(t, ingest, "extra", allow("", `"ssm:GetParameters"`, "arn:aws:ssm:us-east-1:"+acme.id+":parameter/silo-secret/*"))
			},
			func(t *testing.T) { acme.deleteRolePolicy(t, ingest, "extra") },
			[]string{"I1", ingest, "ssm:GetParameters", ":parameter/silo-secret/other_token", "does not declare"}},
		{"execution role writing a table it only reads",
			func(t *testing.T) {
				acme.putRolePolicy(t, ingest, "extra", allow("", `"dynamodb:PutItem"`, acme.tableARN("sessions")))
			},
			func(t *testing.T) { acme.deleteRolePolicy(t, ingest, "extra") },
			[]string{"I1", ingest, "dynamodb:PutItem", acme.tableARN("sessions"), "does not declare"}},
		{"execution role decrypting without kms:ViaService",
			func(t *testing.T) {
				acme.putRolePolicy(t, ingest, "extra", allow("", `"kms:Decrypt"`, "arn:aws:kms:us-east-1:"+acme.id+":key/"+acme.dataKey(t)))
			},
			func(t *testing.T) { acme.deleteRolePolicy(t, ingest, "extra") },
			[]string{"I1", ingest, "kms:Decrypt", ":" + acme.id + ":key/", "does not declare"}},
		{"execution role decrypting with any key",
			func(t *testing.T) { acme.putRolePolicy(t, ingest, "extra", allow("", `"kms:Decrypt"`, "*")) },
			func(t *testing.T) { acme.deleteRolePolicy(t, ingest, "extra") },
			[]string{"I1", ingest, "kms:Decrypt", ":" + acme.id + ":key/", "does not declare"}},
		{"sts:AssumeRole on *",
			func(t *testing.T) { acme.putRolePolicy(t, ingest, "extra", allow("", `"sts:AssumeRole"`, "*")) },
			func(t *testing.T) { acme.deleteRolePolicy(t, ingest, "extra") },
			[]string{"I1", ingest, "sts:AssumeRole", "does not declare"}},
		{"NotAction allow",
			func(t *testing.T) {
				acme.putRolePolicy(t, ingest, "extra", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}`)
			},
			func(t *testing.T) { acme.deleteRolePolicy(t, ingest, "extra") },
			[]string{"I1", ingest, "ssm:GetParameter", ":parameter/silo-secret/other_token", "does not declare"}},
		{"attached managed policy the emulator cannot return",
			func(t *testing.T) {
				out, err := acme.iam.CreatePolicy(context.Background(), &iam.CreatePolicyInput{PolicyName: aws.String("admin"), PolicyDocument: aws.String(allow("", `"*"`, "*"))})
				ok(t, "create policy", err)
				restore = aws.ToString(out.Policy.Arn)
				_, err = acme.iam.AttachRolePolicy(context.Background(), &iam.AttachRolePolicyInput{RoleName: aws.String(ingest), PolicyArn: out.Policy.Arn})
				ok(t, "attach policy", err)
			},
			func(t *testing.T) {
				_, err := acme.iam.DetachRolePolicy(context.Background(), &iam.DetachRolePolicyInput{RoleName: aws.String(ingest), PolicyArn: aws.String(restore)})
				ok(t, "detach policy", err)
			},
			// kumo v0.33.1 does not serve GetPolicyVersion: the policy is
			// unreadable, so the proof is unverifiable, never passing.
			[]string{"the managed policy", "attached to arn:aws:iam::" + acme.id + ":role/silo/" + ingest, "could not be read"}},
		{"unknown condition operator is unverifiable",
			func(t *testing.T) {
				acme.bucketPolicy(t, acme.bucket("uploads"), `{"Version":"2012-10-17","Statement":[{"Sid":"Office","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::`+acme.bucket("uploads")+`/*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}`)
			},
			func(t *testing.T) { acme.bucketPolicy(t, acme.bucket("uploads"), "") },
			[]string{"the bucket policy of " + acme.bucket("uploads"), "statement Office", "condition operator IpAddress", "outside the evaluated subset"}},
		{"NotPrincipal is unverifiable",
			func(t *testing.T) {
				acme.bucketPolicy(t, acme.bucket("uploads"), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"`+acme.id+`"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::`+acme.bucket("uploads")+`/*"}]}`)
			},
			func(t *testing.T) { acme.bucketPolicy(t, acme.bucket("uploads"), "") },
			[]string{"the bucket policy of " + acme.bucket("uploads"), "NotPrincipal", "outside the evaluated subset"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.do(t)
			r := proof(t, o)
			wired := isolation.ProveIAM(context.Background(), o.p, isolation.Result{Status: isolation.StatusProved})
			tt.undo(t)
			if wired.Proved() {
				t.Errorf("isolation.ProveIAM proves the mutated organization")
			}
			if r.Proved() {
				t.Fatalf("not caught: the mutated organization is proved")
			}
			all := lines(r)
			for _, l := range all {
				if containsAll(l, tt.want) {
					return
				}
			}
			t.Errorf("no counterexample names all of %q; the report:\n%s", tt.want, strings.Join(all, "\n"))
		})
	}
	// The twin: every mutation undone, the organization is proved again.
	if after := proof(t, o); !after.Proved() {
		t.Errorf("after undoing the mutations the organization is not proved:\n%s", strings.Join(lines(after), "\n"))
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestUnreadablePoliciesAreNeverProved: when the organization cannot be
// read, the proof is incomplete, with a message, and never proved; the
// twin is TestMutationsAreCaught's untouched organization.
func TestUnreadablePoliciesAreNeverProved(t *testing.T) {
	org := awstest.NewOrg(t)
	cfg := org.Config()
	cfg.RetryMaxAttempts = 1
	p, err := siloaws.New(siloaws.Config{AWS: cfg, Email: "aws@example.com", Endpoint: func(string) string { return "http://127.0.0.1:1" }})
	if err != nil {
		t.Fatal(err)
	}
	r := isolation.ProveIAM(context.Background(), p, isolation.Result{Status: isolation.StatusProved})
	if r.Status != isolation.StatusIncomplete || len(r.Incomplete) != 1 || !strings.Contains(r.Incomplete[0], "could not be read") {
		t.Fatalf("ProveIAM on an unreachable organization = %+v", r)
	}
	if strings.Contains(r.Incomplete[0], "127.0.0.1") {
		t.Errorf("the note carries the raw AWS error: %s", r.Incomplete[0])
	}
}

// TestOnePrincipalForBothPlanesIsI3: without Config.DataPrincipal the data
// role trusts the control plane's principal, which then may read data.
func TestOnePrincipalForBothPlanesIsI3(t *testing.T) {
	ctx := context.Background()
	p, _ := newAWS(t, func(c *siloaws.Config) { c.Principal = principal })
	ok(t, "create acme", p.CreateAccount(ctx, "acme", silo.KindTenant))
	apply(t, p, "acme", silo.OpCreate, mkRes(t, silo.TypeTable, "findings", map[string]any{}))
	snap, err := p.IAMSnapshot(ctx)
	ok(t, "snapshot", err)
	r := iameval.Verify(snap)
	for _, l := range lines(r) {
		if containsAll(l, []string{"I3", "the control plane " + principal, ":role/silo-data", "dynamodb:GetItem"}) {
			return
		}
	}
	t.Errorf("the control plane reading data through the data role is not reported:\n%s", strings.Join(lines(r), "\n"))
}
