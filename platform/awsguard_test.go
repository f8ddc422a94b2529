package platform_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
)

// TestCreationInProgressAtAWSIsNotTakenOver: a creation of hooli's AWS
// account that this registry did not start (asked of the provider
// directly, as state this installation lost would have) is still in
// progress at AWS, where Ref does not see it yet. Creating hooli is
// refused, naming the creation in progress: nothing is registered, and
// AWS is asked for no second account (without the refusal the creation
// would wait for that one and take its account over). Once AWS finishes
// it, the creation is refused as an orphan's. The twins: globex, with no
// creation in progress, is registered and its own pending creation is
// finished by the journal's resume.
func TestCreationInProgressAtAWSIsNotTakenOver(t *testing.T) {
	t.Parallel() // its own emulated organization and platform
	ctx := context.Background()
	p, prov, org := onAWS(t)
	p.Deploy(t, silotest.CopyExample(t))
	org.SlowCreations(1000) // every creation stays in progress until FinishCreations
	if err := prov.CreateAccount(ctx, "hooli", silo.KindTenant); !provider.IsPending(err) {
		t.Fatalf("start hooli's creation at AWS: %v; want it pending", err)
	}
	asked := org.OrgCalls()["CreateAccount"]

	_, err := p.Platform().CreateAccount(ctx, control.CreateRequest{ID: "hooli"})
	if msg := silo.UserMessage(err); silo.ErrorCode(err) != silo.CodeConflict || !strings.Contains(msg, "a creation of account hooli is still in progress at the aws provider (requested ") || !strings.Contains(msg, "wait until it finishes and try again") {
		t.Fatalf("create hooli while AWS creates it: %v; want a conflict naming the creation in progress", err)
	}
	if _, err := p.Platform().Plane.Account(ctx, "hooli"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("hooli after the refused creation: %v; want it not registered", err)
	}
	if n := org.OrgCalls()["CreateAccount"]; n != asked {
		t.Errorf("the refused creation asked AWS for %d more account(s), want none", n-asked)
	}

	// Must: an ID with no creation in progress is registered, pending.
	c, err := p.Platform().CreateAccount(ctx, control.CreateRequest{ID: "globex"})
	if err != nil || c.Account.State != silo.StateProvisioning {
		t.Fatalf("create globex: %s, %v; want it registered, provisioning", c.Account.State, err)
	}

	// AWS finishes both: hooli's account is an orphan, globex's is the
	// registry's and its onboarding is finished.
	org.FinishCreations()
	if err := prov.CreateAccount(ctx, "hooli", silo.KindTenant); err != nil {
		t.Fatalf("finish hooli's creation at AWS: %v", err)
	}
	if _, err := p.Platform().CreateAccount(ctx, control.CreateRequest{ID: "hooli"}); silo.ErrorCode(err) != silo.CodeConflict || !strings.Contains(silo.UserMessage(err), "silo orphan destroy hooli") {
		t.Errorf("create hooli once AWS finished it: %v; want it refused as an orphan", err)
	}
	rep, err := p.Platform().Plane.Resume(ctx)
	if err != nil || !slices.Contains(rep.Resumed, "globex") {
		t.Fatalf("resume: %+v, %v; want globex finished", rep, err)
	}
	if a, err := p.Platform().Plane.Account(ctx, "globex"); err != nil || a.State != silo.StateActive {
		t.Errorf("globex after resume: %s, %v; want active", a.State, err)
	}
}

// TestServerRefusesChangesOnceItsOrganizationIsEmptied: a serving
// platform on an emulated organization looks, at each Recover (the
// reaper's tick), that the organization still holds the installation's
// accounts. Another process closes every account of the organization
// behind it; the next tick finds none held and from then on every change
// is refused with one failed check naming the cause and the remedy:
// creating, updating, deleting a tenant, setting a secret, destroying an
// orphan; nothing is registered or changed, stuck's pending onboarding is
// not finished into the emptied organization, and silo doctor's report
// (fleet drift) names the cause. The twin: the same platform, before,
// ticks and takes the same kinds of change.
func TestServerRefusesChangesOnceItsOrganizationIsEmptied(t *testing.T) {
	t.Parallel() // its own emulated organization and platform
	ctx := context.Background()
	p, prov, org := onAWS(t)
	p.Deploy(t, silotest.CopyExample(t))
	pl := p.Platform()
	api := apiClient(t, pl)
	p.Tenant(t, "acme")
	p.Tenant(t, "initech")

	// Must: a healthy organization keeps serving changes after a tick.
	if _, err := pl.Recover(ctx); err != nil {
		t.Fatalf("a tick beside the installation's organization: %v", err)
	}
	if _, err := api.UpdateParams(ctx, "initech", map[string]string{"plan": "pro"}, ""); err != nil {
		t.Fatalf("update initech: %v", err)
	}
	if err := api.SetSecret(ctx, "initech", "github-token", []byte("x")); err != nil {
		t.Fatalf("set initech's secret: %v", err)
	}
	if _, err := api.DeleteAccount(ctx, "initech"); err != nil {
		t.Fatalf("delete initech: %v", err)
	}
	if d, err := api.Drift(ctx, ""); err != nil || d.Provider != "" {
		t.Fatalf("fleet drift beside a healthy organization: %+v, %v; want no provider finding", d, err)
	}
	org.SlowCreations(1000)
	if c, err := api.CreateAccount(ctx, control.CreateRequest{ID: "stuck"}); err != nil || c.Account.State != silo.StateProvisioning {
		t.Fatalf("create stuck: %s, %v; want it provisioning", c.Account.State, err)
	}
	if _, err := pl.Recover(ctx); err != nil {
		t.Fatalf("a tick with stuck pending: %v", err)
	}
	org.FinishCreations() // stuck's creation now succeeds at its next poll...
	org.SlowCreations(0)
	if err := prov.CreateAccount(ctx, "orphan1", silo.KindTenant); err != nil {
		t.Fatal(err)
	}

	// Another process closes every account of the organization.
	other, err := siloaws.New(siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint, PollInterval: 2 * time.Millisecond, PollTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	held, err := other.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range held {
		if id == "orphan1" {
			continue // ...and orphan1 stays: the organization holds none of the registry's
		}
		if _, err := other.DeleteAccount(ctx, id); err != nil {
			t.Fatalf("close %s behind the server: %v", id, err)
		}
	}
	state := func() string { // the registry and the audit log
		accts, err := api.Accounts(ctx, store.Filter{IncludeDeleted: true})
		if err != nil {
			t.Fatal(err)
		}
		audit, err := api.AuditLog(ctx, 0, 1000, "")
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, a := range accts {
			b.WriteString(string(a.ID) + " " + string(a.State) + " " + a.Params["plan"] + "\n")
		}
		b.WriteString(strings.Repeat("e", len(audit)))
		return b.String()
	}
	before := state()
	asked := org.OrgCalls()["CreateAccount"]

	_, err = pl.Recover(ctx)
	const want = "state (state.db) (acme, production): its organization was emptied, or its credentials now reach another organization; point the provider back at the installation's own organization, or restore its accounts (docs/aws.md); until it holds them again this server refuses to create, change or delete accounts"
	says := func(msg string) bool {
		return strings.HasPrefix(msg, "the aws provider no longer holds any of the 2 live account(s) of ") && strings.Contains(msg, want)
	}
	if silo.ErrorCode(err) != silo.CodeFailedCheck || !says(silo.UserMessage(err)) {
		t.Fatalf("the tick after the organization was emptied: %v; want %q", err, want)
	}
	refused := func(what string, err error) {
		t.Helper()
		if silo.ErrorCode(err) != silo.CodeFailedCheck || !says(silo.UserMessage(err)) {
			t.Errorf("%s beside the emptied organization: %v; want the failed check %q", what, err, want)
		}
	}
	_, err = api.CreateAccount(ctx, control.CreateRequest{ID: "hooli"})
	refused("create hooli", err)
	_, err = api.UpdateParams(ctx, "acme", map[string]string{"plan": "pro"}, "")
	refused("update acme", err)
	refused("set acme's secret", api.SetSecret(ctx, "acme", "github-token", []byte("x")))
	_, err = api.DeleteAccount(ctx, "acme")
	refused("delete acme", err)
	_, err = api.DestroyOrphan(ctx, "orphan1")
	refused("destroy orphan1", err)
	_, err = pl.Recover(ctx) // a second tick: still refused, stuck not finished
	refused("the next tick", err)
	if rep, err := pl.Plane.Resume(ctx); err != nil || slices.Contains(rep.Resumed, "stuck") {
		t.Errorf("resume beside the emptied organization: %+v, %v; want stuck left provisioning", rep, err)
	}
	if after := state(); after != before {
		t.Errorf("refused changes changed the registry or the audit log:\nbefore %s\nafter  %s", before, after)
	}
	if n := org.OrgCalls()["CreateAccount"]; n != asked {
		t.Errorf("the emptied organization was asked for %d account(s), want none", n-asked)
	}
	if _, err := other.AWSAccountID(ctx, "stuck"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("stuck's AWS account beside the emptied organization: %v; want none", err)
	}
	d, err := api.Drift(ctx, "")
	if err != nil || !says(d.Provider) {
		t.Errorf("fleet drift (silo doctor) beside the emptied organization: provider %q, %v; want %q", d.Provider, err, want)
	}
}
