package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// emulateLambda is emulateAWS with the functions on Lambda: the provider
// deploys each function with the silo Lambda host built here and the
// data dir's artifacts. It returns the organization and the provider the
// last command built.
func emulateLambda(t *testing.T, dataDir string) (*awstest.Org, **siloaws.Provider) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the Lambda host")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bin, "github.com/silo-run/silo/cmd/silo-lambda")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/silo-lambda: %v\n%s", err, out)
	}
	host, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	arch := "x86_64"
	if goruntime.GOARCH != "amd64" {
		arch = goruntime.GOARCH
	}
	org := awstest.NewFunctionOrg(t)
	var last *siloaws.Provider
	old := loadAWS
	t.Cleanup(func() { loadAWS = old })
	loadAWS = func(ctx context.Context, c awsChoice) (provider.Provider, error) {
		cfg := org.Config()
		cfg.Region = c.Region
		p, err := siloaws.New(siloaws.Config{AWS: cfg, Email: c.Email, Endpoint: org.Endpoint, PollInterval: time.Millisecond,
			Functions: &siloaws.FunctionCode{
				Arch: arch,
				Host: func(ctx context.Context, arch string) ([]byte, error) { return host, nil },
				Artifact: func(ctx context.Context, digest string) ([]byte, error) {
					return os.ReadFile(filepath.Join(dataDir, "artifacts", digest+".wasm"))
				},
			}})
		if err != nil {
			return nil, err
		}
		last = p
		return p, p.Check(ctx)
	}
	return org, &last
}

// TestTenantOnLambda: with the functions on Lambda, silo tenant show prints
// the tenant's URL (text and JSON), and the keys silo tenant create and
// silo keys create issue are recorded in the tenant's own account (the
// SHA-256, never the key), where silo keys revoke revokes them; the key
// not revoked stays valid there.
func TestTenantOnLambda(t *testing.T) {
	awsEnv(t, true)
	c := newCLI(t)
	org, prov := emulateLambda(t, c.dataDir)
	var created control.Created
	out := c.ok("--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com", "tenant", "create", "acme", "-o", "json")
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
