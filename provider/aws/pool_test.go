package aws_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
)

func pooled(n int) func(*siloaws.Config) {
	return func(c *siloaws.Config) { c.PoolSize = n }
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

// TestPoolClaimResumesAfterCrash stops a claim at each of its steps and checks
// that a restarted provider onboards the account with one AWS account,
// the pool's, and no CreateAccount call. A claim stopped after its move
// and before it tagged the owner left an account no one can tell is
// whose: it stays out of the pool until ClaimTimeout has passed (the
// twin: a FillPool before then leaves it where it is and creates no
// account in its place), then a FillPool or the next claim returns it,
// and after its rest the next onboarding takes it (and not one during
// its rest).
func TestPoolClaimResumesAfterCrash(t *testing.T) {
	const timeout = time.Second
	steps := []struct {
		name     string
		op       string
		after    bool
		returner string // for a claim that named no owner: "refill" or "claim" returns it after ClaimTimeout
	}{
		{"after the claiming tag", "Organizations.TagResource", true, ""},
		{"after the move, returned by a refill", "Organizations.MoveAccount", true, "refill"},
		{"after the move, returned by a claim", "Organizations.MoveAccount", true, "claim"},
		{"before the rename", "Account.PutAccountName", false, ""},
		{"after the rename", "Account.PutAccountName", true, ""},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
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
			c.op, c.after = step.op, step.after
			c.mu.Unlock()
			if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err == nil || !c.fired {
				t.Fatalf("CreateAccount with a crash at %s: %v, fired %v", step.op, err, c.fired)
			}
			restarted, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint, PoolSize: 1, ClaimTimeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			if step.returner != "" {
				// Must not: before ClaimTimeout the account is a claim in
				// progress, neither returned nor replaced.
				if err := restarted.FillPool(ctx); err != nil {
					t.Fatal(err)
				}
				mid, err := restarted.Pool(ctx)
				if err != nil || len(mid.Ready) != 0 || len(mid.Taken) != 1 || mid.Taken[0].AWSAccountID != st.Ready[0] || mid.Taken[0].Account != "" {
					t.Fatalf("pool before ClaimTimeout = %+v, %v; want %s taken with no owner, none ready", mid, err, st.Ready[0])
				}
				// Must: after it, a refill or a claim returns the
				// account, which rests ClaimTimeout before a claim takes
				// it; while it rests, an onboarding (globex) passes it by
				// and asks AWS for an account of its own.
				time.Sleep(timeout + 100*time.Millisecond)
				if step.returner == "refill" {
					if err := restarted.FillPool(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if err := restarted.CreateAccount(ctx, "globex", silo.KindTenant); err != nil {
					t.Fatal(err)
				}
				if got := awsIDOf(t, restarted, "globex"); got == st.Ready[0] {
					t.Errorf("globex took the pool account %s while it rested", got)
				}
				back, err := restarted.Pool(ctx)
				if err != nil || !cmp.Equal(back.Ready, st.Ready) || len(back.Taken) != 0 {
					t.Fatalf("pool after ClaimTimeout = %+v, %v; want %v ready again", back, err, st.Ready)
				}
				time.Sleep(timeout + 100*time.Millisecond)
			}
			if err := restarted.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatalf("CreateAccount after the crash: %v", err)
			}
			want := 1 // the pool's
			if step.returner != "" {
				want++ // globex's
			}
			if n := org.OrgCalls()["CreateAccount"]; n != want {
				t.Errorf("CreateAccount called %d times in all, want %d", n, want)
			}
			if got := awsIDOf(t, restarted, "acme"); got != st.Ready[0] {
				t.Errorf("acme is AWS account %s, want the pool's %s", got, st.Ready[0])
			}
			if got, want := org.Parent(st.Ready[0]), ous(t, accountClients(org, ""))["tenants"]; got != want {
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
