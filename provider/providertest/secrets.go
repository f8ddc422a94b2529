package providertest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// testDeleteSecret: DeleteSecret removes one account's value, which its
// functions then read as never set, through a data-plane handle opened
// before the deletion too; the same secret of another account keeps its
// value; deleting again, or a secret never set, changes nothing and says
// so; the declaration stays, so the secret can be set again.
func testDeleteSecret(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	for _, id := range []silo.AccountID{"acme", "globex"} {
		create(t, p, id)
		ApplyAll(t, p, id, Stack(t))
	}
	a, b := dataOf(t, p, "acme"), dataOf(t, p, "globex")
	_, neverSet := a.Secret(ctx, "api_token")
	wantNotFound(t, "Secret never set", neverSet)
	deleted, err := p.DeleteSecret(ctx, "acme", "api_token")
	if err != nil || deleted {
		t.Errorf("DeleteSecret of a secret never set = %v, %v; want false, nil", deleted, err)
	}

	must(t, "PutSecret acme", p.PutSecret(ctx, "acme", "api_token", []byte("A-secret")))
	must(t, "PutSecret globex", p.PutSecret(ctx, "globex", "api_token", []byte("B-secret")))
	// Twin: set, then read, gives the value.
	if v, err := a.Secret(ctx, "api_token"); err != nil || string(v) != "A-secret" {
		t.Fatalf("control: Secret after PutSecret = %q, %v; want A-secret", v, err)
	}

	deleted, err = p.DeleteSecret(ctx, "acme", "api_token")
	if err != nil || !deleted {
		t.Fatalf("DeleteSecret of a set secret = %v, %v; want true, nil", deleted, err)
	}
	_, err = a.Secret(ctx, "api_token")
	wantNotFound(t, "Secret after DeleteSecret, on a handle opened before", err)
	if silo.ErrorCode(err) != silo.ErrorCode(neverSet) {
		t.Errorf("Secret after DeleteSecret: code %s; want %s, as for a secret never set", silo.ErrorCode(err), silo.ErrorCode(neverSet))
	}
	_, err = dataOf(t, p, "acme").Secret(ctx, "api_token")
	wantNotFound(t, "Secret after DeleteSecret, on a new handle", err)
	if v, err := b.Secret(ctx, "api_token"); err != nil || string(v) != "B-secret" {
		t.Errorf("globex's Secret after acme's DeleteSecret = %q, %v; want B-secret", v, err)
	}

	deleted, err = p.DeleteSecret(ctx, "acme", "api_token")
	if err != nil || deleted {
		t.Errorf("DeleteSecret again = %v, %v; want false, nil", deleted, err)
	}
	deleted, err = p.DeleteSecret(ctx, "acme", "undeclared")
	if err != nil || deleted {
		t.Errorf("DeleteSecret of an undeclared name without a value = %v, %v; want false, nil", deleted, err)
	}

	// The declaration stays: the secret is set again.
	must(t, "PutSecret after DeleteSecret", p.PutSecret(ctx, "acme", "api_token", []byte("A-again")))
	if v, err := a.Secret(ctx, "api_token"); err != nil || string(v) != "A-again" {
		t.Errorf("Secret set again after DeleteSecret = %q, %v; want A-again", v, err)
	}

	_, err = p.DeleteSecret(ctx, "nosuch", "api_token")
	wantNotFound(t, "DeleteSecret in an unknown account", err)
	_, err = p.DeleteSecret(ctx, "acme", "")
	wantCode(t, "DeleteSecret of an empty name", err, silo.CodeInvalid)
	_, err = p.DeleteSecret(ctx, "acme", "bad\x00name")
	wantCode(t, "DeleteSecret of a name with NUL", err, silo.CodeInvalid)
	if v, err := a.Secret(ctx, "api_token"); err != nil || string(v) != "A-again" {
		t.Errorf("Secret after refused deletions = %q, %v; want A-again", v, err)
	}
}

// testSecretNames: SecretNames lists exactly the secrets of one account
// that hold a value: none before any is set, the set one after, none
// after it is deleted, and never another account's.
func testSecretNames(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	extra, err := silo.NewResource(silo.TypeSecret, "db-password", map[string]any{})
	must(t, "NewResource", err)
	for _, id := range []silo.AccountID{"acme", "globex"} {
		create(t, p, id)
		ApplyAll(t, p, id, append(Stack(t), extra))
	}
	names := func(id silo.AccountID) []string {
		t.Helper()
		got, err := p.SecretNames(ctx, id)
		must(t, "SecretNames("+string(id)+")", err)
		return got
	}
	want := func(what string, id silo.AccountID, w []string) {
		t.Helper()
		if diff := cmp.Diff(w, names(id), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("SecretNames(%s) %s (-want +got):\n%s", id, what, diff)
		}
	}
	want("before any is set", "acme", nil)
	must(t, "PutSecret acme db-password", p.PutSecret(ctx, "acme", "db-password", []byte("pw")))
	must(t, "PutSecret acme api_token", p.PutSecret(ctx, "acme", "api_token", []byte("tok")))
	want("after two are set", "acme", []string{"api_token", "db-password"})
	want("of another account", "globex", nil)
	must(t, "PutSecret globex api_token", p.PutSecret(ctx, "globex", "api_token", []byte("B")))
	_, err = p.DeleteSecret(ctx, "acme", "api_token")
	must(t, "DeleteSecret acme api_token", err)
	want("after one is deleted", "acme", []string{"db-password"})
	want("of another account after acme's deletion", "globex", []string{"api_token"})

	_, err = p.SecretNames(ctx, "nosuch")
	wantNotFound(t, "SecretNames of an unknown account", err)
}
