package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/rollout"
)

// GET /v1/rollouts and GET /v1/rollouts/{id} say "can_roll_back": true on
// the one rollout a rollback may undo now (the latest that moved accounts)
// and on no other (the first deploy under it); once a rollback is the
// latest, on none, as POST .../rollback of either refuses.
func TestCanRollBackOverAPI(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	c := f.client
	v1 := upload(t, c, spec, "wasm v1")
	r1, err := c.StartRollout(ctx, v1.ID, rollout.Options{})
	if err != nil || follow(t, c, r1.ID).State != rollout.StateSucceeded {
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
	// marks answers can_roll_back of each rollout, by the list and one by one.
	marks := func() map[string]bool {
		t.Helper()
		resp, b := send(t, f, http.MethodGet, "/v1/rollouts", "", true)
		var list []map[string]json.RawMessage
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &list) != nil {
			t.Fatalf("GET /v1/rollouts: %s %s", resp.Status, b)
		}
		out := map[string]bool{}
		for _, r := range list {
			var id string
			if err := json.Unmarshal(r["id"], &id); err != nil {
				t.Fatal(err)
			}
			out[id] = string(r["can_roll_back"]) == "true"
			if one := getJSON(t, f, "/v1/rollouts/"+id); string(one["can_roll_back"]) != string(r["can_roll_back"]) {
				t.Errorf("GET /v1/rollouts/%s says can_roll_back %s, the list %s", id, one["can_roll_back"], r["can_roll_back"])
			}
		}
		return out
	}
	if m := marks(); !m[r2.ID] || m[r1.ID] {
		t.Errorf("can_roll_back after two deploys: %v; want %s only", m, r2.ID)
	}
	if status, eb := post(t, f, "/v1/rollouts/"+r2.ID+"/rollback", `{"allow_data_loss":true}`); status != http.StatusOK {
		t.Fatalf("rollback of %s: %d %+v, want 200", r2.ID, status, eb)
	}
	rb := follow(t, c, "latest")
	if rb.State != rollout.StateSucceeded || rb.RollbackOf != r2.ID {
		t.Fatalf("rollback: %s (%s)", rb.State, rb.Reason)
	}
	for id, can := range marks() {
		if can {
			t.Errorf("can_roll_back on %s after the rollback, want on none", id)
		}
		if status, _ := post(t, f, "/v1/rollouts/"+id+"/rollback", `{"allow_data_loss":true}`); status != http.StatusConflict && status != http.StatusBadRequest {
			t.Errorf("POST /v1/rollouts/%s/rollback after the rollback: %d, want it refused", id, status)
		}
	}
}
