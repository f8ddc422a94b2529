package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// TestPoolCommand: --aws-pool-size is saved with the provider choice,
// silo pool --fill fills the pool, an onboarding takes a pool account
// without asking AWS for a new one, and silo pool shows it one short.
func TestPoolCommand(t *testing.T) {
	awsEnv(t, true)
	org := emulateAWS(t)
	c := newCLI(t)
	aws := []string{"--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com"}
	c.fails("--aws-pool-size must be a whole number from 0 to 100", append(aws, "--aws-pool-size", "-1", "pool")...)
	if _, err := os.Stat(filepath.Join(c.dataDir, providerFile)); !os.IsNotExist(err) {
		t.Errorf("a refused pool size saved the choice: %v", err)
	}
	out := c.ok(append(aws, "--aws-pool-size", "2", "pool", "--fill")...)
	if !strings.Contains(out, "Size      2") || !strings.Contains(out, "Ready     2") {
		t.Errorf("silo pool --fill:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(c.dataDir, providerFile)); !strings.Contains(string(b), `"pool_size": 2`) {
		t.Errorf("the pool size is not saved: %s", b)
	}
	created := org.OrgCalls()["CreateAccount"]
	c.ok("tenant", "create", "acme", "--no-key")
	if n := org.OrgCalls()["CreateAccount"]; n != created {
		t.Errorf("onboarding from the pool called CreateAccount %d times, want 0", n-created)
	}
	// The onboarding took a pool account for acme, and one for the
	// production account if it made that too.
	p, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	held, err := p.Accounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out := c.ok("pool"); !strings.Contains(out, fmt.Sprintf("Ready     %d", 2-len(held))) || len(held) == 0 {
		t.Errorf("silo pool after onboarding %v:\n%s", held, out)
	}
	if out := c.ok("tenant", "list"); strings.Contains(out, "pool") {
		t.Errorf("tenant list shows pool accounts:\n%s", out)
	}
	// Twin: the local provider has no pool.
	local := newCLI(t)
	local.fails("the warm pool exists on the AWS provider only", "pool")
}

// TestServerFillsThePool: silo server, and silo up, with --aws-pool-size
// 1 create one pool account in the background; with the default size
// silo server creates none. A pool size saved while a server runs is
// saved with a note that the server keeps its own until it restarts; with
// no server, no note.
func TestServerFillsThePool(t *testing.T) {
	for _, c := range []struct{ serve, size string }{{"server", "1"}, {"server", ""}, {"up", "1"}} {
		awsEnv(t, true)
		org := emulateAWS(t)
		cl := newCLI(t)
		ctx, stop := context.WithCancel(context.Background())
		args := []string{"--data-dir", cl.dataDir, "--file", cl.file, c.serve, "--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com", "--listen", "127.0.0.1:0"}
		started := "API on" // on stderr
		if c.serve == "server" {
			args = append(args, "--gateway", "127.0.0.1:0")
		} else {
			started = "silo is up" // on stdout
		}
		if c.size != "" {
			args = append(args, "--aws-pool-size", c.size)
		}
		var out, errOut lockedBuffer
		done := make(chan int, 1)
		go func() { done <- run(ctx, args, strings.NewReader(""), &out, &errOut) }()
		p, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint})
		if err != nil {
			t.Fatal(err)
		}
		ready := func() int {
			st, err := p.Pool(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return len(st.Ready)
		}
		for deadline := time.Now().Add(time.Minute); !strings.Contains(errOut.String()+out.String(), started); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("silo %s did not start: %s", c.serve, errOut.String())
			}
		}
		if c.size != "" {
			for deadline := time.Now().Add(time.Minute); ready() < 1; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("silo %s --aws-pool-size 1 made no pool account: %s", c.serve, errOut.String())
				}
			}
		} else {
			time.Sleep(200 * time.Millisecond) // the refill's first pass runs at start
			if n := ready(); n != 0 {
				t.Errorf("silo server without a pool size made %d pool accounts", n)
			}
		}
		if c.serve == "server" && c.size != "" {
			note := "keeps the size it started with until it restarts"
			if _, _, errText := cl.run("--aws-pool-size", "2", "pool"); !strings.Contains(errText, note) {
				t.Errorf("silo pool --aws-pool-size 2 beside a running server: stderr %q, want the note", errText)
			}
			stop()
			if code := <-done; code != 0 {
				t.Errorf("silo server exited %d: %s", code, errOut.String())
			}
			if _, _, errText := cl.run("--aws-pool-size", "2", "pool"); strings.Contains(errText, note) {
				t.Errorf("silo pool --aws-pool-size 2 with no server running: stderr %q, want no note", errText)
			}
			continue
		}
		stop()
		if code := <-done; code != 0 {
			t.Errorf("silo %s exited %d: %s", c.serve, code, errOut.String())
		}
	}
}

// TestPoolWithSharedStore: the warm pool runs with a store several servers
// share. Two data dirs over one PostgreSQL store and one organization
// (two silo servers' CLIs) each fill and claim from the pool: each tenant
// gets an AWS account of its own, both from the pool.
func TestPoolWithSharedStore(t *testing.T) {
	awsEnv(t, true)
	org := emulateAWS(t)
	store := pgtest.Fresh(t)
	aws := []string{"--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com", "--store", store}
	a, b := newCLI(t), newCLI(t)
	if out := a.ok(append(aws, "--aws-pool-size", "2", "pool", "--fill")...); !strings.Contains(out, "Ready     2") {
		t.Fatalf("silo pool --fill with a shared store:\n%s", out)
	}
	b.ok(append(aws, "--aws-pool-size", "2", "pool")...)
	created := org.OrgCalls()["CreateAccount"]
	a.ok("--store", store, "tenant", "create", "acme", "--no-key")
	b.ok("--store", store, "tenant", "create", "globex", "--no-key")
	p, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acme, err := p.AWSAccountID(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	globex, err := p.AWSAccountID(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	if acme == globex {
		t.Errorf("acme and globex share AWS account %s", acme)
	}
	held, err := p.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Each onboarding claims (or creates, once the pool is empty) one
	// account per silo account it made: the tenants and a production
	// account if the first onboarding made one.
	if n := org.OrgCalls()["CreateAccount"] - created; n != max(0, len(held)-2) {
		t.Errorf("onboarding %v called CreateAccount %d times, want %d (the pool held 2)", held, n, max(0, len(held)-2))
	}
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if !slices.Contains(held, id) {
			t.Errorf("Accounts = %v; want %s", held, id)
		}
	}
}
