package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// awsEnv isolates the AWS SDK's sources from the machine: no profile, no
// files, no instance role; static credentials unless creds is false.
func awsEnv(t *testing.T, creds bool) {
	t.Helper()
	for _, k := range []string{"SILO_PROVIDER", "SILO_AWS_REGION", "SILO_AWS_EMAIL", "SILO_AWS_PRINCIPAL", "SILO_AWS_DATA_PRINCIPAL", "SILO_AWS_POOL_SIZE", "SILO_AWS_LAMBDA_HOST", "SILO_AWS_LAMBDA_ARCH",
		"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	key, secret := "", ""
	if creds {
		key, secret = "AKIDEXAMPLE", "example"
	}
	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
}

// TestProviderBadInput: each wrong way to select the AWS provider gets one
// clear error, and nothing is written: the data dir is not even created.
func TestProviderBadInput(t *testing.T) {
	awsEnv(t, true)
	aws := []string{"--provider", "aws", "--aws-region", "eu-west-1", "--aws-email", "aws@example.com"}
	withHost := func(flags ...string) []string { return append(append([]string{}, aws...), flags...) }
	notELF := filepath.Join(t.TempDir(), "silo-lambda")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\necho not a host\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// This test binary is an ELF executable for linux and this machine:
	// the wrong architecture for the other one.
	thisMachine, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	otherArch, otherWant := []string{"--aws-lambda-arch", "arm64"}, "is built for amd64, not arm64 (--aws-lambda-arch arm64)"
	if goruntime.GOARCH != "amd64" {
		otherArch, otherWant = []string{"--aws-lambda-arch", "x86_64"}, "not amd64 (--aws-lambda-arch x86_64)"
	}
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		creds bool
		want  string
	}{
		{"unknown provider", nil, []string{"--provider", "gcp"}, true, "--provider must be local or aws"},
		{"no region", nil, []string{"--provider", "aws", "--aws-email", "aws@example.com"}, true, "needs a region: pass --aws-region"},
		{"no email", nil, []string{"--provider", "aws", "--aws-region", "eu-west-1"}, true, "needs an email address"},
		{"bad email", nil, []string{"--provider", "aws", "--aws-region", "eu-west-1", "--aws-email", "nobody"}, true, "needs an email address for member accounts"},
		{"aws settings for local", nil, []string{"--aws-region", "eu-west-1"}, true, "pass --provider aws with them"},
		{"no region from the environment", map[string]string{"SILO_PROVIDER": "aws", "SILO_AWS_EMAIL": "aws@example.com"}, nil, true, "needs a region"},
		{"no credentials", nil, aws, false, "no AWS credentials found"},
		{"lambda host missing", nil, withHost("--aws-lambda-host", filepath.Join(t.TempDir(), "none")), true, "none: no such file; build it with GOOS=linux GOARCH=arm64"},
		{"lambda host not an ELF", nil, withHost("--aws-lambda-host", notELF), true, "silo-lambda is not an ELF executable: want the silo Lambda host, an ELF executable for linux/arm64"},
		{"lambda host for another architecture", nil, withHost(append([]string{"--aws-lambda-host", thisMachine}, otherArch...)...), true, otherWant},
		{"unknown lambda architecture", nil, withHost("--aws-lambda-host", thisMachine, "--aws-lambda-arch", "mips"), true, "--aws-lambda-arch must be arm64 or x86_64"},
		{"lambda host another program", nil, withHost("--aws-lambda-host", "/bin/ls", "--aws-lambda-arch", hostArch()), true, "/bin/ls is not the silo Lambda host (it is no Go program): want the silo Lambda host"},
		{"lambda host another Go program", nil, withHost("--aws-lambda-host", thisMachine, "--aws-lambda-arch", hostArch()), true, "is not the silo Lambda host (it is the Go program github.com/silo-run/silo/cmd/silo)"},
		{"lambda architecture without a host", nil, withHost("--aws-lambda-arch", "x86_64"), true, "pass --aws-lambda-host with it"},
		{"lambda host for local", nil, []string{"--aws-lambda-host", thisMachine}, true, "pass --provider aws with them"},
		{"lambda host from the environment for local", map[string]string{"SILO_AWS_LAMBDA_HOST": thisMachine}, nil, true, "pass --provider aws with them"},
		{"unreachable", map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_MAX_ATTEMPTS": "1"}, aws, true, "cannot reach AWS Organizations in region eu-west-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			awsEnv(t, tc.creds)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c := newCLI(t)
			c.fails(tc.want, append(tc.args, "tenant", "create", "acme")...)
			if _, err := os.Stat(c.dataDir); !os.IsNotExist(err) {
				t.Errorf("a refused provider left the data dir behind: %v", err)
			}
		})
	}
	// Twin of "another architecture" and "another program": the silo
	// Lambda host built here is taken, and without --aws-lambda-arch the
	// architecture is its own, read from its ELF header.
	host, err := lambdaHost()
	if err != nil {
		t.Fatal(err)
	}
	c0, err := resolveChoice(providerChoice{}, providerFlags{name: "aws", region: "eu-west-1", email: "aws@example.com", lambdaHost: host})
	if err != nil || c0.AWS.LambdaArch != hostArch() {
		t.Errorf("a host built for this machine and no --aws-lambda-arch: got %+v, %v; want architecture %s", c0.AWS, err, hostArch())
	}
	// Twin: the default (local) provider creates the tenant, and saves no choice.
	c := newCLI(t)
	c.ok("tenant", "create", "acme", "--no-key")
	if _, err := os.Stat(filepath.Join(c.dataDir, providerFile)); !os.IsNotExist(err) {
		t.Errorf("the default provider wrote %s: %v", providerFile, err)
	}
	// A data dir whose accounts are local refuses the AWS provider.
	c.fails("are on the local provider; silo does not move them to the aws provider", append(aws, "tenant", "list")...)
}

// emulateAWS makes the CLI's AWS provider reach an emulated organization,
// as the real one reaches AWS (awstest: one kumo process per account).
func emulateAWS(t *testing.T) *awstest.Org {
	t.Helper()
	org := awstest.NewOrg(t)
	old := loadAWS
	t.Cleanup(func() { loadAWS = old })
	loadAWS = emulatedLoad(org, nil)
	return org
}

// emulatedLoad builds the provider the CLI configured on org, as loadAWS
// does on AWS; each provider built is sent to built if it is not nil.
func emulatedLoad(org *awstest.Org, built func(*siloaws.Provider)) func(context.Context, string, siloaws.Config) (provider.Provider, error) {
	return func(ctx context.Context, region string, cfg siloaws.Config) (provider.Provider, error) {
		cfg.AWS = org.Config()
		cfg.AWS.Region = region
		cfg.Endpoint, cfg.PollInterval = org.Endpoint, time.Millisecond
		p, err := siloaws.New(cfg)
		if err != nil {
			return nil, err
		}
		if built != nil {
			built(p)
		}
		return p, p.Check(ctx)
	}
}

// TestProviderChoiceIsSaved: the AWS provider selected once is saved in
// the data dir; later commands use it without the flags, tenant show names
// the AWS account, silo rotate refuses in one sentence, and the data dir
// refuses to switch back to local while it holds accounts.
func TestProviderChoiceIsSaved(t *testing.T) {
	awsEnv(t, true)
	emulateAWS(t)
	c := newCLI(t)
	c.ok("--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com", "tenant", "create", "acme", "--no-key")
	b, err := os.ReadFile(filepath.Join(c.dataDir, providerFile))
	if err != nil || !strings.Contains(string(b), `"provider": "aws"`) || !strings.Contains(string(b), `"email": "aws@example.com"`) {
		t.Fatalf("saved choice = %s, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, "accounts")); !os.IsNotExist(err) {
		t.Errorf("the AWS provider made a local accounts directory: %v", err)
	}

	show := c.ok("tenant", "show", "acme") // no flags: the saved choice
	if !regexp.MustCompile(`Provider   aws account \d{12} in OU tenants \(r-[0-9a-z]+/ou-[0-9a-z-]+/\)`).MatchString(show) {
		t.Errorf("tenant show does not name the AWS account:\n%s", show)
	}
	var d struct {
		Ref provider.AccountRef
	}
	if err := json.Unmarshal([]byte(c.ok("tenant", "show", "acme", "-o", "json")), &d); err != nil || len(d.Ref.ID) != 12 || d.Ref.Provider != "aws" || d.Ref.Unit != "tenants" {
		t.Errorf("tenant show -o json: ref %+v, %v", d.Ref, err)
	}
	c.fails("only the local provider's keys can be rotated with silo rotate; the accounts of this data dir are on the aws provider", "rotate", "data-key", "acme")
	c.fails("are on the aws provider; silo does not move them to the local provider", "--provider", "local", "tenant", "list")

	// Twin: a data dir without accounts may switch (on an organization of
	// its own: silo refuses an empty registry beside an organization that
	// holds its accounts).
	emulateAWS(t)
	empty := newCLI(t)
	if err := os.MkdirAll(empty.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	empty.ok("--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com", "tenant", "list")
	empty.ok("--provider", "local", "tenant", "create", "acme", "--no-key")
	if b, _ := os.ReadFile(filepath.Join(empty.dataDir, providerFile)); !strings.Contains(string(b), `"provider": "local"`) {
		t.Errorf("after switching back, the saved choice is %s", b)
	}
}

// TestServerOnTheAWSProvider: silo server --provider aws serves the API on
// the emulated organization; a tenant created through it is an AWS account,
// which the API's account view names.
func TestServerOnTheAWSProvider(t *testing.T) {
	awsEnv(t, true)
	emulateAWS(t)
	c := newCLI(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--data-dir", c.dataDir, "--file", c.file, "server", "--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com",
			"--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	}()
	api := regexp.MustCompile(`API on (http://\S+)`)
	for deadline := time.Now().Add(time.Minute); !api.MatchString(errOut.String()); {
		select {
		case code := <-done:
			t.Fatalf("silo server --provider aws exited %d: %s", code, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("silo server --provider aws did not start: %s", errOut.String())
		}
	}
	url := api.FindStringSubmatch(errOut.String())[1]
	// The server names the API once it listens; it writes the token when
	// it starts serving, a moment later.
	token, err := os.ReadFile(filepath.Join(c.dataDir, "operator.token"))
	for deadline := time.Now().Add(time.Minute); err != nil && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		token, err = os.ReadFile(filepath.Join(c.dataDir, "operator.token"))
	}
	if err != nil {
		t.Fatal(err)
	}
	viaAPI := []string{"--server", url, "--token", strings.TrimSpace(string(token))}
	c.ok(append(viaAPI, "deploy")...) // the first release: the production account, on AWS
	c.ok(append(viaAPI, "tenant", "create", "acme", "--no-key")...)
	var d struct {
		Account struct{ State string }
		Ref     provider.AccountRef
	}
	if err := json.Unmarshal([]byte(c.ok(append(viaAPI, "tenant", "show", "acme", "-o", "json")...)), &d); err != nil || d.Account.State != "active" || d.Ref.Provider != "aws" || len(d.Ref.ID) != 12 || d.Ref.Unit != "tenants" {
		t.Errorf("the API's view of acme: %+v, %v; want active, on AWS account of 12 digits in OU tenants", d, err)
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("silo server exited %d after Ctrl-C: %s", code, errOut.String())
	}
}

// TestFailedAWSCommandLeavesNoDataDir: a command that selects the AWS
// provider on a new data dir and then fails before any account is
// registered leaves no data dir (no saved choice a later command would
// silently inherit); the same command that succeeds keeps it.
func TestFailedAWSCommandLeavesNoDataDir(t *testing.T) {
	awsEnv(t, true)
	emulateAWS(t)
	c := newCLI(t)
	aws := []string{"--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com"}
	c.file = filepath.Join(t.TempDir(), "silo.yaml") // no such file: refused after the provider check
	c.fails("silo.yaml here and no release yet", append(aws, "tenant", "create", "acme")...)
	if _, err := os.Lstat(c.dataDir); !os.IsNotExist(err) {
		t.Errorf("the failed command left the data dir %s: %v", c.dataDir, err)
	}
	// Twin: with the stack, the same command keeps the data dir and its
	// saved choice.
	c.file = newCLI(t).file
	c.ok(append(aws, "tenant", "create", "acme", "--no-key")...)
	if _, err := os.Stat(filepath.Join(c.dataDir, providerFile)); err != nil {
		t.Errorf("after a tenant was created on AWS: %v", err)
	}
}

// TestChangedProviderSettingIsSaid: a later flag that changes a saved
// provider setting says so, as what every later command uses; a command
// without one, or with the saved value, says nothing.
func TestChangedProviderSettingIsSaid(t *testing.T) {
	awsEnv(t, true)
	emulateAWS(t)
	c := newCLI(t)
	aws := []string{"--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com"}
	c.ok(append(aws, "tenant", "create", "acme", "--no-key")...)
	const note = "note: the data dir now saves"
	for _, args := range [][]string{{"tenant", "list"}, append(aws, "tenant", "list")} {
		if _, _, errOut := c.run(args...); strings.Contains(errOut, note) {
			t.Errorf("silo %s: stderr %q; want no note", strings.Join(args, " "), errOut)
		}
	}
	_, _, errOut := c.run("--aws-pool-size", "3", "tenant", "create", "globex", "--no-key")
	if !strings.Contains(errOut, note+" pool size 3 (was 0); every later command on it uses that") {
		t.Errorf("silo --aws-pool-size 3 tenant create globex: stderr %q; want the note", errOut)
	}
}

// TestSavedSettingsStay: on a data dir whose registry holds accounts, a
// command that only reads refuses every changed provider setting, every
// command refuses a changed region or email, and only a command that
// deploys every account's functions saves a new Lambda host; each refusal
// leaves provider.json as it was and creates nothing. The twins: the same
// settings repeated, a changed pool size from a command that creates, and
// the Lambda host from silo apply are taken.
func TestSavedSettingsStay(t *testing.T) {
	awsEnv(t, true)
	_, _, hostFlags := emulateLambda(t)
	c := newCLI(t)
	aws := []string{"--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com"}
	c.ok(append(aws, "tenant", "create", "acme", "--no-key")...)
	file := filepath.Join(c.dataDir, providerFile)
	saved, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(after string) {
		t.Helper()
		if b, err := os.ReadFile(file); err != nil || string(b) != string(saved) {
			t.Fatalf("after %s, %s = %s (%v); want it unchanged:\n%s", after, providerFile, b, err, saved)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tenant", "list", "--aws-region", "eu-west-1"}, "silo tenant list only reads, and does not change the data dir's saved provider settings (region eu-west-1 (was us-east-1)); drop the flag"},
		{[]string{"tenant", "list", "--aws-email", "other@example.com"}, "does not change the data dir's saved provider settings (email other@example.com (was aws@example.com))"},
		{append([]string{"doctor"}, hostFlags...), "silo doctor only reads"},
		{[]string{"tenant", "create", "globex", "--no-key", "--aws-region", "eu-west-1"}, "account(s) of " + c.dataDir + " keep their resources in AWS region us-east-1; silo does not move them to eu-west-1: drop --aws-region, or use another --data-dir"},
		{[]string{"apply", "--all", "--aws-email", "other@example.com"}, "are in the AWS organization registered under aws@example.com; silo does not move them to other@example.com: drop --aws-email"},
		{append([]string{"tenant", "create", "globex", "--no-key"}, hostFlags...), "only a command that deploys them saves it (silo deploy, silo apply, silo up or silo server)"},
	} {
		c.fails(tc.want, tc.args...)
		unchanged("silo " + strings.Join(tc.args, " "))
	}
	if out := c.ok("tenant", "list"); strings.Contains(out, "globex") {
		t.Errorf("a refused tenant create created globex:\n%s", out)
	}

	// Twins: the saved settings repeated change nothing and say nothing.
	if _, _, errOut := c.run(append(aws, "tenant", "list")...); errOut != "" {
		t.Errorf("the saved settings repeated: stderr %q", errOut)
	}
	unchanged("the saved settings repeated")
	// A changed Lambda host from silo apply, which deploys the functions.
	_, _, errOut := c.run(append([]string{"apply", "--all"}, hostFlags...)...)
	if b, _ := os.ReadFile(file); !strings.Contains(string(b), hostFlags[1]) || !strings.Contains(errOut, "note: the data dir now saves Lambda host "+hostFlags[1]) {
		t.Errorf("silo apply --all %s: stderr %q, %s = %s; want the host saved and said", strings.Join(hostFlags, " "), errOut, providerFile, b)
	}
}

// TestSecondInstallationOnOneOrganization: a new data dir beside an
// organization that holds another installation's accounts is refused,
// saying that one organization serves one installation; the installation
// that holds them goes on.
func TestSecondInstallationOnOneOrganization(t *testing.T) {
	awsEnv(t, true)
	emulateAWS(t)
	aws := []string{"--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com"}
	first := newCLI(t)
	first.ok(append(aws, "tenant", "create", "acme", "--no-key")...)
	second := newCLI(t)
	second.fails("or another installation uses the same organization (one organization serves one installation", append(aws, "tenant", "create", "globex", "--no-key")...)
	first.ok("tenant", "show", "acme")
}

// TestOldDataDirLeavesTheNewInstallationsAccountsAlone: a data dir whose
// organization was replaced (an in-memory emulator restarted, say) still
// lists acme; a new installation on the new organization has made its own
// acme there. The old data dir's commands must not act on the new acme
// (one of them once deleted it); the new installation goes on.
func TestOldDataDirLeavesTheNewInstallationsAccountsAlone(t *testing.T) {
	awsEnv(t, true)
	aws := []string{"--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com"}
	stale := newCLI(t)
	t.Run("old organization", func(t *testing.T) {
		emulateAWS(t)
		c := &cli{t: t, dataDir: stale.dataDir, file: stale.file}
		c.ok(append(aws, "tenant", "create", "acme", "--no-key")...)
	})
	if t.Failed() {
		return
	}
	emulateAWS(t)
	current := newCLI(t)
	current.ok(append(aws, "tenant", "create", "acme", "--no-key")...)
	const refusal = "belongs to another silo installation"
	stale.fails(refusal, "tenant", "delete", "acme", "--yes")
	if show := stale.ok("tenant", "show", "acme"); !strings.Contains(show, refusal) {
		t.Errorf("the old data dir's tenant show acme does not say the account %s:\n%s", refusal, show)
	}
	// Must: the new installation's acme is untouched and its own to delete.
	if show := current.ok("tenant", "show", "acme"); !strings.Contains(show, "State      active") {
		t.Errorf("the new installation's acme after the old data dir's tries:\n%s", show)
	}
	current.ok("tenant", "delete", "acme", "--yes")
}
