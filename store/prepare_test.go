package store_test

import (
	"encoding/json"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

// wantErr checks err against want: "" means no error, anything else is the
// exact silo.CodeInvalid message a user sees.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want %q", want)
	}
	if got := silo.ErrorCode(err); got != silo.CodeInvalid {
		t.Errorf("got code %v, want %v", got, silo.CodeInvalid)
	}
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}

func TestPrepareAccount(t *testing.T) {
	created := now.Add(-time.Hour)
	for _, tc := range []struct {
		name        string
		in          silo.Account
		err         string
		wantCreated time.Time
		wantUpdated time.Time
	}{
		{"defaults times", silo.Account{ID: "a1", Kind: silo.KindTenant, State: silo.StateActive}, "", now, now},
		{"keeps times", silo.Account{ID: "a1", Kind: silo.KindTenant, State: silo.StateActive, Created: created}, "", created, created},
		{"unknown kind", silo.Account{ID: "a1", Kind: "pet", State: silo.StateActive}, `account "a1" has unknown kind "pet"; use one of production, tenant, developer, environment`, time.Time{}, time.Time{}},
		{"no state", silo.Account{ID: "a1", Kind: silo.KindTenant}, `account "a1" has no state`, time.Time{}, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.in
			wantErr(t, store.PrepareAccount(&a, now), tc.err)
			if !a.Created.Equal(tc.wantCreated) || !a.Updated.Equal(tc.wantUpdated) {
				t.Errorf("got created %v updated %v, want %v and %v", a.Created, a.Updated, tc.wantCreated, tc.wantUpdated)
			}
		})
	}
	t.Run("bad ID", func(t *testing.T) {
		a := silo.Account{ID: "Not_An_ID", Kind: silo.KindTenant, State: silo.StateActive}
		if err := store.CheckAccount(a); silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("got %v, want a %v error", err, silo.CodeInvalid)
		}
	})
}

func TestFilterExcludesDeleted(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    store.Filter
		want bool
	}{
		{"zero", store.Filter{}, true},
		{"include deleted", store.Filter{IncludeDeleted: true}, false},
		{"state active", store.Filter{State: silo.StateActive}, false},
		{"state deleted", store.Filter{State: silo.StateDeleted}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.ExcludesDeleted(); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPrepareResource(t *testing.T) {
	r := silo.Resource{Type: "function", Name: "f"}
	wantErr(t, store.PrepareResource("a1", &r), "")
	if r.Hash != r.ComputeHash() {
		t.Errorf("got hash %q, want %q", r.Hash, r.ComputeHash())
	}
	kept := silo.Resource{Type: "function", Name: "f", Hash: "h"}
	wantErr(t, store.PrepareResource("a1", &kept), "")
	if kept.Hash != "h" {
		t.Errorf("got hash %q, want %q", kept.Hash, "h")
	}
	noName := silo.Resource{Type: "function"}
	wantErr(t, store.PrepareResource("a1", &noName), `resource "function/" of account "a1" needs a type and a name`)
}

func TestPrepareIntent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        store.Intent
		err       string
		wantState store.IntentState
	}{
		{"defaults", store.Intent{Key: "k"}, "", store.IntentPending},
		{"keeps state", store.Intent{Key: "k", State: store.IntentDone}, "", store.IntentDone},
		{"no key", store.Intent{}, "an intent needs a key", ""},
		{"unknown state", store.Intent{Key: "k", State: "lost"}, `intent "k" has unknown state "lost"; use pending, done or failed`, "lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			err := store.PrepareIntent(&in, now)
			wantErr(t, err, tc.err)
			if in.State != tc.wantState {
				t.Errorf("got state %q, want %q", in.State, tc.wantState)
			}
			if err == nil && (!in.Created.Equal(now) || !in.Updated.Equal(now)) {
				t.Errorf("got created %v updated %v, want %v", in.Created, in.Updated, now)
			}
		})
	}
}

func TestCheckFinish(t *testing.T) {
	wantErr(t, store.CheckFinish(7, store.IntentDone), "")
	wantErr(t, store.CheckFinish(7, store.IntentFailed), "")
	wantErr(t, store.CheckFinish(7, store.IntentPending), `intent 7 cannot finish as "pending"; use done or failed`)
}

func TestPrepareKey(t *testing.T) {
	k := store.APIKey{ID: "sk_a", Hash: []byte{1}}
	wantErr(t, store.PrepareKey(&k, now), "")
	if !k.Created.Equal(now) {
		t.Errorf("got created %v, want %v", k.Created, now)
	}
	noHash := store.APIKey{ID: "sk_a"}
	wantErr(t, store.PrepareKey(&noHash, now), "an API key needs an ID and a hash")
}

func TestPrepareRelease(t *testing.T) {
	r := store.Release{ID: "r1"}
	wantErr(t, store.PrepareRelease(&r, now), "")
	if !r.Created.Equal(now) {
		t.Errorf("got created %v, want %v", r.Created, now)
	}
	var noID store.Release
	wantErr(t, store.PrepareRelease(&noID, now), "a release needs an ID")
}

func TestPrepareAuditEvent(t *testing.T) {
	e, err := store.PrepareAuditEvent(store.AuditEvent{Action: "key.issue", Detail: json.RawMessage(`{ "a" : 1 }`)}, now)
	wantErr(t, err, "")
	if !e.Time.Equal(now) || string(e.Detail) != `{"a":1}` {
		t.Errorf("got time %v detail %s, want %v and {\"a\":1}", e.Time, e.Detail, now)
	}
	_, err = store.PrepareAuditEvent(store.AuditEvent{}, now)
	wantErr(t, err, "an audit event needs an action")
	_, err = store.PrepareAuditEvent(store.AuditEvent{Action: "key.issue", Detail: json.RawMessage(`{`)}, now)
	wantErr(t, err, `audit event "key.issue": detail is not valid JSON`)
}

func TestCheckSetting(t *testing.T) {
	wantErr(t, store.CheckSetting("domain"), "")
	wantErr(t, store.CheckSetting(""), "a setting needs a name")
}

func TestCheckPurge(t *testing.T) {
	if err := store.CheckPurge(silo.Account{ID: "a1", State: silo.StateDeleted}); err != nil {
		t.Errorf("got error %v, want none", err)
	}
	err := store.CheckPurge(silo.Account{ID: "a1", State: silo.StateActive})
	want := `cannot purge account "a1": it is active, not deleted; delete it first`
	if silo.ErrorCode(err) != silo.CodeConflict || err.Error() != want {
		t.Errorf("got %v, want a %v error %q", err, silo.CodeConflict, want)
	}
}
