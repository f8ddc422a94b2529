package aws_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/store/sqlite"
)

// installed returns a provider on org bound, as the platform binds it, to
// the installation whose control-plane state is a new SQLite store.
func installed(t *testing.T, org *awstest.Org, edit ...func(*siloaws.Config)) *siloaws.Provider {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := serverOn(t, org, edit...)
	p.BindInstallation(control.InstallationID(st))
	return p
}

// tagsOf returns the tags of AWS account awsID.
func tagsOf(t *testing.T, org *awstest.Org, awsID string) map[string]string {
	t.Helper()
	out, err := organizations.NewFromConfig(org.Config(), func(o *organizations.Options) { o.BaseEndpoint = aws.String(org.Endpoint("")) }).
		ListTagsForResource(context.Background(), &organizations.ListTagsForResourceInput{ResourceId: aws.String(awsID)})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range out.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return tags
}

// TestAnotherInstallationsAccountIsLeftAlone: two installations on one
// organization (the second an old copy of a data dir, say) both know an
// account "acme". The provider of the installation that did not create
// acme's AWS account refuses to read, change, create or delete it; the
// one that did goes on. Before the tag, the second deleted the first's
// tenant.
func TestAnotherInstallationsAccountIsLeftAlone(t *testing.T) {
	ctx := context.Background()
	_, org := newAWS(t)
	first, second := installed(t, org), installed(t, org)
	if err := first.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	acme := awsIDOf(t, first, "acme")
	if tags := tagsOf(t, org, acme); len(tags["silo:installation"]) != 32 {
		t.Fatalf("acme's AWS account tags = %v, want silo:installation with the installation's ID", tags)
	}
	const refusal = "belongs to another silo installation"
	for name, call := range map[string]func() error{
		"AWSAccountID":  func() error { _, err := second.AWSAccountID(ctx, "acme"); return err },
		"KeyInfo":       func() error { _, err := second.KeyInfo(ctx, "acme"); return err },
		"CreateAccount": func() error { return second.CreateAccount(ctx, "acme", silo.KindTenant) },
		"DeleteAccount": func() error { _, err := second.DeleteAccount(ctx, "acme"); return err },
	} {
		err := call()
		if silo.ErrorCode(err) != silo.CodeConflict || !strings.Contains(silo.UserMessage(err), refusal) {
			t.Errorf("the second installation's %s(acme) = %v; want a conflict saying the account %s", name, err, refusal)
		}
	}
	// Must: the first installation still owns a live, untouched account.
	if _, err := first.KeyInfo(ctx, "acme"); err != nil {
		t.Errorf("the first installation's KeyInfo(acme) after the second's tries: %v", err)
	}
	if _, err := first.DeleteAccount(ctx, "acme"); err != nil {
		t.Errorf("the first installation's DeleteAccount(acme): %v", err)
	}
}

// TestAccountsBeforeTheTagAreKept: an account made before accounts were
// tagged (by a provider no installation was bound to) is still used by
// the installation that binds, and tagged with its ID at its next
// CreateAccount; from then on another installation leaves it alone.
func TestAccountsBeforeTheTagAreKept(t *testing.T) {
	ctx := context.Background()
	old, org := newAWS(t)
	if err := old.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	acme := awsIDOf(t, old, "acme")
	if tags := tagsOf(t, org, acme); tags["silo:installation"] != "" {
		t.Fatalf("an unbound provider tagged acme's account %v", tags)
	}
	upgraded, other := installed(t, org), installed(t, org)
	if _, err := upgraded.KeyInfo(ctx, "acme"); err != nil {
		t.Fatalf("KeyInfo(acme) of an account made before the tag: %v", err)
	}
	if err := upgraded.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	if tags := tagsOf(t, org, acme); len(tags["silo:installation"]) != 32 {
		t.Fatalf("after CreateAccount, acme's AWS account tags = %v, want silo:installation", tags)
	}
	if _, err := other.KeyInfo(ctx, "acme"); silo.ErrorCode(err) != silo.CodeConflict {
		t.Errorf("another installation's KeyInfo(acme) once it is tagged = %v, want a conflict", err)
	}
}

// TestPoolOfAnotherInstallationIsNotClaimed: an installation with a warm
// pool onboards with a new AWS account rather than take another
// installation's pool account; its own pool accounts it does take.
func TestPoolOfAnotherInstallationIsNotClaimed(t *testing.T) {
	ctx := context.Background()
	_, org := newAWS(t)
	first, second := installed(t, org, pooled(1)), installed(t, org, pooled(1))
	if err := first.FillPool(ctx); err != nil {
		t.Fatal(err)
	}
	pool, err := first.Pool(ctx)
	if err != nil || len(pool.Ready) != 1 {
		t.Fatalf("first pool = %+v, %v; want one ready", pool, err)
	}
	if err := second.CreateAccount(ctx, "globex", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	if got := awsIDOf(t, second, "globex"); got == pool.Ready[0] {
		t.Errorf("the second installation claimed the first's pool account %s", got)
	}
	// Must: the first installation claims its own.
	if err := first.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	if got := awsIDOf(t, first, "acme"); got != pool.Ready[0] {
		t.Errorf("the first installation's acme is AWS account %s, want its pool's %s", got, pool.Ready[0])
	}
}

// TestAnotherInstallationsCreationInFlight: an installation whose
// onboarding of acme finds another installation's creation of an account
// by that name still in progress does not take the account it makes.
func TestAnotherInstallationsCreationInFlight(t *testing.T) {
	ctx := context.Background()
	_, org := newAWS(t)
	org.SlowCreations(1)
	quick := func(c *siloaws.Config) { c.PollInterval, c.PollTimeout = 2*time.Millisecond, time.Millisecond } // one poll per call
	first, second := installed(t, org, quick), installed(t, org)
	if err := first.CreateAccount(ctx, "acme", silo.KindTenant); !provider.IsPending(err) {
		t.Fatalf("the first CreateAccount(acme) = %v, want it pending", err)
	}
	if err := second.CreateAccount(ctx, "acme", silo.KindTenant); silo.ErrorCode(err) != silo.CodeConflict {
		t.Errorf("the second installation's CreateAccount(acme) during the first's = %v, want a conflict", err)
	}
	// Must: the first installation finishes its own creation.
	if err := first.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Errorf("the first installation's CreateAccount(acme) once AWS finished: %v", err)
	}
}
