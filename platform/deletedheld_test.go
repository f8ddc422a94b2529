package platform_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/silotest"
)

// TestAPIAnswerForADeletedAccountSaysWhetherTheProviderHoldsIt: a deletion
// can be recorded while the provider still holds the account (one run
// from an older copy of the data dir on a shared store). Every API request
// that acts on such an account is answered not_found with what is true:
// the provider still holds its data and data key, a creation under its ID
// is refused, and deleting it again destroys them; never that a creation
// makes a new, empty tenant. The twin: an account whose deletion destroyed
// it gets the answer that names the creation, and the creation works. Once
// the held account is deleted again, it gets that answer too and its ID
// can be created anew.
func TestAPIAnswerForADeletedAccountSaysWhetherTheProviderHoldsIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := silotest.New(t)
	p.Deploy(t, app)
	p.Tenant(t, "held1")
	p.Tenant(t, "gone1")
	api := apiClient(t, p.Platform())
	for _, id := range []silo.AccountID{"held1", "gone1"} {
		del := func() {
			if _, err := api.DeleteAccount(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if id == "held1" {
			localtest.DeletedButHeld(t, p.Platform().Config().DataDir, string(id), del)
		} else {
			del()
		}
	}

	const (
		held = "account held1 was deleted, but the provider still holds its data and data key (its deletion did not destroy them), so silo tenant create held1 is refused; silo tenant delete held1 destroys them, and then silo tenant create held1 makes a new, empty tenant under that ID"
		gone = "account gone1 was deleted; silo tenant create gone1 makes a new, empty tenant under that ID"
	)
	requests := []struct {
		name string
		call func(silo.AccountID) error
	}{
		{"PATCH /v1/accounts/{id}", func(id silo.AccountID) error {
			_, err := api.UpdateParams(ctx, id, map[string]string{"plan": "pro"}, "")
			return err
		}},
		{"POST /v1/accounts/{id}/suspend", func(id silo.AccountID) error { _, err := api.Suspend(ctx, id); return err }},
		{"POST /v1/accounts/{id}/resume", func(id silo.AccountID) error { _, err := api.Resume(ctx, id); return err }},
		{"POST /v1/accounts/{id}/keys", func(id silo.AccountID) error { _, _, err := api.IssueKey(ctx, id, "ci"); return err }},
		{"PUT /v1/accounts/{id}/secrets/{name}", func(id silo.AccountID) error {
			return api.SetSecret(ctx, id, "github-token", []byte("x"))
		}},
		{"PUT /v1/accounts/{id}/limits", func(id silo.AccountID) error {
			_, err := api.SetLimitOverride(ctx, id, silo.Limits{Rate: 2})
			return err
		}},
		{"GET /v1/plan?account={id}", func(id silo.AccountID) error { _, err := api.Plan(ctx, "", id); return err }},
		{"GET /v1/accounts/{id}/drift", func(id silo.AccountID) error { _, err := api.Drift(ctx, id); return err }},
		{"GET /v1/accounts/{id}/report", func(id silo.AccountID) error { _, err := api.Report(ctx, id, "json"); return err }},
		{"GET /v1/accounts/{id}/logs", func(id silo.AccountID) error { _, err := api.Logs(ctx, id, logs.Query{}); return err }},
		{"DELETE /v1/environments/{id}", func(id silo.AccountID) error { return api.DeleteEnv(ctx, id) }},
	}
	for _, tc := range []struct {
		id   silo.AccountID
		want string
	}{{"held1", held}, {"gone1", gone}} {
		for _, r := range requests {
			err := r.call(tc.id)
			if silo.ErrorCode(err) != silo.CodeNotFound || silo.UserMessage(err) != tc.want {
				t.Errorf("%s for %s: %v; want not_found, %q", r.name, tc.id, err, tc.want)
			}
		}
	}
	// The console's words for the account's page are the API's.
	for _, tc := range []struct {
		id   silo.AccountID
		want string
	}{{"held1", held}, {"gone1", gone}} {
		d, err := api.Show(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := control.DeletedNotice(d.Account, d.Ref != nil); got != tc.want {
			t.Errorf("the notice of %s: %q; want %q", tc.id, got, tc.want)
		}
	}

	// What each answer says to do works: gone1 is created anew; held1 is
	// refused until it is deleted again, which destroys what was left.
	if _, err := api.CreateAccount(ctx, control.CreateRequest{ID: "gone1"}); err != nil {
		t.Errorf("create gone1 as its answer says: %v", err)
	}
	if _, err := api.CreateAccount(ctx, control.CreateRequest{ID: "held1"}); silo.ErrorCode(err) != silo.CodeConflict {
		t.Errorf("create held1 while the provider holds it: %v; want a conflict", err)
	}
	if del, err := api.DeleteAccount(ctx, "held1"); err != nil || !del.Destroyed {
		t.Fatalf("delete held1 again: %+v, %v; want it destroyed", del, err)
	}
	if _, err := os.Stat(filepath.Join(localtest.AccountDir(p.Platform().Config().DataDir, "held1"), "data.key")); !os.IsNotExist(err) {
		t.Errorf("held1's data key after the second deletion: %v; want it gone", err)
	}
	again := "account held1 was deleted; silo tenant create held1 makes a new, empty tenant under that ID"
	if _, err := api.Suspend(ctx, "held1"); silo.UserMessage(err) != again {
		t.Errorf("suspend held1 once destroyed: %v; want %q", err, again)
	}
	if _, err := api.CreateAccount(ctx, control.CreateRequest{ID: "held1"}); err != nil {
		t.Errorf("create held1 once destroyed: %v", err)
	}
}
