package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
)

// POST /v1/rollouts of the release every account runs already answers 200
// with started false and the reason, and records no rollout, so the
// operator's rollout stays the one a rollback undoes; the client gives the
// same *rollout.UpToDate as the runner. The twin: a changed release is
// 201 Created with its rollout.
func TestRedeployOverAPIStartsNothing(t *testing.T) {
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
	resp, b := send(t, f, http.MethodPost, "/v1/rollouts", `{"release":"`+v2.ID+`"}`, true)
	var r2 rollout.Rollout
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &r2) != nil || r2.ID == "" {
		t.Fatalf("POST /v1/rollouts of a changed release: %s %s, want 201 with the rollout", resp.Status, b)
	}
	if r := follow(t, c, r2.ID); r.State != rollout.StateSucceeded {
		t.Fatalf("rollout of v2: %s (%s)", r.State, r.Reason)
	}

	resp, b = send(t, f, http.MethodPost, "/v1/rollouts", `{"release":"`+v2.ID+`"}`, true)
	var none server.NothingStarted
	want := "release " + v2.ID + " is already current on every account; nothing to roll out"
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &none) != nil || none.Started || none.Message != want || none.Release != v2.ID || none.Accounts != 2 {
		t.Errorf("POST /v1/rollouts of the current release: %s %s, want 200 started false %q over 2 accounts", resp.Status, b, want)
	}
	if !strings.Contains(string(b), `"started":false`) {
		t.Errorf("body %s does not say \"started\":false", b)
	}
	r, err := c.StartRollout(ctx, v2.ID, rollout.Options{})
	if u, ok := errors.AsType[*rollout.UpToDate](err); !ok || u.Error() != want || r.ID != "" {
		t.Errorf("Client.StartRollout(current release) = %+v, %v; want *rollout.UpToDate %q", r, err, want)
	}
	ros, err := c.Rollouts(ctx)
	if err != nil || len(ros) != 2 || ros[0].ID != r2.ID {
		t.Fatalf("rollouts after the re-deploys: %d (%v), want 2 with %s the latest", len(ros), err, r2.ID)
	}
	if status, eb := post(t, f, "/v1/rollouts/latest/rollback", `{"allow_data_loss":true}`); status != http.StatusOK {
		t.Fatalf("rollback of the latest after the re-deploys: %d %+v, want 200", status, eb)
	}
	if r := follow(t, c, "latest"); r.State != rollout.StateSucceeded || r.RollbackOf != r2.ID {
		t.Errorf("rollback: %s (%s) of %q, want succeeded of %s", r.State, r.Reason, r.RollbackOf, r2.ID)
	}
}
