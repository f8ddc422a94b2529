package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// TestEmulatedOrganizationThroughEndpointURL walks docs/aws.md's "Try it
// on an emulated organization": the CLI, with nothing but the standard
// AWS_ENDPOINT_URL pointing at an organization offered as
// cmd/silo-aws-emulator offers it (awstest.Serve), creates a tenant whose
// stack and secret land in its own member account's kumo, not in the
// management account's, and stay there when the organization, kept in a
// directory, is stopped and started again.
func TestEmulatedOrganizationThroughEndpointURL(t *testing.T) {
	awsEnv(t, true)
	dir := t.TempDir()
	c := newCLI(t)
	var acme string
	// The first run of the organization ends with its subtest; the
	// second goes on with what the first kept in dir.
	t.Run("first run", func(t *testing.T) {
		org := awstest.Serve(t, "127.0.0.1:0", dir)
		t.Setenv("AWS_ENDPOINT_URL", org.URL())
		c := &cli{t: t, dataDir: c.dataDir, file: c.file}
		c.ok("--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com", "tenant", "create", "acme", "--no-key")
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"--data-dir", c.dataDir, "--file", c.file, "secret", "set", "acme", "github-token"}, strings.NewReader("s3cret\n"), &out, &errOut); code != 0 {
			t.Fatalf("silo secret set: exit %d: %s", code, errOut.String())
		}
		var d struct{ Ref provider.AccountRef }
		if err := json.Unmarshal([]byte(c.ok("tenant", "show", "acme", "-o", "json")), &d); err != nil || len(d.Ref.ID) != 12 || d.Ref.Provider != "aws" {
			t.Fatalf("tenant show -o json: ref %+v, %v", d.Ref, err)
		}
		acme = d.Ref.ID
	})
	if t.Failed() {
		return
	}
	org := awstest.Serve(t, "127.0.0.1:0", dir)
	t.Setenv("AWS_ENDPOINT_URL", org.URL())
	if plan := c.ok("plan", "--all"); !strings.Contains(plan, "nothing to do") {
		t.Errorf("after the organization restarted, silo plan --all:\n%s", plan)
	}
	// The organization still lists acme's account (silo doctor reads every
	// account from the provider, and fails on one it does not hold).
	if out := c.ok("doctor"); !strings.Contains(out, "no problem found") {
		t.Errorf("after the organization restarted, silo doctor:\n%s", out)
	}

	ctx := context.Background()
	tables := func(endpoint string) []string {
		t.Helper()
		out, err := dynamodb.NewFromConfig(org.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) }).ListTables(ctx, &dynamodb.ListTablesInput{})
		if err != nil {
			t.Fatalf("list the tables at %s: %v", endpoint, err)
		}
		return out.TableNames
	}
	secrets := func(endpoint string) int {
		t.Helper()
		out, err := ssm.NewFromConfig(org.Config(), func(o *ssm.Options) { o.BaseEndpoint = aws.String(endpoint) }).DescribeParameters(ctx, &ssm.DescribeParametersInput{})
		if err != nil {
			t.Fatalf("list the parameters at %s: %v", endpoint, err)
		}
		n := 0
		for _, p := range out.Parameters {
			if strings.HasPrefix(aws.ToString(p.Name), "/silo-secret/") {
				n++
			}
		}
		return n
	}
	// Must: the tenant's table and secret are in its member account.
	if got := tables(org.Endpoint(acme)); len(got) == 0 || !strings.HasPrefix(got[0], "silo.") {
		t.Errorf("tables of acme's AWS account %s = %v, want its silo tables", acme, got)
	}
	if n := secrets(org.Endpoint(acme)); n != 1 {
		t.Errorf("acme's AWS account holds %d secret parameters, want 1", n)
	}
	// Must not: nothing of it is in the management account.
	if got := tables(org.URL()); len(got) != 0 {
		t.Errorf("the management account holds tables %v", got)
	}

	c.ok("tenant", "delete", "acme", "--yes")
	if show := c.ok("tenant", "show", "acme"); !strings.Contains(show, "State      deleted") {
		t.Errorf("after tenant delete:\n%s", show)
	}
}
