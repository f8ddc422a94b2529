package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
)

// The preview endpoints answer what a rollout or a rollback would destroy,
// as the refusal finds it, and change nothing: a release that adds a table
// destroys nothing (the must-not), one that drops it lists the table and
// the account (the must), and so does rolling back the rollout that added
// it.
func TestPreviewEndpoints(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	c := f.client
	v1 := upload(t, c, spec, "wasm v1")
	if r, err := c.StartRollout(ctx, v1.ID, rollout.Options{}); err != nil || follow(t, c, r.ID).State != rollout.StateSucceeded {
		t.Fatalf("first deploy: %v", err)
	}
	if _, err := c.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	v2 := upload(t, c, strings.Replace(spec, "tables: {findings: {}}", "tables: {findings: {}, notes: {}}", 1), "wasm v1")

	pv, err := c.PreviewRollout(ctx, v2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Release != v2.ID || pv.Accounts == 0 || len(pv.Losses) != 0 {
		t.Errorf("preview of a release that adds a table: %+v; want accounts planned, no losses", pv)
	}
	// The JSON says "losses": [] rather than null.
	if got := getJSON(t, f, "/v1/rollouts/preview?release="+v2.ID); string(got["losses"]) != "[]" {
		t.Errorf(`"losses" = %s, want []`, got["losses"])
	}
	r2, err := c.StartRollout(ctx, v2.ID, rollout.Options{})
	if err != nil || follow(t, c, r2.ID).State != rollout.StateSucceeded {
		t.Fatalf("deploy v2: %v", err)
	}

	notes := []silo.Loss{{Op: silo.OpDelete, Type: silo.TypeTable, Name: "notes", Accounts: []silo.AccountID{"acme"}}}
	for name, get := range map[string]func() (rollout.Preview, error){
		"rollout of v1":   func() (rollout.Preview, error) { return c.PreviewRollout(ctx, v1.ID) },
		"rollback":        func() (rollout.Preview, error) { return c.PreviewRollback(ctx, r2.ID) },
		"rollback latest": func() (rollout.Preview, error) { return c.PreviewRollback(ctx, "latest") },
	} {
		pv, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(notes, pv.Losses); diff != "" || pv.Release != v1.ID {
			t.Errorf("%s: release %s, losses (-want +got):\n%s", name, pv.Release, diff)
		}
	}
	if _, err := c.Rollback(ctx, r2.ID, rollout.Options{}); code(err) != silo.CodeNeedsConfirm || !strings.Contains(err.Error(), "deletes table/notes in acme") {
		t.Errorf("rollback unconfirmed: %v; want %s naming table/notes in acme, as previewed", err, silo.CodeNeedsConfirm)
	}
	if ro, err := c.Rollout(ctx, r2.ID); err != nil || ro.RolledBackBy != "" {
		t.Errorf("after previews and a refusal: rolled back by %q (%v), want not", ro.RolledBackBy, err)
	}

	for _, tc := range []struct {
		name string
		get  func() (rollout.Preview, error)
		want silo.Code
	}{
		{"no release", func() (rollout.Preview, error) { return c.PreviewRollout(ctx, "") }, silo.CodeInvalid},
		{"unknown release", func() (rollout.Preview, error) { return c.PreviewRollout(ctx, "r-doesnotexist") }, silo.CodeNotFound},
		{"unknown rollout", func() (rollout.Preview, error) { return c.PreviewRollback(ctx, "ro-999999") }, silo.CodeNotFound},
		{"not the latest", func() (rollout.Preview, error) { return c.PreviewRollback(ctx, "ro-000001") }, silo.CodeConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.get(); code(err) != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}

// getJSON GETs path with the operator token and decodes a JSON object.
func getJSON(t *testing.T, f *fixture, path string) map[string]json.RawMessage {
	t.Helper()
	resp, b := send(t, f, http.MethodGet, path, "", true)
	var out map[string]json.RawMessage
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	return out
}

// post sends body as JSON to path with the operator token and returns the
// status and the decoded error object, if the answer is one.
func post(t *testing.T, f *fixture, path, body string) (int, server.ErrorBody) {
	t.Helper()
	resp, b := send(t, f, http.MethodPost, path, body, true)
	var eb server.ErrorBody
	json.Unmarshal(b, &eb)
	return resp.StatusCode, eb
}

// A start or rollback sent with the losses_digest of the preview it
// confirms is refused with 409 conflict, and nothing starts, when a
// tenant created since makes it destroy more than the preview listed; the
// twins: sent with the digest of a preview taken after the change, each
// starts, and allow_data_loss alone still confirms whatever is found.
func TestConfirmedLossesOverAPI(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	c := f.client
	v1 := upload(t, c, spec, "wasm v1")
	if r, err := c.StartRollout(ctx, v1.ID, rollout.Options{}); err != nil || follow(t, c, r.ID).State != rollout.StateSucceeded {
		t.Fatalf("first deploy: %v", err)
	}
	if _, err := c.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	v2 := upload(t, c, strings.Replace(spec, "tables: {findings: {}}", "tables: {findings: {}, notes: {}}", 1), "wasm v1")
	r2, err := c.StartRollout(ctx, v2.ID, rollout.Options{})
	if err != nil || follow(t, c, r2.ID).State != rollout.StateSucceeded {
		t.Fatalf("deploy v2: %v", err)
	}

	digest := func(path string) string {
		t.Helper()
		var d string
		if err := json.Unmarshal(getJSON(t, f, path)["losses_digest"], &d); err != nil || len(d) != 32 {
			t.Fatalf("GET %s: losses_digest %q (%v), want 32 hex digits", path, d, err)
		}
		return d
	}
	startPreview, rollbackPreview := "/v1/rollouts/preview?release="+v1.ID, "/v1/rollouts/"+r2.ID+"/rollback/preview"
	shownStart, shownRollback := digest(startPreview), digest(rollbackPreview)
	if _, err := c.CreateAccount(ctx, control.CreateRequest{ID: "globex"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, body, again string }{
		{"/v1/rollouts", `{"release":"` + v1.ID + `","allow_data_loss":true,"losses_digest":"` + shownStart + `"}`, startPreview},
		{"/v1/rollouts/" + r2.ID + "/rollback", `{"allow_data_loss":true,"losses_digest":"` + shownRollback + `"}`, "/v1/rollouts/" + r2.ID + "/rollback/preview"},
	} {
		status, eb := post(t, f, tc.path, tc.body)
		want := "what would be lost changed since you confirmed: it now deletes table/notes in acme, globex; nothing was started. Look again (GET " + tc.again + ") and confirm what it lists"
		if status != http.StatusConflict || eb.Error.Code != silo.CodeConflict || eb.Error.Message != want {
			t.Errorf("POST %s confirmed for the stale preview: %d %+v, want 409 conflict %q", tc.path, status, eb, want)
		}
	}
	if ros, err := c.Rollouts(ctx); err != nil || len(ros) != 2 || ros[0].RolledBackBy != "" {
		t.Fatalf("after the refusals: %d rollouts (%v), latest rolled back by %q; want 2, not rolled back", len(ros), err, ros[0].RolledBackBy)
	}

	// The twins: the digest of the list as it stands starts the rollback;
	// allow_data_loss alone, without a digest, starts the rollout.
	if status, eb := post(t, f, "/v1/rollouts/"+r2.ID+"/rollback", `{"allow_data_loss":true,"losses_digest":"`+digest(rollbackPreview)+`"}`); status != http.StatusOK {
		t.Fatalf("rollback confirmed for the current preview: %d %+v, want 200", status, eb)
	}
	if r := follow(t, c, "latest"); r.State != rollout.StateSucceeded {
		t.Fatalf("rollback: %s (%s)", r.State, r.Reason)
	}
	if status, eb := post(t, f, "/v1/rollouts", `{"release":"`+v2.ID+`","losses_digest":"`+digest("/v1/rollouts/preview?release="+v2.ID)+`"}`); status != http.StatusCreated {
		t.Fatalf("rollout that destroys nothing, confirmed for its preview: %d %+v, want 201", status, eb)
	}
	if r := follow(t, c, "latest"); r.State != rollout.StateSucceeded {
		t.Fatalf("rollout of v2: %s (%s)", r.State, r.Reason)
	}
	if status, eb := post(t, f, "/v1/rollouts", `{"release":"`+v1.ID+`","allow_data_loss":true}`); status != http.StatusCreated {
		t.Fatalf("rollout with allow_data_loss alone: %d %+v, want 201", status, eb)
	}
}
