package aws_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go/middleware"
	silo "github.com/silo-run/silo"
	iameval "github.com/silo-run/silo/isolation/iam"
	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// putParams records the PutParameter requests the provider sends, without
// their values: kumo v0.33.1 ignores KeyId and keeps no key with a
// parameter, so the request is where the data key can be seen.
type putParams struct {
	mu  sync.Mutex
	got []ssm.PutParameterInput
}

func (pp *putParams) install(c *siloaws.Config) {
	c.AWS.APIOptions = append(c.AWS.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("record-put-parameter", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if put, ok := in.Parameters.(*ssm.PutParameterInput); ok {
				cp := *put
				cp.Value = nil
				pp.mu.Lock()
				pp.got = append(pp.got, cp)
				pp.mu.Unlock()
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
	})
}

func (pp *putParams) named(name string) []ssm.PutParameterInput {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	var out []ssm.PutParameterInput
	for _, in := range pp.got {
		if aws.ToString(in.Name) == name {
			out = append(out, in)
		}
	}
	return out
}

// TestSecretIsSecureStringUnderTheDataKey: a secret is one SecureString
// parameter of the standard tier, under the account's data key, tagged,
// outside the /silo path the deployer reads; config stays a String.
func TestSecretIsSecureStringUnderTheDataKey(t *testing.T) {
	ctx := context.Background()
	var pp putParams
	p, org := newAWS(t, func(c *siloaws.Config) { c.Principal = principal }, pp.install)
	ok(t, "create acme", p.CreateAccount(ctx, "acme", silo.KindTenant))
	apply(t, p, "acme", silo.OpCreate, mkRes(t, silo.TypeSecret, "api_token", map[string]any{}))
	apply(t, p, "acme", silo.OpCreate, mkRes(t, silo.TypeConfig, "plan", map[string]any{"value": "pro"}))
	ok(t, "PutSecret", p.PutSecret(ctx, "acme", "api_token", []byte("tok-123")))
	key, err := p.KeyInfo(ctx, "acme")
	ok(t, "KeyInfo", err)

	puts := pp.named("/silo-secret/api_token")
	if len(puts) != 1 {
		t.Fatalf("PutParameter of the secret sent %d times, want 1", len(puts))
	}
	if in := puts[0]; in.Type != ssmtypes.ParameterTypeSecureString || aws.ToString(in.KeyId) != key.WrappedBy || in.Tier != ssmtypes.ParameterTierStandard {
		t.Errorf("PutParameter of the secret: type %s, key %s, tier %s; want SecureString, %s, Standard", in.Type, aws.ToString(in.KeyId), in.Tier, key.WrappedBy)
	}
	// Twin: config is a plain String parameter, under no key.
	if cfg := pp.named("/silo/config/plan"); len(cfg) != 1 || cfg[0].Type != ssmtypes.ParameterTypeString || cfg[0].KeyId != nil {
		t.Errorf("PutParameter of config: %+v; want one String without a key", cfg)
	}

	c := accountClients(org, awsIDOf(t, p, "acme"))
	tags, err := c.ssm.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String("/silo-secret/api_token")})
	ok(t, "ListTagsForResource", err)
	got := map[string]string{}
	for _, tag := range tags.TagList {
		got[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	// Tag values are encoded as on the execution roles ('/' is .2F).
	if got["silo:account"] != "acme" || got["silo:resource"] != "secret.2Fapi_token" {
		t.Errorf("tags of the secret = %v; want silo:account acme, silo:resource secret.2Fapi_token", got)
	}
	// The deployer reads /silo recursively; no secret is under it.
	under := ssm.NewGetParametersByPathPaginator(c.ssm, &ssm.GetParametersByPathInput{Path: aws.String("/silo"), Recursive: aws.Bool(true), WithDecryption: aws.Bool(true)})
	n := 0
	for under.HasMorePages() {
		page, err := under.NextPage(ctx)
		ok(t, "GetParametersByPath /silo", err)
		for _, prm := range page.Parameters {
			n++
			if strings.Contains(aws.ToString(prm.Value), "tok-123") {
				t.Errorf("parameter %s under /silo holds the secret value", aws.ToString(prm.Name))
			}
		}
	}
	if n == 0 {
		t.Errorf("no parameter under /silo; the records should be there")
	}
	d, err := p.Data(ctx, "acme")
	ok(t, "Data", err)
	if v, err := d.Secret(ctx, "api_token"); err != nil || string(v) != "tok-123" {
		t.Errorf("Secret = %q, %v; want tok-123", v, err)
	}
}

// TestSecretSizeLimit: a value that does not fit a standard-tier parameter
// is refused with one error naming the secret and the limit, before any
// AWS call; a value just under fits.
func TestSecretSizeLimit(t *testing.T) {
	ctx := context.Background()
	p, _ := newAWS(t)
	ok(t, "create acme", p.CreateAccount(ctx, "acme", silo.KindTenant))
	apply(t, p, "acme", silo.OpCreate, mkRes(t, silo.TypeSecret, "signing_key", map[string]any{}))
	d, err := p.Data(ctx, "acme")
	ok(t, "Data", err)
	binary := func(n int) []byte { return bytes.Repeat([]byte{0xff}, n) }
	text := func(n int) []byte { return bytes.Repeat([]byte("k"), n) }
	for _, tt := range []struct {
		name  string
		value []byte
		limit string // in the error; "" if the value fits
	}{
		{"text at the limit", text(provider.MaxSecretSize), ""},
		{"text one byte over", text(provider.MaxSecretSize + 1), "4096 bytes"},
		{"binary at the limit", binary(provider.MaxBinarySecretSize), ""},
		{"binary one byte over", binary(provider.MaxBinarySecretSize + 1), "3066 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := p.PutSecret(ctx, "acme", "signing_key", tt.value)
			if tt.limit == "" {
				ok(t, "PutSecret", err)
				v, err := d.Secret(ctx, "signing_key")
				if err != nil || !bytes.Equal(v, tt.value) {
					t.Errorf("Secret = %d bytes, %v; want the %d bytes put", len(v), err, len(tt.value))
				}
				return
			}
			if err == nil {
				t.Fatalf("PutSecret of %d bytes succeeded; want CodeInvalid naming signing_key and %s", len(tt.value), tt.limit)
			}
			msg := silo.UserMessage(err)
			if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(msg, "signing_key") || !strings.Contains(msg, tt.limit) {
				t.Errorf("PutSecret = %v; want CodeInvalid naming signing_key and %s", err, tt.limit)
			}
			if bytes.Contains([]byte(err.Error()), tt.value[:64]) {
				t.Errorf("the error carries the value")
			}
		})
	}
}

// TestSecretValueNeverInErrors: AWS validation messages may quote the
// value; the provider's error keeps only the code.
func TestSecretValueNeverInErrors(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t)
	ok(t, "create acme", p.CreateAccount(ctx, "acme", silo.KindTenant))
	apply(t, p, "acme", silo.OpCreate, mkRes(t, silo.TypeSecret, "api_token", map[string]any{}))
	const value = "tok-do-not-print"
	for _, code := range []string{"ValidationException", "InternalServerError"} {
		org.Inject(awsIDOf(t, p, "acme"), "PutParameter", awstest.Fault{Code: code, Times: 1, Fields: map[string]string{"message": "Value '" + value + "' at 'value' failed to satisfy constraint"}})
		err := p.PutSecret(ctx, "acme", "api_token", []byte(value))
		if err == nil {
			t.Fatalf("PutSecret with %s injected succeeded", code)
		}
		// Every error of the chain, as a log of it would print it.
		chain := silo.UserMessage(err)
		for e := err; e != nil; e = errors.Unwrap(e) {
			chain += "\n" + e.Error()
		}
		if strings.Contains(chain, value) {
			t.Errorf("PutSecret error with %s carries the value:\n%s", code, chain)
		}
		if !strings.Contains(chain, code) {
			t.Errorf("PutSecret error does not name the AWS code %s:\n%s", code, chain)
		}
	}
	// Twin: without the fault the value is stored.
	ok(t, "PutSecret", p.PutSecret(ctx, "acme", "api_token", []byte(value)))
}

// legacySecret creates a secret as silo stored it before secrets moved to
// SSM: a Secrets Manager secret silo/secret/<name> under the data key,
// its value binary.
func legacySecret(t *testing.T, c clients, keyARN, name string, v []byte) {
	t.Helper()
	_, err := c.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("silo/secret/" + name), KmsKeyId: aws.String(keyARN), SecretBinary: v,
		Tags: []smtypes.Tag{{Key: aws.String("silo:account"), Value: aws.String("acme")}},
	})
	ok(t, "create the Secrets Manager secret "+name, err)
}

func legacyNames(t *testing.T, c clients) []string {
	t.Helper()
	out, err := c.sm.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{})
	ok(t, "ListSecrets", err)
	var names []string
	for _, s := range out.SecretList {
		names = append(names, aws.ToString(s.Name))
	}
	return names
}

func legacyValue(t *testing.T, c clients, name string) string {
	t.Helper()
	out, err := c.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("silo/secret/" + name)})
	ok(t, "GetSecretValue "+name, err)
	return string(out.SecretBinary)
}

func paramValue(t *testing.T, c clients, name string) (string, bool) {
	t.Helper()
	out, err := c.ssm.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/silo-secret/" + name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", false
	}
	return aws.ToString(out.Parameter.Value), true
}

// TestLegacySecretsMoveToSSM: an account whose secrets an earlier silo
// kept in Secrets Manager keeps working: the data plane reads them before
// any Apply; the next Apply copies each to SSM and deletes the Secrets
// Manager secret, except while a function's execution role (of the
// earlier silo) still reads Secrets Manager, whose copy PutSecret keeps
// current until that function is deployed again.
func TestLegacySecretsMoveToSSM(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t, func(c *siloaws.Config) { c.Principal, c.DataPrincipal = principal, dataPrincipal })
	ok(t, "create acme", p.CreateAccount(ctx, "acme", silo.KindTenant))
	for _, r := range []silo.Resource{
		mkRes(t, silo.TypeSecret, "api_token", map[string]any{}),
		mkRes(t, silo.TypeSecret, "other_token", map[string]any{}),
		mkRes(t, silo.TypeFunction, "ingest", silo.FunctionSpec{Artifact: strings.Repeat("a", 64), Secrets: []string{"api_token"}}),
	} {
		apply(t, p, "acme", silo.OpCreate, r)
	}
	key, err := p.KeyInfo(ctx, "acme")
	ok(t, "KeyInfo", err)
	awsID := awsIDOf(t, p, "acme")
	c := accountClients(org, awsID)

	// The earlier silo's state, made by a restarted provider's
	// predecessor: both values in Secrets Manager, plus one of a slot
	// deleted since, and ingest's role reading Secrets Manager.
	legacySecret(t, c, key.WrappedBy, "api_token", []byte("old-api"))
	legacySecret(t, c, key.WrappedBy, "other_token", []byte("old-other"))
	legacySecret(t, c, key.WrappedBy, "dropped", []byte("old-dropped"))
	roles := iam.NewFromConfig(org.Config(), func(o *iam.Options) { o.BaseEndpoint = aws.String(org.Endpoint(awsID)) })
	_, err = roles.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(siloaws.FunctionRole("ingest")), PolicyName: aws.String("silo-grants"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Sid":"Secrets","Effect":"Allow","Action":["secretsmanager:GetSecretValue"],"Resource":["arn:aws:secretsmanager:us-east-1:` + awsID + `:secret:silo/secret/api_token-??????"]}]}`)})
	ok(t, "give ingest the earlier silo's grants", err)
	p, err = newProviderOn(t, org) // the upgraded silo
	ok(t, "restart", err)

	// Before any Apply: the data plane reads the old values.
	d, err := p.Data(ctx, "acme")
	ok(t, "Data", err)
	for name, want := range map[string]string{"api_token": "old-api", "other_token": "old-other"} {
		if v, err := d.Secret(ctx, name); err != nil || string(v) != want {
			t.Errorf("Secret(%s) before the move = %q, %v; want %s", name, v, err, want)
		}
	}

	// The next Apply moves them: other_token entirely; api_token is
	// copied but its Secrets Manager copy stays for ingest.
	apply(t, p, "acme", silo.OpCreate, mkRes(t, silo.TypeConfig, "plan", map[string]any{"value": "pro"}))
	for name, want := range map[string]string{"api_token": "old-api", "other_token": "old-other"} {
		if v, ok := paramValue(t, c, name); !ok || v != want {
			t.Errorf("SSM value of %s after the Apply = %q, %v; want %s", name, v, ok, want)
		}
	}
	if got := legacyNames(t, c); len(got) != 1 || got[0] != "silo/secret/api_token" {
		t.Errorf("Secrets Manager after the Apply holds %v; want only silo/secret/api_token (ingest still reads it)", got)
	}
	// silo verify sees the copy, and reports ingest's old grant as
	// beyond what the current silo declares, until ingest is deployed
	// again.
	snap, err := p.IAMSnapshot(ctx)
	ok(t, "IAMSnapshot", err)
	if got := secretKinds(snap, awsID); got["legacy-secret silo/secret/api_token"] != 1 || got["secret /silo-secret/api_token"] != 1 || got["secret /silo-secret/other_token"] != 1 {
		t.Errorf("secrets in the snapshot = %v; want both parameters and the one Secrets Manager copy", got)
	}
	if !reported(iameval.Verify(snap), "secretsmanager:GetSecretValue", siloaws.FunctionRole("ingest"), "does not declare") {
		t.Errorf("silo verify does not report ingest's Secrets Manager grant of the earlier silo")
	}
	// PutSecret keeps the copy ingest reads current.
	ok(t, "PutSecret", p.PutSecret(ctx, "acme", "api_token", []byte("new-api")))
	if v := legacyValue(t, c, "api_token"); v != "new-api" {
		t.Errorf("the Secrets Manager copy after PutSecret = %q; want new-api", v)
	}

	// Deploying ingest again gives it the SSM grants; the copy goes.
	apply(t, p, "acme", silo.OpUpdate, mkRes(t, silo.TypeFunction, "ingest", silo.FunctionSpec{Artifact: strings.Repeat("b", 64), Secrets: []string{"api_token"}}))
	if got := legacyNames(t, c); len(got) != 0 {
		t.Errorf("Secrets Manager after ingest is deployed again holds %v; want nothing", got)
	}
	for name, want := range map[string]string{"api_token": "new-api", "other_token": "old-other"} {
		if v, err := d.Secret(ctx, name); err != nil || string(v) != want {
			t.Errorf("Secret(%s) after the move = %q, %v; want %s", name, v, err, want)
		}
	}
	snap, err = p.IAMSnapshot(ctx)
	ok(t, "IAMSnapshot", err)
	if got := secretKinds(snap, awsID); len(got) != 2 || got["legacy-secret silo/secret/api_token"] != 0 {
		t.Errorf("secrets in the snapshot after the move = %v; want the two parameters only", got)
	}
	if reported(iameval.Verify(snap), "secretsmanager:GetSecretValue") {
		t.Errorf("silo verify still reports a Secrets Manager grant after ingest is deployed again")
	}
}

// secretKinds counts the secrets of AWS account awsID in snap, by kind
// and name.
func secretKinds(snap iameval.Snapshot, awsID string) map[string]int {
	out := map[string]int{}
	for _, a := range snap.Accounts {
		if a.ID != awsID {
			continue
		}
		for _, r := range a.Resources {
			if r.Kind == iameval.Secret || r.Kind == iameval.LegacySecret {
				out[string(r.Kind)+" "+r.Name]++
			}
		}
	}
	return out
}

// reported reports whether a finding of r names every part.
func reported(r iameval.Result, parts ...string) bool {
	for _, f := range r.Findings {
		if containsAll(f.String(), parts) {
			return true
		}
	}
	return false
}

// TestLegacySecretsMoveNeedsTheDataRole: when the value cannot be read
// through the data role, the Apply fails with one clear error and Secrets
// Manager keeps everything; once it can, the move completes.
func TestLegacySecretsMoveNeedsTheDataRole(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t, func(c *siloaws.Config) { c.Principal, c.DataPrincipal = principal, dataPrincipal })
	ok(t, "create acme", p.CreateAccount(ctx, "acme", silo.KindTenant))
	apply(t, p, "acme", silo.OpCreate, mkRes(t, silo.TypeSecret, "api_token", map[string]any{}))
	key, err := p.KeyInfo(ctx, "acme")
	ok(t, "KeyInfo", err)
	awsID := awsIDOf(t, p, "acme")
	c := accountClients(org, awsID)
	legacySecret(t, c, key.WrappedBy, "api_token", []byte("old-api"))
	p, err = newProviderOn(t, org)
	ok(t, "restart", err)

	org.Inject(awsID, "GetSecretValue", awstest.Fault{Code: "AccessDeniedException", Fields: map[string]string{"message": "User: arn:aws:sts::" + awsID + ":assumed-role/silo-data/silo is not authorized"}})
	err = p.Apply(ctx, "acme", silo.Change{Op: silo.OpCreate, Type: silo.TypeConfig, Name: "plan", Desired: ptr(mkRes(t, silo.TypeConfig, "plan", map[string]any{"value": "pro"}))})
	msg := silo.UserMessage(err)
	if err == nil || !strings.Contains(msg, "Secrets Manager") || !strings.Contains(msg, "silo-data") || strings.Contains(msg, "not authorized") {
		t.Errorf("Apply with the data role denied = %v (message %q); want one error naming Secrets Manager and silo-data, without AWS's text", err, msg)
	}
	if got := legacyNames(t, c); len(got) != 1 {
		t.Errorf("Secrets Manager after the failed move holds %v; want the secret kept", got)
	}
	org.Clear(awsID)
	apply(t, p, "acme", silo.OpCreate, mkRes(t, silo.TypeConfig, "plan", map[string]any{"value": "pro"}))
	if v, ok := paramValue(t, c, "api_token"); !ok || v != "old-api" {
		t.Errorf("SSM value after the move = %q, %v; want old-api", v, ok)
	}
	if got := legacyNames(t, c); len(got) != 0 {
		t.Errorf("Secrets Manager after the move holds %v; want nothing", got)
	}
}

func ptr[T any](v T) *T { return &v }

// TestDeleteSecretRemovesTheLegacyCopy: in an account an earlier silo
// left a Secrets Manager copy in (which the data plane reads while the
// parameter is missing), SecretNames lists the copy and DeleteSecret
// deletes it, so the secret then reads as never set; the other copy,
// not deleted, still reads (the twin).
func TestDeleteSecretRemovesTheLegacyCopy(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t, func(c *siloaws.Config) { c.Principal, c.DataPrincipal = principal, dataPrincipal })
	ok(t, "create acme", p.CreateAccount(ctx, "acme", silo.KindTenant))
	apply(t, p, "acme", silo.OpCreate, mkRes(t, silo.TypeSecret, "api_token", map[string]any{}))
	apply(t, p, "acme", silo.OpCreate, mkRes(t, silo.TypeSecret, "other_token", map[string]any{}))
	key, err := p.KeyInfo(ctx, "acme")
	ok(t, "KeyInfo", err)
	c := accountClients(org, awsIDOf(t, p, "acme"))
	legacySecret(t, c, key.WrappedBy, "api_token", []byte("old-api"))
	legacySecret(t, c, key.WrappedBy, "other_token", []byte("old-other"))
	p, err = newProviderOn(t, org) // the upgraded silo, before any Apply
	ok(t, "restart", err)
	d, err := p.Data(ctx, "acme")
	ok(t, "Data", err)

	names, err := p.SecretNames(ctx, "acme")
	ok(t, "SecretNames", err)
	if want := []string{"api_token", "other_token"}; !slices.Equal(names, want) {
		t.Errorf("SecretNames with Secrets Manager copies = %v; want %v", names, want)
	}
	deleted, err := p.DeleteSecret(ctx, "acme", "api_token")
	if err != nil || !deleted {
		t.Fatalf("DeleteSecret of a Secrets Manager copy = %v, %v; want true, nil", deleted, err)
	}
	if v, err := d.Secret(ctx, "api_token"); !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("Secret after DeleteSecret = %q, %v; want silo.ErrNotFound", v, err)
	}
	if got := legacyNames(t, c); !slices.Equal(got, []string{"silo/secret/other_token"}) {
		t.Errorf("Secrets Manager after DeleteSecret holds %v; want only silo/secret/other_token", got)
	}
	if v, err := d.Secret(ctx, "other_token"); err != nil || string(v) != "old-other" {
		t.Errorf("control: Secret(other_token) = %q, %v; want old-other", v, err)
	}
	names, err = p.SecretNames(ctx, "acme")
	ok(t, "SecretNames", err)
	if want := []string{"other_token"}; !slices.Equal(names, want) {
		t.Errorf("SecretNames after DeleteSecret = %v; want %v", names, want)
	}
}

// TestLambdaHostReadsSecretsFromSSM: the host, with the function's own
// credentials, reads a secret from its parameter; it has no Secrets
// Manager fallback (its execution role grants none), while the data
// plane's handle does (the twin).
func TestLambdaHostReadsSecretsFromSSM(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t)
	ok(t, "create acme", p.CreateAccount(ctx, "acme", silo.KindTenant))
	for _, name := range []string{"api_token", "old_token"} {
		apply(t, p, "acme", silo.OpCreate, mkRes(t, silo.TypeSecret, name, map[string]any{}))
	}
	ok(t, "PutSecret", p.PutSecret(ctx, "acme", "api_token", []byte("tok-123")))
	key, err := p.KeyInfo(ctx, "acme")
	ok(t, "KeyInfo", err)
	awsID := awsIDOf(t, p, "acme")
	legacySecret(t, accountClients(org, awsID), key.WrappedBy, "old_token", []byte("old"))

	t.Setenv("AWS_REGION", awstest.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEMULATED")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "emulated")
	h, err := siloaws.NewHost(ctx, siloaws.HostConfig{Account: "acme", AWSAccount: awsID, Function: "ingest", Endpoint: org.Endpoint(awsID)})
	ok(t, "NewHost", err)
	if v, err := h.Data().Secret(ctx, "api_token"); err != nil || string(v) != "tok-123" {
		t.Errorf("host Secret(api_token) = %q, %v; want tok-123", v, err)
	}
	if _, err := h.Data().Secret(ctx, "old_token"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("host Secret(old_token), only in Secrets Manager = %v; want CodeNotFound", err)
	}
	// An earlier silo's secret is made after this provider saw none; a
	// restarted one, as after an upgrade, has not looked yet.
	restarted, err := newProviderOn(t, org)
	ok(t, "restart", err)
	d, err := restarted.Data(ctx, "acme")
	ok(t, "Data", err)
	if v, err := d.Secret(ctx, "old_token"); err != nil || string(v) != "old" {
		t.Errorf("data plane Secret(old_token) = %q, %v; want old, from Secrets Manager", v, err)
	}
}
