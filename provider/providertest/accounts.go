package providertest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

func testAccounts(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	ids, err := p.Accounts(ctx)
	must(t, "Accounts on empty provider", err)
	if len(ids) != 0 {
		t.Errorf("new provider lists accounts %v, want none", ids)
	}
	if p.Name() == "" {
		t.Errorf("Name() is empty")
	}
	for _, id := range []silo.AccountID{"globex", "acme", silo.ProductionID, "dev-alice"} {
		create(t, p, id)
	}
	// Create twice == once: the data key is kept.
	k1, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo", err)
	must(t, "create acme again", p.CreateAccount(ctx, "acme", silo.KindTenant))
	k2, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo", err)
	if diff := cmp.Diff(k1, k2); diff != "" {
		t.Errorf("second CreateAccount changed the data key (-before +after):\n%s", diff)
	}
	ids, err = p.Accounts(ctx)
	must(t, "Accounts", err)
	want := []silo.AccountID{"acme", "dev-alice", "globex", silo.ProductionID}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("Accounts (-want +got):\n%s", diff)
	}
	rs, err := p.Resources(ctx, "acme")
	must(t, "Resources of new account", err)
	if len(rs) != 0 {
		t.Errorf("new account holds %v, want nothing", rs)
	}
	wantCode(t, "CreateAccount with bad kind", p.CreateAccount(ctx, "initech", silo.Kind("bogus")), silo.CodeInvalid)
}

func testInvalidIDs(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	for _, id := range []silo.AccountID{"", "../acme", "Acme", "a/b", "-x", "a\x00", ".", silo.AccountID(strings.Repeat("a", 64))} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			wantCode(t, "CreateAccount", p.CreateAccount(ctx, id, silo.KindTenant), silo.CodeInvalid)
			_, err := p.DeleteAccount(ctx, id)
			wantCode(t, "DeleteAccount", err, silo.CodeInvalid)
			_, err = p.Data(ctx, id)
			wantCode(t, "Data", err, silo.CodeInvalid)
			_, err = p.Resources(ctx, id)
			wantCode(t, "Resources", err, silo.CodeInvalid)
			_, err = p.KeyInfo(ctx, id)
			wantCode(t, "KeyInfo", err, silo.CodeInvalid)
			wantCode(t, "PutSecret", p.PutSecret(ctx, id, "s", []byte("v")), silo.CodeInvalid)
			_, err = p.DeleteSecret(ctx, id, "s")
			wantCode(t, "DeleteSecret", err, silo.CodeInvalid)
			_, err = p.SecretNames(ctx, id)
			wantCode(t, "SecretNames", err, silo.CodeInvalid)
			r, _ := silo.NewResource(silo.TypeTable, "t", map[string]any{})
			wantCode(t, "Apply", p.Apply(ctx, id, silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r}), silo.CodeInvalid)
		})
	}
	ids, err := p.Accounts(ctx)
	must(t, "Accounts", err)
	if len(ids) != 0 {
		t.Errorf("invalid IDs created accounts %v", ids)
	}
	// Twin: a valid ID works.
	create(t, p, "acme")
}

func testDeleteAccount(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	for _, id := range []silo.AccountID{"acme", "globex"} {
		create(t, p, id)
		ApplyAll(t, p, id, Stack(t))
		d := dataOf(t, p, id)
		must(t, "Put", d.Put(ctx, "findings", "k", []byte("v")))
		must(t, "PutBlob", d.PutBlob(ctx, "uploads", "k", []byte("v")))
		must(t, "PutSecret", p.PutSecret(ctx, id, "api_token", []byte("s-"+string(id))))
	}
	old := dataOf(t, p, "acme")
	before, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo", err)

	// Each call reports what it did: the first destroyed the account and
	// acted on its data key; the next ones found nothing to destroy.
	del, err := p.DeleteAccount(ctx, "acme")
	must(t, "DeleteAccount", err)
	if !del.Destroyed || del.Key == "" {
		t.Errorf("DeleteAccount of a held account reported %+v; want it destroyed, with what was done to its data key", del)
	}
	for _, id := range []silo.AccountID{"acme", "never"} {
		del, err := p.DeleteAccount(ctx, id)
		must(t, "DeleteAccount of "+string(id)+", which the provider does not hold", err)
		if del != (provider.Deletion{}) {
			t.Errorf("DeleteAccount of %s, which the provider does not hold, reported %+v; want nothing destroyed", id, del)
		}
	}

	ids, err := p.Accounts(ctx)
	must(t, "Accounts", err)
	if diff := cmp.Diff([]silo.AccountID{"globex"}, ids); diff != "" {
		t.Errorf("Accounts after delete (-want +got):\n%s", diff)
	}
	_, err = p.Resources(ctx, "acme")
	wantNotFound(t, "Resources of deleted", err)
	_, err = p.Data(ctx, "acme")
	wantNotFound(t, "Data of deleted", err)
	// A handle taken before the delete reaches nothing.
	_, err = old.Get(ctx, "findings", "k")
	wantNotFound(t, "old handle Get", err)
	_, err = old.GetBlob(ctx, "uploads", "k")
	wantNotFound(t, "old handle GetBlob", err)
	_, err = old.Secret(ctx, "api_token")
	wantNotFound(t, "old handle Secret", err)
	_, err = old.Config(ctx, "plan")
	wantNotFound(t, "old handle Config", err)

	// Twin: the other account is intact.
	g := dataOf(t, p, "globex")
	if v, err := g.Get(ctx, "findings", "k"); err != nil || string(v) != "v" {
		t.Errorf("globex Get after acme deleted = %q, %v", v, err)
	}
	if v, err := g.Secret(ctx, "api_token"); err != nil || string(v) != "s-globex" {
		t.Errorf("globex Secret after acme deleted = %q, %v", v, err)
	}

	// Recreating gives an empty account with a new key.
	create(t, p, "acme")
	after, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo", err)
	if after.Fingerprint == before.Fingerprint {
		t.Errorf("recreated account reuses data key %s", after.Fingerprint)
	}
	if rs, _ := p.Resources(ctx, "acme"); len(rs) != 0 {
		t.Errorf("recreated account holds %v", rs)
	}
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")
	_, err = d.Get(ctx, "findings", "k")
	wantNotFound(t, "old table data in recreated account", err)
	_, err = d.GetBlob(ctx, "uploads", "k")
	wantNotFound(t, "old blob in recreated account", err)
	_, err = d.Secret(ctx, "api_token")
	wantNotFound(t, "old secret in recreated account", err)
}

func testRef(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	_, err := p.Ref(ctx, "acme")
	wantNotFound(t, "Ref of a missing account", err)
	_, err = p.Ref(ctx, "../acme")
	wantCode(t, "Ref of a malformed ID", err, silo.CodeInvalid)
	create(t, p, "acme")
	create(t, p, "globex")
	ref := func(id silo.AccountID) provider.AccountRef {
		t.Helper()
		r, err := p.Ref(ctx, id)
		must(t, "Ref("+string(id)+")", err)
		return r
	}
	acme, globex := ref("acme"), ref("globex")
	if acme.Provider != p.Name() || acme.ID == "" {
		t.Errorf("Ref(acme) = %+v; want provider %q and a non-empty ID", acme, p.Name())
	}
	if acme.ID == globex.ID {
		t.Errorf("acme and globex share the reference %q", acme.ID)
	}
	if diff := cmp.Diff(acme, ref("acme")); diff != "" {
		t.Errorf("Ref(acme) changed between two calls (-first +second):\n%s", diff)
	}
	_, err = p.DeleteAccount(ctx, "acme")
	must(t, "DeleteAccount", err)
	_, err = p.Ref(ctx, "acme")
	wantNotFound(t, "Ref of a deleted account", err)
	// Twin: the other account keeps its reference.
	if diff := cmp.Diff(globex, ref("globex")); diff != "" {
		t.Errorf("Ref(globex) changed when acme was deleted (-before +after):\n%s", diff)
	}
}

// testPendingCreation checks asynchronous creation: with expect, the first
// CreateAccount must report the account pending, leave it unusable, and a
// later call must finish it; without, the first call finishes it. Either
// way the finished account is usable and creating it again changes nothing.
func testPendingCreation(t *testing.T, p provider.Provider, expect bool) {
	ctx := context.Background()
	r := Stack(t)[0]
	apply := silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r}
	err := p.CreateAccount(ctx, "acme", silo.KindTenant)
	switch {
	case expect && !provider.IsPending(err):
		t.Fatalf("first CreateAccount = %v; want provider.Pending (the harness makes the creation outlast the provider's wait)", err)
	case !expect && err != nil:
		t.Fatalf("first CreateAccount: %v", err)
	}
	if provider.IsPending(err) {
		wantCode(t, "pending CreateAccount", err, silo.CodeUnavailable)
		ids, err := p.Accounts(ctx)
		must(t, "Accounts while pending", err)
		if contains(accountStrings(ids), "acme") {
			t.Errorf("Accounts lists acme while its creation is pending: %v", ids)
		}
		_, err = p.Ref(ctx, "acme")
		wantNotFound(t, "Ref while pending", err)
		wantNotFound(t, "Apply while pending", p.Apply(ctx, "acme", apply))
		_, err = p.Data(ctx, "acme")
		wantNotFound(t, "Data while pending", err)
		create(t, p, "acme") // resumes the same creation
	}
	k1, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo", err)
	must(t, "CreateAccount of a finished account", p.CreateAccount(ctx, "acme", silo.KindTenant))
	k2, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo", err)
	if diff := cmp.Diff(k1, k2); diff != "" {
		t.Errorf("CreateAccount after the creation finished changed the data key (-before +after):\n%s", diff)
	}
	ids, err := p.Accounts(ctx)
	must(t, "Accounts", err)
	if diff := cmp.Diff([]silo.AccountID{"acme"}, ids); diff != "" {
		t.Errorf("Accounts after a resumed creation (-want +got):\n%s", diff)
	}
	must(t, "Apply after the creation finished", p.Apply(ctx, "acme", apply))
	_, err = p.Ref(ctx, "acme")
	must(t, "Ref after the creation finished", err)
}

func accountStrings(ids []silo.AccountID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}
