package console_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

// TestAuditNamesWhoActed: each path records who acted. The API names its
// caller by a hash of the operator token, the console its session (not
// the API it calls in process), the reaper itself, and a call with no
// caller (the CLI on the data dir) the process's own actor. Two console
// sessions are told apart.
func TestAuditNamesWhoActed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0)
	f.sp.Tenant(t, "acme")
	f.sp.Tenant(t, "globex")
	f.sp.Env(t, "short1", platform.EnvTest, time.Minute)

	last := func(action string, id silo.AccountID) string {
		t.Helper()
		es, err := f.p.Plane.AuditLog(ctx, 0, 0, id)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(es) - 1; i >= 0; i-- {
			if es[i].Event.Action == action {
				return es[i].Event.Actor
			}
		}
		t.Fatalf("no %s of %s in the audit log", action, id)
		return ""
	}

	// The API, with the operator token.
	c := server.NewClient(f.srv.URL, f.token, nil)
	if _, err := c.Suspend(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	apiActor := server.TokenActor(f.token)
	if got := last("account.suspend", "acme"); got != apiActor {
		t.Errorf("API: got actor %q, want %q", got, apiActor)
	}

	// The console: each session is its own actor, not the API's.
	var sessions []string
	for _, act := range []string{"suspend", "resume"} {
		b := f.browser(t)
		b.signIn()
		pg := b.post("/console/tenants/globex/"+act, url.Values{"csrf": {b.csrf("/console/tenants/globex")}})
		if pg.status != http.StatusSeeOther {
			t.Fatalf("console %s: %d %s", act, pg.status, pg.body)
		}
		sessions = append(sessions, last("account."+act, "globex"))
	}
	for i, got := range sessions {
		if len(got) <= len("console:session-") || got[:len("console:session-")] != "console:session-" {
			t.Errorf("console session %d: got actor %q, want console:session-...", i, got)
		}
	}
	if sessions[0] == sessions[1] {
		t.Errorf("two console sessions recorded the same actor %q", sessions[0])
	}

	// The reaper, when the clock passes an environment's expiry.
	if gone := f.sp.Clock().Advance(2 * time.Minute); len(gone) != 1 {
		t.Fatalf("reaper tore down %v, want short1", gone)
	}
	if got := last("account.delete", "short1"); got != platform.ActorReaper {
		t.Errorf("reaper: got actor %q, want %q", got, platform.ActorReaper)
	}

	// No caller named (the CLI on the data dir): the process's actor.
	if err := f.p.SetState(ctx, "acme", silo.StateActive); err != nil {
		t.Fatal(err)
	}
	if got := last("account.active", "acme"); got != "silotest" {
		t.Errorf("no caller: got actor %q, want the platform's own (silotest)", got)
	}

	// Must-not twin of the override: a named actor is what the store records.
	if err := f.p.Store.Update(store.WithActor(ctx, "cli:someone"), func(tx store.Tx) error {
		_, err := tx.AppendAudit(store.AuditEvent{Actor: "silotest", Action: "test.actor", Account: "acme"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := last("test.actor", "acme"); got != "cli:someone" {
		t.Errorf("store: got actor %q, want cli:someone", got)
	}

}
