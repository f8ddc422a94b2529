package control_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// withSecret declares the secret token in the test stack.
func withSecret(s *spec.Stack) { s.Secrets = map[string]spec.Secret{"token": {}} }

// TestSecretDeleteAndList: a secret deleted from one account is listed as
// not set there and stays set in another; deleting it again says it was
// not set; each deletion is audited with whether a value was there; a
// value under a name the account no longer declares is listed as such
// and can be deleted.
func TestSecretDeleteAndList(t *testing.T) {
	ctx := context.Background()
	p, st := open(t)
	if err := p.SetCurrent(ctx, release(t, st, withSecret)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "globex"} {
		if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(id silo.AccountID) []control.SecretState {
		t.Helper()
		ss, err := p.Secrets(ctx, id)
		if err != nil {
			t.Fatalf("Secrets(%s): %v", id, err)
		}
		return ss
	}
	check := func(what string, id silo.AccountID, want []control.SecretState) {
		t.Helper()
		if diff := cmp.Diff(want, list(id)); diff != "" {
			t.Errorf("Secrets(%s) %s (-want +got):\n%s", id, what, diff)
		}
	}
	set := []control.SecretState{{Name: "token", Declared: true, Set: true}}
	unset := []control.SecretState{{Name: "token", Declared: true}}
	check("before any is set", "acme", unset)
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.SetSecret(ctx, id, "token", []byte("v-"+string(id))); err != nil {
			t.Fatal(err)
		}
	}
	check("once set", "acme", set)

	deleteSecret := func(id silo.AccountID, name string, want bool) {
		t.Helper()
		if got, err := p.DeleteSecret(ctx, id, name); err != nil || got != want {
			t.Errorf("DeleteSecret(%s, %s) = %v, %v; want %v, nil", id, name, got, err, want)
		}
	}
	deleteSecret("acme", "token", true)
	check("after the deletion", "acme", unset)
	check("after acme's deletion", "globex", set)
	deleteSecret("acme", "token", false)

	// A value left under a name no longer declared (the record of its
	// declaration gone) is listed, flagged, and deleted like any other.
	if err := p.SetSecret(ctx, "acme", "token", []byte("left")); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.DeleteResource("acme", silo.TypeSecret, "token") }); err != nil {
		t.Fatal(err)
	}
	check("with a value not declared", "acme", []control.SecretState{{Name: "token", Set: true}})
	deleteSecret("acme", "token", true)
	check("after the undeclared value is deleted", "acme", []control.SecretState{})

	// The audit log: each deletion of acme, with whether it found a
	// value; none of globex.
	var got []string
	err := st.View(ctx, func(tx store.Tx) error {
		es, err := tx.Audit(0, 1000)
		for _, e := range es {
			if e.Event.Action == "secret.delete" {
				var d struct {
					Name   string `json:"name"`
					WasSet bool   `json:"was_set"`
				}
				json.Unmarshal(e.Event.Detail, &d)
				got = append(got, string(e.Event.Account)+" "+d.Name+" "+map[bool]string{true: "was set", false: "was not set"}[d.WasSet])
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"acme token was set", "acme token was not set", "acme token was set"}, got); diff != "" {
		t.Errorf("secret.delete audit events (-want +got):\n%s", diff)
	}

	_, err = p.DeleteSecret(ctx, "nosuch", "token")
	if silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("DeleteSecret in an unknown account: %v; want CodeNotFound", err)
	}
	_, err = p.Secrets(ctx, "nosuch")
	if silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("Secrets of an unknown account: %v; want CodeNotFound", err)
	}
}

// TestSecretsOfAnAccountBeingDeleted: an account being deleted takes no
// secret, set or deleted, and keeps what it holds until its deletion
// destroys it; its list still reads. Another account takes both (the
// twin).
func TestSecretsOfAnAccountBeingDeleted(t *testing.T) {
	ctx := context.Background()
	p, st := open(t)
	if err := p.SetCurrent(ctx, release(t, st, withSecret)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "globex"} {
		if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
		if err := p.SetSecret(ctx, silo.AccountID(id), "token", []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	err := st.Update(ctx, func(tx store.Tx) error {
		a, err := tx.Account("acme")
		if err != nil {
			return err
		}
		a.State = silo.StateDeleting
		return tx.UpdateAccount(a)
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[silo.AccountID]bool{"acme": false, "globex": true} {
		err := p.SetSecret(ctx, id, "token", []byte("w"))
		if (err == nil) != want || !want && silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("SetSecret in %s: %v; want success %v", id, err, want)
		}
		_, err = p.DeleteSecret(ctx, id, "token")
		if (err == nil) != want || !want && silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("DeleteSecret in %s: %v; want success %v", id, err, want)
		}
	}
	ss, err := p.Secrets(ctx, "acme")
	if err != nil {
		t.Fatalf("Secrets of the account being deleted: %v", err)
	}
	if diff := cmp.Diff([]control.SecretState{{Name: "token", Declared: true, Set: true}}, ss); diff != "" {
		t.Errorf("Secrets of the account being deleted (-want +got):\n%s", diff)
	}
}
