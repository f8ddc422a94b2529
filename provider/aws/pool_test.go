package aws_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

func pooled(n int) func(*siloaws.Config) {
	return func(c *siloaws.Config) { c.PoolSize = n }
}

// testClock is a clock for a provider's warm pool (siloaws.SetClock) that
// stands still while the provider works, however long that takes on a
// busy machine, and moves only when the test moves it.
type testClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

// TestOnboardingFromTheWarmPool fills a pool of two, onboards from it with
// no CreateAccount call, and checks the claimed account: the pool's AWS
// account, renamed, in its kind's OU, with its data key; the pool is one
// short until filled again.
func TestOnboardingFromTheWarmPool(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t, pooled(2))
	if err := p.FillPool(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := p.Pool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Ready) != 2 || st.Creating != 0 || st.Size != 2 {
		t.Fatalf("pool after FillPool = %+v; want 2 ready", st)
	}
	units := ous(t, accountClients(org, ""))
	for _, a := range st.Ready {
		if org.Parent(a) != units["pool"] {
			t.Errorf("pool account %s is in %q, want OU pool %q", a, org.Parent(a), units["pool"])
		}
	}
	created := org.OrgCalls()["CreateAccount"]
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	if n := org.OrgCalls()["CreateAccount"]; n != created {
		t.Errorf("onboarding from the pool called CreateAccount %d times, want 0", n-created)
	}
	acme := awsIDOf(t, p, "acme")
	if acme != st.Ready[0] && acme != st.Ready[1] {
		t.Errorf("acme is AWS account %s, not one of the pool's %v", acme, st.Ready)
	}
	units = ous(t, accountClients(org, ""))
	if got := org.Parent(acme); got != units["tenants"] || got == "" {
		t.Errorf("acme is in %q, want OU tenants %q", got, units["tenants"])
	}
	if _, err := p.KeyInfo(ctx, "acme"); err != nil {
		t.Errorf("KeyInfo(acme): %v", err)
	}
	if after, _ := p.Pool(ctx); len(after.Ready) != 1 {
		t.Errorf("pool after a claim = %+v; want 1 ready", after)
	}
	restarted, _ := newProviderOn(t, org)
	if ids, err := restarted.Accounts(ctx); err != nil || !cmp.Equal(ids, []silo.AccountID{"acme"}) {
		t.Errorf("Accounts = %v, %v; want acme alone (pool accounts are no silo accounts)", ids, err)
	}
	if err := p.FillPool(ctx); err != nil {
		t.Fatal(err)
	}
	if after, _ := p.Pool(ctx); len(after.Ready) != 2 {
		t.Errorf("pool after a refill = %+v; want 2 ready", after)
	}
	// Twin: without a pool, onboarding asks AWS for an account.
	noPool, _ := newProviderOn(t, org)
	created = org.OrgCalls()["CreateAccount"]
	if err := noPool.CreateAccount(ctx, "globex", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	if n := org.OrgCalls()["CreateAccount"]; n != created+1 {
		t.Errorf("onboarding without a pool called CreateAccount %d times, want 1", n-created)
	}
}

// TestPoolClaimResumesAfterCrash stops a claim at each of its steps and
// checks that a restarted provider onboards the account with one AWS
// account, the pool's, and no CreateAccount call. Stopped after the move,
// the account names no owner yet; its only claiming tag is acme's, so
// acme's next onboarding finishes the claim.
func TestPoolClaimResumesAfterCrash(t *testing.T) {
	steps := []struct {
		name  string
		op    string
		after bool
	}{
		{"after the claiming tag", "Organizations.TagResource", true},
		{"after the move", "Organizations.MoveAccount", true},
		{"before the rename", "Account.PutAccountName", false},
		{"after the rename", "Account.PutAccountName", true},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			ctx := context.Background()
			_, org, pooledID := crashedClaim(t, step.op, step.after)
			restarted := serverOn(t, org, pooled(1))
			if err := restarted.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatalf("CreateAccount after the crash: %v", err)
			}
			if n := org.OrgCalls()["CreateAccount"]; n != 1 {
				t.Errorf("CreateAccount called %d times in all, want 1 (the pool's)", n)
			}
			if got := awsIDOf(t, restarted, "acme"); got != pooledID {
				t.Errorf("acme is AWS account %s, want the pool's %s", got, pooledID)
			}
			if got, want := org.Parent(pooledID), ous(t, accountClients(org, ""))["tenants"]; got != want {
				t.Errorf("acme is in %q, want OU tenants %q", got, want)
			}
			if _, err := restarted.KeyInfo(ctx, "acme"); err != nil {
				t.Errorf("KeyInfo(acme): %v", err)
			}
			if after, err := restarted.Pool(ctx); err != nil || len(after.Taken) != 0 {
				t.Errorf("pool after the resumed claim = %+v, %v; want nothing taken", after, err)
			}
		})
	}
}

// TestLateClaimLeavesNoTenantInThePool: a claim that renamed the account
// after another server had returned it to OU pool (a server paused past
// the claim timeout) leaves a tenant's account in OU pool; the tenant's
// next CreateAccount moves it into OU tenants. The twin: an account an
// operator moved into an OU of their own stays there.
func TestLateClaimLeavesNoTenantInThePool(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		into   string // the OU the account is moved into after the claim
		wantOU string
	}{
		{"returned to the pool", "pool", "tenants"},
		{"moved by an operator", "regulated", "regulated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, org := newAWS(t, pooled(1))
			if err := p.FillPool(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatal(err)
			}
			awsID := awsIDOf(t, p, "acme")
			c := accountClients(org, "")
			into := ous(t, c)[tt.into]
			if into == "" {
				roots, err := c.org.ListRoots(ctx, &organizations.ListRootsInput{})
				if err != nil {
					t.Fatal(err)
				}
				out, err := c.org.CreateOrganizationalUnit(ctx, &organizations.CreateOrganizationalUnitInput{ParentId: roots.Roots[0].Id, Name: aws.String(tt.into)})
				if err != nil {
					t.Fatal(err)
				}
				into = aws.ToString(out.OrganizationalUnit.Id)
			}
			_, err := c.org.MoveAccount(ctx, &organizations.MoveAccountInput{AccountId: aws.String(awsID),
				SourceParentId: aws.String(org.Parent(awsID)), DestinationParentId: aws.String(into)})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatalf("CreateAccount again: %v", err)
			}
			want := ous(t, c)[tt.wantOU]
			if got := org.Parent(awsID); got != want {
				t.Errorf("acme is in %q, want OU %s %q", got, tt.wantOU, want)
			}
		})
	}
}

// crashedClaim fills a pool of one and onboards acme from it, stopped at
// op (after AWS performed it if after); it returns the provider, the
// organization and the pool account's AWS ID.
func crashedClaim(t *testing.T, op string, after bool) (*siloaws.Provider, *awstest.Org, string) {
	t.Helper()
	ctx := context.Background()
	c := &crasher{}
	p, org := newAWS(t, pooled(1), c.install)
	if err := p.FillPool(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := p.Pool(ctx)
	if len(st.Ready) != 1 {
		t.Fatalf("pool = %+v; want 1 ready", st)
	}
	c.mu.Lock()
	c.op, c.after = op, after
	c.mu.Unlock()
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err == nil || !c.fired {
		t.Fatalf("CreateAccount with a crash at %s: %v, fired %v", op, err, c.fired)
	}
	return p, org, st.Ready[0]
}

// TestPoolAbandonedClaimReturns stops acme's claim after its move, before
// it named the owner, and acme does not come back in time. Another
// tenant's onboarding does not take the account (must not), nor does
// acme's once half of ClaimTimeout has passed (must not: a server may
// soon count it abandoned); both get accounts of their own. Once
// ClaimTimeout has passed (before it a refill leaves the account alone),
// a refill in one variant and the next claim in the other return the
// account to the pool (must); it rests ClaimTimeout, an onboarding during
// the rest passes it by (must not), and the next one after it takes it
// (must). The restarted server's clock is the test's: it stands still
// while the server works, however long that takes, and moves only where
// the test moves it.
func TestPoolAbandonedClaimReturns(t *testing.T) {
	const timeout = time.Hour // longer than any run of the test: only the test's clock gets past it
	for _, returner := range []string{"refill", "claim"} {
		t.Run(returner, func(t *testing.T) {
			ctx := context.Background()
			_, org, pooledID := crashedClaim(t, "Organizations.MoveAccount", true)
			crashed := time.Now()
			restarted := serverOn(t, org, pooled(1), func(c *siloaws.Config) { c.ClaimTimeout = timeout })
			clock := &testClock{at: crashed}
			siloaws.SetClock(restarted, clock.now)
			after := func(d time.Duration) { clock.set(crashed.Add(d)) }
			onboard := func(id silo.AccountID) string {
				t.Helper()
				if err := restarted.CreateAccount(ctx, id, silo.KindTenant); err != nil {
					t.Fatal(err)
				}
				return awsIDOf(t, restarted, id)
			}
			if err := restarted.FillPool(ctx); err != nil {
				t.Fatal(err)
			}
			mid, err := restarted.Pool(ctx)
			if err != nil || len(mid.Ready) != 0 || len(mid.Taken) != 1 || mid.Taken[0].AWSAccountID != pooledID || mid.Taken[0].Account != "" {
				t.Fatalf("pool before ClaimTimeout = %+v, %v; want %s taken with no owner, none ready", mid, err, pooledID)
			}
			if got := onboard("globex"); got == pooledID {
				t.Errorf("globex took the account acme's claim moved")
			}
			after(timeout/2 + time.Millisecond)
			if got := onboard("acme"); got == pooledID {
				t.Errorf("acme finished its claim after half of ClaimTimeout")
			}
			after(timeout + time.Millisecond)
			if returner == "refill" {
				if err := restarted.FillPool(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got := onboard("initech"); got == pooledID {
				t.Errorf("initech took the pool account %s while it rested", got)
			}
			back, err := restarted.Pool(ctx)
			if err != nil || !cmp.Equal(back.Ready, []string{pooledID}) || len(back.Taken) != 0 {
				t.Fatalf("pool after ClaimTimeout = %+v, %v; want %s ready again", back, err, pooledID)
			}
			after(2*timeout + 2*time.Millisecond) // ClaimTimeout after it was returned, and a little
			if got := onboard("umbrella"); got != pooledID {
				t.Errorf("umbrella is AWS account %s, want the returned pool account %s", got, pooledID)
			}
			if n := org.OrgCalls()["CreateAccount"]; n != 4 {
				t.Errorf("CreateAccount called %d times in all, want 4 (the pool's, globex's, acme's, initech's)", n)
			}
		})
	}
}

// TestPoolMoveRacingAnotherChange: AWS answers a MoveAccount that races
// another change of the account with ConcurrentModificationException, here
// to every attempt of the SDK at the claim's first move. The onboarding
// still takes exactly one pool account and creates none, and the other
// pool account stays ready with nothing left half claimed. (Whether the
// claim moves on to the next account, as for a lost race, or the
// provider's retries move the same one after the fault is gone, both are
// safe; this holds either way.)
func TestPoolMoveRacingAnotherChange(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t, pooled(2))
	if err := p.FillPool(ctx); err != nil {
		t.Fatal(err)
	}
	created := org.OrgCalls()["CreateAccount"]
	// Three answers: the SDK's attempts at the one move.
	org.Inject("", "MoveAccount", awstest.Fault{Code: "ConcurrentModificationException", Times: 3})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatalf("CreateAccount with the first move refused: %v", err)
	}
	if n := org.Faulted("", "MoveAccount"); n != 3 {
		t.Fatalf("the fault answered %d move attempts, want 3", n)
	}
	if n := org.OrgCalls()["CreateAccount"]; n != created {
		t.Errorf("the claim created %d accounts; want a pool account taken", n-created)
	}
	units := ous(t, accountClients(org, ""))
	acme := awsIDOf(t, p, "acme")
	if got := org.Parent(acme); got != units["tenants"] {
		t.Errorf("acme is in %q, want OU tenants %q", got, units["tenants"])
	}
	st, err := p.Pool(ctx)
	if err != nil || len(st.Ready) != 1 || st.Ready[0] == acme || len(st.Taken) != 0 {
		t.Errorf("pool after the claim = %+v, %v; want the other account ready and nothing taken", st, err)
	}
}
