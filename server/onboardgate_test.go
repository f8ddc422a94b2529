package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	specs "github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// storeCurrent stores a release of the test stack, changed by mutate, and
// makes it current directly in the store, past every gate: what a silo
// older than the gate could have left behind.
func storeCurrent(t *testing.T, f *fixture, mutate func(*specs.Stack)) engine.Release {
	t.Helper()
	st, err := specs.Parse("silo.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(st)
	}
	rel, stored, err := engine.NewRelease(st, map[string]string{"ingest": "sha256:aa"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	err = f.store.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.PutRelease(stored); err != nil {
			return err
		}
		_, err := tx.SetCurrentRelease(rel.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// TestAPIOnboardingGatesTheCurrentRelease: over the API, creating an
// account (POST /v1/accounts) and changing its parameters (PATCH) on a
// current release that never passed the isolation gate are answered 422
// failed_check naming the release, and create or change nothing; the twin:
// on a release that passes the gate both go through.
func TestAPIOnboardingGatesTheCurrentRelease(t *testing.T) {
	f := start(t)
	good := storeCurrent(t, f, nil)
	if r, b := send(t, f, http.MethodPost, "/v1/accounts", `{"id":"acme"}`, true); r.StatusCode != http.StatusCreated {
		t.Fatalf("POST acme on a release that passes the gate: %d %s; want 201", r.StatusCode, b)
	}
	bad := storeCurrent(t, f, func(s *specs.Stack) {
		fn := s.Functions["ingest"]
		fn.Tables = map[string]specs.Access{"*": specs.AccessRead}
		s.Functions["ingest"] = fn
	})
	refused := func(what string, r *http.Response, b []byte, acct string) {
		t.Helper()
		var body struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(b, &body)
		e := body.Error
		if r.StatusCode != http.StatusUnprocessableEntity || e.Code != string(silo.CodeFailedCheck) || !strings.Contains(e.Message, "release "+bad.ID+" would break isolation in account "+acct) {
			t.Errorf("%s on an ungated release: %d %s; want 422 failed_check naming release %s and account %s", what, r.StatusCode, b, bad.ID, acct)
		}
	}
	r, b := send(t, f, http.MethodPost, "/v1/accounts", `{"id":"globex"}`, true)
	refused("POST globex", r, b, "globex")
	r, b = send(t, f, http.MethodPatch, "/v1/accounts/acme", `{"params":{"plan":"pro"}}`, true)
	refused("PATCH acme", r, b, "acme")
	if r, b := send(t, f, http.MethodGet, "/v1/accounts/globex", "", true); r.StatusCode != http.StatusNotFound {
		t.Errorf("GET globex after its refused creation: %d %s; want 404", r.StatusCode, b)
	}
	if a, err := f.client.Show(context.Background(), "acme"); err != nil || a.Account.Params["plan"] != "" || a.Account.Release != good.ID {
		t.Errorf("acme after its refused parameter change: %+v, %v; want no plan set, on release %s", a.Account, err, good.ID)
	}

	storeCurrent(t, f, nil)
	if r, b := send(t, f, http.MethodPost, "/v1/accounts", `{"id":"globex"}`, true); r.StatusCode != http.StatusCreated {
		t.Errorf("POST globex on a release that passes the gate: %d %s; want 201", r.StatusCode, b)
	}
	if r, b := send(t, f, http.MethodPatch, "/v1/accounts/acme", `{"params":{"plan":"pro"}}`, true); r.StatusCode != http.StatusOK {
		t.Errorf("PATCH acme on a release that passes the gate: %d %s; want 200", r.StatusCode, b)
	}
}
