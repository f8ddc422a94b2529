package platform_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/platform"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/silotest"
)

// TestServerBesideAnEmptiedOrganization: an installation on an emulated
// AWS organization has an active tenant (acme) and one whose creation is
// still pending (stuck). A server restarting on the same data dir beside
// another, empty organization (the installation's emptied, or another)
// refuses to start, naming the cause, and creates nothing there: without
// the refusal its start would finish stuck's onboarding by creating its
// account in that organization. The twin: restarting beside the
// installation's own organization starts.
func TestServerBesideAnEmptiedOrganization(t *testing.T) {
	if out, err := exec.Command("go", "tool", "-n", "kumo").CombinedOutput(); err != nil {
		t.Skipf("kumo, the AWS emulator, cannot be built here (go tool -n kumo: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Parallel() // its own emulated organizations and data dir
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "silo")
	cache := silotest.CacheDir()
	open := func(org *awstest.Org) (*platform.Platform, error) {
		prov, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint, PollInterval: 2 * time.Millisecond, PollTimeout: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return platform.Open(ctx, platform.Config{
			DataDir: dir, Provider: prov, ReapEvery: time.Hour,
			BuildCache: filepath.Join(cache, "builds"), CompileCache: filepath.Join(cache, "compiled"),
		})
	}
	own := awstest.NewOrg(t)
	p, err := open(own)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Deploy(ctx, filepath.Join("testdata", "sched")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	own.SlowCreations(1000) // stuck's creation stays pending
	if c, err := p.CreateAccount(ctx, control.CreateRequest{ID: "stuck"}); err != nil || c.Account.State != silo.StateProvisioning {
		t.Fatalf("create stuck: %s, %v; want it provisioning", c.Account.State, err)
	}
	p.Close()

	empty := awstest.NewOrg(t)
	if p, err := open(empty); err == nil {
		p.Close()
		t.Fatal("a server beside an empty organization started; want it refused")
	} else if msg := silo.UserMessage(err); silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(msg, "holds none of the 2 live account(s)") || !strings.Contains(msg, "acme, production") {
		t.Errorf("refusal beside an empty organization: %v; want one failed check naming the live accounts", err)
	}
	if n := empty.OrgCalls()["CreateAccount"]; n != 0 {
		t.Errorf("the refused start asked the empty organization for %d account(s), want none", n)
	}

	p, err = open(own)
	if err != nil {
		t.Fatalf("restart beside the installation's own organization: %v", err)
	}
	defer p.Close()
	if a, err := p.Plane.Account(ctx, "stuck"); err != nil || a.State != silo.StateProvisioning {
		t.Errorf("stuck after the restart: %s, %v; want still provisioning (its creation pending in its own organization)", a.State, err)
	}
}
