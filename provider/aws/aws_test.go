package aws_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/provider/providertest"
)

// newAWS returns a provider on a fresh emulated organization; edit, if
// given, changes the config first.
func newAWS(t testing.TB, edit ...func(*siloaws.Config)) (*siloaws.Provider, *awstest.Org) {
	t.Helper()
	org := awstest.NewOrg(t)
	cfg := siloaws.Config{
		AWS:          org.Config(),
		Email:        "aws@example.com",
		Endpoint:     org.Endpoint,
		PollInterval: time.Millisecond,
	}
	for _, e := range edit {
		e(&cfg)
	}
	p, err := siloaws.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, org
}

// TestConformance runs the suite with a deployer role (Config.Principal),
// the setup docs/aws.md recommends; the other tests run without. Every
// creation outlasts the provider's wait once (the organization answers
// IN_PROGRESS to the first poll, the provider waits 1 ms and its first
// wait between polls is longer, so each call polls once), so every
// account of the suite is created in two calls, the first one pending.
func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) provider.Provider {
		p, org := newAWS(t, func(c *siloaws.Config) {
			c.Principal, c.PollInterval, c.PollTimeout = principal, 2*time.Millisecond, time.Millisecond
		})
		org.SlowCreations(1)
		return p
	}, providertest.CreatesPending())
}

// newProviderOn returns a second provider on org, as a restarted server.
func newProviderOn(t testing.TB, org *awstest.Org) (*siloaws.Provider, error) {
	t.Helper()
	p, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p, nil
}

func TestNewChecksTheConfig(t *testing.T) {
	org := awstest.NewOrg(t)
	for _, email := range []string{"", "no-at", "@example.com", "a@b@c", "a@"} {
		_, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: email, Endpoint: org.Endpoint})
		if silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("New with email %q: got %v, want CodeInvalid", email, err)
		}
	}
	noRegion := org.Config()
	noRegion.Region = ""
	if _, err := siloaws.New(siloaws.Config{AWS: noRegion, Email: "aws@example.com"}); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("New without a region: got %v, want CodeInvalid", err)
	}
	for _, region := range []string{"mars-1", "us-east", "US-EAST-1", "us-east-1 ", "useast1"} {
		bad := org.Config()
		bad.Region = region
		_, err := siloaws.New(siloaws.Config{AWS: bad, Email: "aws@example.com"})
		if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(silo.UserMessage(err), "is not an AWS region") {
			t.Errorf("New with region %q: got %v, want CodeInvalid saying it is not an AWS region", region, err)
		}
	}
	// Twins: a valid config, in each shape of region name AWS uses.
	for _, region := range []string{awstest.Region, "eu-west-2", "ap-southeast-4", "us-gov-west-1", "us-isob-east-1", "cn-north-1"} {
		good := org.Config()
		good.Region = region
		if _, err := siloaws.New(siloaws.Config{AWS: good, Email: "aws@example.com", Endpoint: org.Endpoint}); err != nil {
			t.Errorf("New with region %s: %v", region, err)
		}
	}
}

func TestLoadReadsTheStandardSources(t *testing.T) {
	ctx := context.Background()
	org := awstest.NewOrg(t)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "from-env")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	cfg := siloaws.Config{Email: "aws@example.com", Endpoint: org.Endpoint, PollInterval: time.Millisecond}
	if _, err := siloaws.Load(ctx, "", cfg); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("Load without a region: got %v, want CodeInvalid", err)
	}
	// Twin: with the region from the environment it reaches the organization.
	t.Setenv("AWS_REGION", awstest.Region)
	p, err := siloaws.Load(ctx, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Errorf("CreateAccount through a loaded config: %v", err)
	}
}
