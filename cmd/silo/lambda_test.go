package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/silotest"
)

// lambdaHost builds the silo Lambda host for this machine once per test
// binary (the emulated Lambda runs it here) and returns its path and the
// flags that pass it to the CLI.
var lambdaHost = sync.OnceValues(func() (string, error) {
	host, err := awstest.LambdaHost()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "silo-lambda-")
	if err != nil {
		return "", err
	}
	lambdaHostDir = dir
	bin := filepath.Join(dir, "silo-lambda")
	return bin, os.WriteFile(bin, host, 0o755)
})

// lambdaHostDir holds the host lambdaHost built; TestMain removes it.
var lambdaHostDir string

func TestMain(m *testing.M) {
	if args := os.Getenv(cliArgsEnv); args != "" { // a child running silo (syncs_test.go)
		var full []string
		if err := json.Unmarshal([]byte(args), &full); err != nil {
			os.Exit(2)
		}
		os.Exit(run(context.Background(), full, strings.NewReader(""), os.Stdout, os.Stderr))
	}
	// The CLI's environment, the same for every test. The data dirs the
	// tests make share one build and compile cache, as a user's data dirs
	// do with $SILO_CACHE_DIR: the example's functions are built once,
	// keyed by their content, not again for each new data dir. No server
	// or token of the machine's reaches a command.
	for k, v := range map[string]string{"SILO_CACHE_DIR": silotest.CacheDir(), "SILO_SERVER": "", "SILO_TOKEN": ""} {
		if err := os.Setenv(k, v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	code := m.Run()
	if lambdaHostDir != "" {
		os.RemoveAll(lambdaHostDir)
	}
	os.Exit(code)
}

// hostArch is this machine's Lambda architecture.
func hostArch() string {
	if goruntime.GOARCH == "amd64" {
		return "x86_64"
	}
	return goruntime.GOARCH
}

// emulateLambda is emulateAWS on an organization that runs functions on
// Lambda. It returns the organization, the provider the last command
// built, and the flags that give the CLI the silo Lambda host built here:
// the CLI's own settings configure the provider's functions.
func emulateLambda(t *testing.T) (*awstest.Org, **siloaws.Provider, []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the Lambda host")
	}
	host, err := lambdaHost()
	if err != nil {
		t.Fatal(err)
	}
	org := awstest.NewFunctionOrg(t)
	var last *siloaws.Provider
	old := loadAWS
	t.Cleanup(func() { loadAWS = old })
	loadAWS = emulatedLoad(org, func(p *siloaws.Provider) { last = p })
	return org, &last, []string{"--aws-lambda-host", host, "--aws-lambda-arch", hostArch()}
}

// TestTenantOnLambda: with the functions on Lambda, silo tenant show prints
// the tenant's URL (text and JSON), and the keys silo tenant create and
// silo keys create issue are recorded in the tenant's own account (the
// SHA-256, never the key), where silo keys revoke revokes them; the key
// not revoked stays valid there.
func TestTenantOnLambda(t *testing.T) {
	awsEnv(t, true)
	c := newCLI(t)
	org, prov, hostFlags := emulateLambda(t)
	var created control.Created
	out := c.ok(append(append([]string{"--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com"}, hostFlags...), "tenant", "create", "acme", "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Key == "" {
		t.Fatalf("tenant create -o json: %s (%v); want the first key", out, err)
	}
	ctx := context.Background()
	url, err := (*prov).URL(ctx, "acme")
	if err != nil || !strings.HasPrefix(url, "https://") {
		t.Fatalf("acme's URL on the provider: %q, %v", url, err)
	}
	if show := c.ok("tenant", "show", "acme"); !strings.Contains(show, "URL        "+url+"\n") {
		t.Errorf("tenant show does not print the URL %s:\n%s", url, show)
	}
	var d control.Detail
	if err := json.Unmarshal([]byte(c.ok("tenant", "show", "acme", "-o", "json")), &d); err != nil || d.URL != url {
		t.Errorf("tenant show -o json: url %q, %v; want %s", d.URL, err, url)
	}

	// The key records, read as the Lambda host reads them in the account.
	awsID, err := (*prov).AWSAccountID(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_REGION", awstest.Region)
	h, err := siloaws.NewHost(ctx, siloaws.HostConfig{Account: "acme", AWSAccount: awsID, Function: "list", Endpoint: org.Endpoint(awsID)})
	if err != nil {
		t.Fatal(err)
	}
	record := func(id, plain string, revoked bool) {
		t.Helper()
		k, err := h.APIKey(ctx, id)
		if err != nil {
			t.Fatalf("the record of key %s in acme's account: %v", id, err)
		}
		sum := sha256.Sum256([]byte(plain))
		if string(k.Hash) != string(sum[:]) || k.Account != "acme" || (k.Revoked != nil) != revoked {
			t.Errorf("the record of key %s: account %s, revoked %v; want acme, the key's SHA-256, revoked=%v", id, k.Account, k.Revoked, revoked)
		}
	}
	record(created.KeyID, created.Key, false)
	var issued struct {
		Key   string `json:"key"`
		KeyID string `json:"key_id"`
	}
	if err := json.Unmarshal([]byte(c.ok("keys", "create", "acme", "-o", "json")), &issued); err != nil || issued.Key == "" {
		t.Fatalf("keys create -o json: %v", err)
	}
	record(issued.KeyID, issued.Key, false)
	c.ok("keys", "revoke", "acme", created.KeyID)
	record(created.KeyID, created.Key, true)
	record(issued.KeyID, issued.Key, false) // twin: the other key stays valid

	// A key of another tenant is never stored in acme's account.
	sum := sha256.Sum256([]byte("sk_globex_1234.secret"))
	if err := (*prov).PutAPIKey(ctx, "acme", "sk_globex_1234", sum[:], nil); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("storing globex's key in acme's account: %v, want CodeInvalid", err)
	}
	if _, err := h.APIKey(ctx, "sk_globex_1234"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("globex's key in acme's account: %v, want no record", err)
	}
}

// TestLambdaHostSetting: --aws-lambda-host puts a tenant's functions on
// Lambda in its own AWS account; the setting is saved in the data dir and
// a later command without it puts the next tenant's there too. Its twin:
// without the setting the provider runs no function and Lambda holds none.
func TestLambdaHostSetting(t *testing.T) {
	awsEnv(t, true)
	ctx := context.Background()
	onLambda := func(org *awstest.Org, p *siloaws.Provider, tenant string) bool {
		t.Helper()
		awsID, err := p.AWSAccountID(ctx, silo.AccountID(tenant))
		if err != nil {
			t.Fatalf("%s's AWS account: %v", tenant, err)
		}
		_, ok := org.Function(awsID, "silo-fn-list", "live")
		return ok
	}

	org, prov, hostFlags := emulateLambda(t)
	c := newCLI(t)
	c.ok(append(append([]string{"--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com"}, hostFlags...), "tenant", "create", "acme", "--no-key")...)
	if !(*prov).RunsFunctions() || !onLambda(org, *prov, "acme") {
		t.Fatalf("with --aws-lambda-host, acme's function list is not on Lambda (provider runs functions: %v)", (*prov).RunsFunctions())
	}
	var saved providerChoice
	b, err := os.ReadFile(filepath.Join(c.dataDir, providerFile))
	if err := errors.Join(err, json.Unmarshal(b, &saved)); err != nil || saved.AWS == nil || saved.AWS.LambdaHost != hostFlags[1] || saved.AWS.LambdaArch != hostArch() {
		t.Fatalf("saved choice = %s, %v; want the host %s for %s", b, err, hostFlags[1], hostArch())
	}
	*prov = nil
	c.ok("tenant", "create", "globex", "--no-key") // no flags: the saved host
	if *prov == nil || !onLambda(org, *prov, "globex") {
		t.Errorf("a later command without the flags did not put globex's function on Lambda")
	}

	// Twin: the same organization's Lambda, without the host.
	org, prov, _ = emulateLambda(t)
	local := newCLI(t)
	local.ok("--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com", "tenant", "create", "acme", "--no-key")
	if (*prov).RunsFunctions() || onLambda(org, *prov, "acme") {
		t.Errorf("without --aws-lambda-host, acme's function is on Lambda (provider runs functions: %v)", (*prov).RunsFunctions())
	}
}
