package aws_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/provider/providertest"
)

// clients reaches one emulated AWS account directly, as an operator would.
type clients struct {
	org *organizations.Client
	ddb *dynamodb.Client
	s3  *s3.Client
	ssm *ssm.Client
	sm  *secretsmanager.Client
	kms *kms.Client
}

func accountClients(org *awstest.Org, awsID string) clients {
	cfg := org.Config()
	ep := aws.String(org.Endpoint(awsID))
	return clients{
		org: organizations.NewFromConfig(cfg, func(o *organizations.Options) { o.BaseEndpoint = aws.String(org.Endpoint("")) }),
		ddb: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = ep }),
		s3:  s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = ep; o.UsePathStyle = true }),
		ssm: ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = ep }),
		sm:  secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = ep }),
		kms: kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = ep }),
	}
}

func awsIDOf(t *testing.T, p *siloaws.Provider, id silo.AccountID) string {
	t.Helper()
	a, err := p.AWSAccountID(context.Background(), id)
	if err != nil {
		t.Fatalf("AWSAccountID(%s): %v", id, err)
	}
	return a
}

// ous returns the organization's OUs under the root: name → ID.
func ous(t *testing.T, c clients) map[string]string {
	t.Helper()
	ctx := context.Background()
	roots, err := c.org.ListRoots(ctx, &organizations.ListRootsInput{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.org.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{ParentId: roots.Roots[0].Id})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, u := range out.OrganizationalUnits {
		if _, dup := m[*u.Name]; dup {
			t.Errorf("OU %s exists twice", *u.Name)
		}
		m[*u.Name] = *u.Id
	}
	return m
}

func TestCreateAccountPlacesEachKindInItsOU(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t)
	accounts := []struct {
		id   silo.AccountID
		kind silo.Kind
		ou   string
	}{
		{"acme", silo.KindTenant, "tenants"},
		{"globex", silo.KindTenant, "tenants"},
		{silo.ProductionID, silo.KindProduction, "production"},
		{"dev-alice", silo.KindDeveloper, "developers"},
		{"e2e-1", silo.KindEnvironment, "environments"},
	}
	for _, a := range accounts {
		if err := p.CreateAccount(ctx, a.id, a.kind); err != nil {
			t.Fatalf("CreateAccount(%s): %v", a.id, err)
		}
	}
	c := accountClients(org, "")
	units := ous(t, c)
	if diff := cmp.Diff([]string{"developers", "environments", "production", "tenants"}, keys(units)); diff != "" {
		t.Errorf("OUs (-want +got):\n%s", diff)
	}
	orgInfo, err := c.org.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]silo.AccountID{}
	for _, a := range accounts {
		awsID := awsIDOf(t, p, a.id)
		if got, want := org.Parent(awsID), units[a.ou]; got != want || want == "" {
			t.Errorf("account %s (%s) is in parent %q, want OU %s (%q)", a.id, awsID, got, a.ou, want)
		}
		if awsID == *orgInfo.Organization.MasterAccountId {
			t.Errorf("account %s is the management account", a.id)
		}
		if other, dup := seen[awsID]; dup {
			t.Errorf("accounts %s and %s share AWS account %s", a.id, other, awsID)
		}
		seen[awsID] = a.id
	}
	// Creation is asynchronous: every account was waited for.
	calls := org.OrgCalls()
	if calls["CreateAccount"] != len(accounts) || calls["DescribeCreateAccountStatus"] < len(accounts) {
		t.Errorf("Organizations calls %v: want %d CreateAccount and at least as many DescribeCreateAccountStatus", calls, len(accounts))
	}
	// Creating again creates nothing in AWS.
	for _, a := range accounts {
		if err := p.CreateAccount(ctx, a.id, a.kind); err != nil {
			t.Fatalf("CreateAccount(%s) again: %v", a.id, err)
		}
	}
	if got := org.OrgCalls()["CreateAccount"]; got != len(accounts) {
		t.Errorf("CreateAccount calls after creating again = %d, want %d", got, len(accounts))
	}
	// A second provider (another server, or a restart) finds the same
	// accounts through Organizations alone.
	p2, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if got, want := awsIDOf(t, p2, a.id), awsIDOf(t, p, a.id); got != want {
			t.Errorf("second provider maps %s to %s, want %s", a.id, got, want)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// holdings lists what silo made in one AWS account.
type holdings struct {
	KeyState string
	Tables   []string
	Buckets  int
	Params   int // under /silo
	Secrets  int // under /silo-secret, and in Secrets Manager
	Closed   bool
}

func holdingsOf(t *testing.T, org *awstest.Org, awsID, keyARN string) holdings {
	t.Helper()
	ctx := context.Background()
	c := accountClients(org, awsID)
	var h holdings
	k, err := c.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
	if err != nil {
		t.Fatalf("DescribeKey: %v", err)
	}
	h.KeyState = string(k.KeyMetadata.KeyState)
	tables, err := c.ddb.ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatal(err)
	}
	h.Tables = append([]string{}, tables.TableNames...)
	buckets, err := c.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	h.Buckets = len(buckets.Buckets)
	pages := ssm.NewGetParametersByPathPaginator(c.ssm, &ssm.GetParametersByPathInput{Path: aws.String("/silo"), Recursive: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h.Params += len(page.Parameters)
	}
	// Secrets: SecureString parameters, and any Secrets Manager secret.
	secrets := ssm.NewGetParametersByPathPaginator(c.ssm, &ssm.GetParametersByPathInput{Path: aws.String("/silo-secret"), Recursive: aws.Bool(true)})
	for secrets.HasMorePages() {
		page, err := secrets.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h.Secrets += len(page.Parameters)
	}
	legacy, err := c.sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	if err != nil {
		t.Fatal(err)
	}
	h.Secrets += len(legacy.SecretList)
	h.Closed = org.Closed(awsID)
	return h
}

func TestDeleteAccountShredsDeletesAndCloses(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t)
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		providertest.ApplyAll(t, p, id, providertest.Stack(t))
		d, err := p.Data(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Put(ctx, "findings", "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := d.PutBlob(ctx, "uploads", "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := p.PutSecret(ctx, id, "api_token", []byte("s")); err != nil {
			t.Fatal(err)
		}
	}
	key := func(id silo.AccountID) string {
		k, err := p.KeyInfo(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return k.WrappedBy
	}
	acme, globex := awsIDOf(t, p, "acme"), awsIDOf(t, p, "globex")
	acmeKey, globexKey := key("acme"), key("globex")
	full := holdings{
		KeyState: string(kmstypes.KeyStateEnabled),
		Tables:   []string{"silo.findings", "silo.sessions"},
		Buckets:  1,
		Params:   13, // 11 records + 2 config values
		Secrets:  1,
	}
	// Control: before the delete, acme holds everything.
	if diff := cmp.Diff(full, holdingsOf(t, org, acme, acmeKey)); diff != "" {
		t.Errorf("acme before delete (-want +got):\n%s", diff)
	}
	if _, err := p.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	gone := holdings{KeyState: string(kmstypes.KeyStatePendingDeletion), Tables: []string{}, Closed: true}
	if diff := cmp.Diff(gone, holdingsOf(t, org, acme, acmeKey)); diff != "" {
		t.Errorf("acme after delete (-want +got):\n%s", diff)
	}
	// Twin: globex is untouched.
	if diff := cmp.Diff(full, holdingsOf(t, org, globex, globexKey)); diff != "" {
		t.Errorf("globex after acme's delete (-want +got):\n%s", diff)
	}
	// A new acme is a new AWS account.
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	if again := awsIDOf(t, p, "acme"); again == acme {
		t.Errorf("re-created acme reuses closed AWS account %s", acme)
	}
}

func TestTableKeysAreUTF8InByteOrder(t *testing.T) {
	ctx := context.Background()
	p, _ := newAWS(t)
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t)[:1])
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	err = d.Put(ctx, "findings", "a\xffb", []byte("v"))
	if silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("Put of a non-UTF-8 key: got %v, want CodeInvalid", err)
	}
	// Twin: UTF-8 keys are stored and scanned in byte order.
	for _, k := range []string{"é", "z", "a", "\u2603"} {
		if err := d.Put(ctx, "findings", k, []byte(k)); err != nil {
			t.Fatalf("Put %q: %v", k, err)
		}
	}
	kvs, err := d.Scan(ctx, "findings", "", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range kvs {
		got = append(got, kv.Key)
	}
	if diff := cmp.Diff([]string{"a", "z", "é", "\u2603"}, got); diff != "" {
		t.Errorf("Scan order (-want +got):\n%s", diff)
	}
}

func TestResourcesLeaveOutWhatWasDeletedOutsideSilo(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t)
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	stack := providertest.Stack(t)
	providertest.ApplyAll(t, p, "acme", stack)
	resourceKeys := func() []string {
		rs, err := p.Resources(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.Key())
		}
		return out
	}
	var all []string
	for _, r := range stack {
		all = append(all, r.Key())
	}
	sortStrings(all)
	// Control: everything applied is read back.
	if diff := cmp.Diff(all, resourceKeys()); diff != "" {
		t.Fatalf("Resources (-want +got):\n%s", diff)
	}
	c := accountClients(org, awsIDOf(t, p, "acme"))
	if _, err := c.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("silo.findings")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/silo/config/plan")}); err != nil {
		t.Fatal(err)
	}
	buckets, err := c.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(buckets.Buckets) != 1 {
		t.Fatalf("ListBuckets = %v, %v; want one bucket", buckets, err)
	}
	if _, err := c.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: buckets.Buckets[0].Name}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, k := range all {
		if k != "table/findings" && k != "config/plan" && k != "bucket/uploads" {
			want = append(want, k)
		}
	}
	if diff := cmp.Diff(want, resourceKeys()); diff != "" {
		t.Errorf("Resources after deletes outside silo (-want +got):\n%s", diff)
	}
	// Applying again heals it.
	providertest.ApplyAll(t, p, "acme", stack)
	if diff := cmp.Diff(all, resourceKeys()); diff != "" {
		t.Errorf("Resources after apply (-want +got):\n%s", diff)
	}
}

func TestAWSErrorsNameAccountAndStepOnly(t *testing.T) {
	ctx := context.Background()
	dead := "http://127.0.0.1:1"
	p, org := newAWS(t, func(c *siloaws.Config) {
		c.AWS.RetryMaxAttempts = 1
		ep := c.Endpoint
		c.Endpoint = func(a string) string {
			if a == "" {
				return ep(a)
			}
			return dead // every member account unreachable
		}
	})
	err := p.CreateAccount(ctx, "acme", silo.KindTenant)
	if err == nil {
		t.Fatal("CreateAccount with unreachable member accounts succeeded")
	}
	msg := silo.UserMessage(err)
	for _, want := range []string{"acme", "data key"} {
		if !strings.Contains(msg, want) {
			t.Errorf("user message %q does not name %q", msg, want)
		}
	}
	for _, leak := range []string{"127.0.0.1", "dial", "refused", "operation error", "KMS:", "https"} {
		if strings.Contains(msg, leak) {
			t.Errorf("user message %q leaks %q", msg, leak)
		}
	}
	var se *silo.Error
	if !errors.As(err, &se) || se.Err == nil || !strings.Contains(se.Err.Error(), "refused") {
		t.Errorf("the AWS cause is not kept for the log: %#v", err)
	}
	// Twin: the same organization with reachable members works.
	p2, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Errorf("CreateAccount with reachable members: %v", err)
	}
}

func TestBlobKeysFollowTheLocalRules(t *testing.T) {
	ctx := context.Background()
	p, _ := newAWS(t)
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t)[2:3])
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	// S3 would store these under the very key; silo refuses them on AWS as
	// it does locally, so an app behaves the same on both.
	for _, k := range []string{"..", "../x", "a/./b", "/etc/passwd", "a//b", "x.", `a\b`, ".silo-tmp-x"} {
		if err := d.PutBlob(ctx, "uploads", k, []byte("v")); silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("PutBlob(%q): got %v, want CodeInvalid", k, err)
		}
	}
	// Twin: ordinary keys, look-alikes included, are stored.
	for _, k := range []string{"a/b", "x.y", "%2e%2e", "a\uff0fb"} {
		if err := d.PutBlob(ctx, "uploads", k, []byte("v")); err != nil {
			t.Errorf("PutBlob(%q): %v", k, err)
		}
	}
}

func TestTwoAccountsWithOneNameAreRefused(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t)
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
	}
	// Someone creates another account named like silo's acme.
	c := accountClients(org, "")
	out, err := c.org.CreateAccount(ctx, &organizations.CreateAccountInput{AccountName: aws.String("silo-acme"), Email: aws.String("other@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.org.DescribeCreateAccountStatus(ctx, &organizations.DescribeCreateAccountStatusInput{CreateAccountRequestId: out.CreateAccountStatus.Id}); err != nil {
		t.Fatal(err)
	}
	restarted, _ := newProviderOn(t, org)
	_, err = restarted.Data(ctx, "acme")
	if silo.ErrorCode(err) != silo.CodeInternal || !strings.Contains(silo.UserMessage(err), "several active AWS accounts") {
		t.Errorf("Data of an ambiguous account: got %v, want CodeInternal naming the ambiguity", err)
	}
	// Twin: the other account is reached.
	if _, err := restarted.Data(ctx, "globex"); err != nil {
		t.Errorf("Data(globex): %v", err)
	}
}

func TestConcurrentCreatesMakeOneAccountEach(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t)
	ids := []silo.AccountID{"acme", "acme", "acme", "globex", "initech", "initech"}
	errs := make(chan error, len(ids))
	for _, id := range ids {
		go func() { errs <- p.CreateAccount(ctx, id, silo.KindTenant) }()
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Errorf("CreateAccount: %v", err)
		}
	}
	if n := org.OrgCalls()["CreateAccount"]; n != 3 {
		t.Errorf("Organizations.CreateAccount called %d times for 3 accounts", n)
	}
	units := ous(t, accountClients(org, ""))
	if diff := cmp.Diff([]string{"tenants"}, keys(units)); diff != "" {
		t.Errorf("OUs (-want +got):\n%s", diff)
	}
	got, err := p.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]silo.AccountID{"acme", "globex", "initech"}, got); diff != "" {
		t.Errorf("Accounts (-want +got):\n%s", diff)
	}
}

func TestResourcesShowAConfigChangedOutsideSilo(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t)
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	stack := providertest.Stack(t)
	providertest.ApplyAll(t, p, "acme", stack)
	applied := map[string]silo.Resource{}
	for _, r := range stack {
		applied[r.Key()] = r
	}
	held := func() map[string]silo.Resource {
		rs, err := p.Resources(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]silo.Resource{}
		for _, r := range rs {
			out[r.Key()] = r
		}
		return out
	}
	// Control: untouched, every resource comes back as applied.
	if diff := cmp.Diff(applied, held(), cmpopts.EquateComparable()); diff != "" {
		t.Fatalf("Resources (-applied +held):\n%s", diff)
	}
	c := accountClients(org, awsIDOf(t, p, "acme"))
	_, err := c.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/silo/config/plan"), Value: aws.String(`"enterprise"`), Type: "String", Overwrite: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	got := held()["config/plan"]
	want, err := silo.NewResource(silo.TypeConfig, "plan", map[string]any{"value": "enterprise"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable()); diff != "" {
		t.Errorf("config/plan after a change outside silo (-want +got):\n%s", diff)
	}
	if got.Hash == applied["config/plan"].Hash {
		t.Errorf("the changed config keeps its applied hash; the engine would not see the drift")
	}
	if other := held()["config/log_level"]; other.Hash != applied["config/log_level"].Hash {
		t.Errorf("an untouched config changed its hash: %+v", other)
	}
}

func TestResourcesShowAWeakenedBucket(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t)
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	stack := providertest.Stack(t)
	providertest.ApplyAll(t, p, "acme", stack)
	applied := stack[2]
	bucketHash := func() string {
		rs, err := p.Resources(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Key() == "bucket/uploads" {
				return r.Hash
			}
		}
		t.Fatalf("Resources lacks bucket/uploads: %v", rs)
		return ""
	}
	c := accountClients(org, awsIDOf(t, p, "acme"))
	buckets, err := c.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(buckets.Buckets) != 1 {
		t.Fatalf("ListBuckets = %v, %v; want one bucket", buckets, err)
	}
	b := buckets.Buckets[0].Name
	weaken := map[string]func() error{
		"public access unblocked": func() error {
			_, err := c.s3.DeletePublicAccessBlock(ctx, &s3.DeletePublicAccessBlockInput{Bucket: b})
			return err
		},
		"encryption not under the account's key": func() error {
			_, err := c.s3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: b, ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
				Rules: []s3types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256}}},
			}})
			return err
		},
		"encrypted under another KMS key": func() error {
			k, err := c.kms.CreateKey(ctx, &kms.CreateKeyInput{})
			if err != nil {
				return err
			}
			_, err = c.s3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: b, ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
				Rules: []s3types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAwsKms, KMSMasterKeyID: k.KeyMetadata.Arn}}},
			}})
			return err
		},
		"default encryption removed": func() error {
			_, err := c.s3.DeleteBucketEncryption(ctx, &s3.DeleteBucketEncryptionInput{Bucket: b})
			return err
		},
	}
	for name, fn := range weaken {
		t.Run(name, func(t *testing.T) {
			// Control: as applied, the bucket has its applied hash.
			if got := bucketHash(); got != applied.Hash {
				t.Fatalf("bucket hash before = %q, want the applied %q", got, applied.Hash)
			}
			if err := fn(); err != nil {
				t.Fatal(err)
			}
			if got := bucketHash(); got == applied.Hash {
				t.Errorf("the weakened bucket still shows its applied hash; the engine would not see the drift")
			}
			// Applying again restores the settings.
			providertest.ApplyAll(t, p, "acme", stack[2:3])
			if got := bucketHash(); got != applied.Hash {
				t.Errorf("bucket hash after re-apply = %q, want %q", got, applied.Hash)
			}
		})
	}
}
