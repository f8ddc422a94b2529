package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// silo keys remove is the way out of a fleet the isolation gate refuses
// for a key record: each kind of record the verifier flags is planted in
// the store (no command writes one); a deploy that changes what the key
// reaches (acme's functions, for a key bound to acme) is refused naming
// the command, and the same deploy passes once the record is removed; a
// deploy that changes nothing it reaches (a key bound to the production
// account or to a deleted account, a deploy changing tenants only) is a
// hotfix: it rolls out with a release.gate_warning audit event naming the
// command. Either way the command removes the record with an audit event.
func TestKeysRemoveClearsAFlaggedKeyRecord(t *testing.T) {
	file, src := initProject(t)
	changed := strings.Replace(string(src), "Hello, ", "Hi, ", 1)
	for _, tc := range []struct {
		name   string
		key    store.APIKey
		says   string // what silo keys remove prints as the problem
		hotfix bool   // the deploy passes with a warning
	}{
		{"bound to the production account", store.APIKey{ID: "sk_production_0123456789abcdef", Account: silo.ProductionID}, "I2: API key sk_production_0123456789abcdef is bound to the production account", true},
		{"bound to an account it does not name", store.APIKey{ID: "sk_globex_0123456789abcdef", Account: "acme"}, `I4: API key sk_globex_0123456789abcdef names account "globex" but is bound to acme`, false},
		{"live on a deleted account", store.APIKey{ID: "sk_gone_0123456789abcdef", Account: "gone"}, "I5: API key sk_gone_0123456789abcdef is live but its account gone is deleted", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(file, src, 0o644); err != nil {
				t.Fatal(err)
			}
			c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
			c.ok("tenant", "create", "acme")
			c.ok("tenant", "create", "globex")
			c.ok("tenant", "create", "gone")
			c.ok("tenant", "delete", "gone", "--yes")
			plantKey(t, c, tc.key)
			if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.hotfix {
				code, out, errOut := c.run("deploy")
				if code != 0 || !strings.Contains(out, "succeeded") {
					t.Fatalf("hotfix deploy: exit %d, %s%s; want the rollout succeeded", code, out, errOut)
				}
				if want := "silo: warning: "; !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, "silo keys remove "+tc.key.ID) {
					t.Errorf("hotfix deploy's stderr %q; want a line starting %q naming silo keys remove %s", errOut, want, tc.key.ID)
				}
				if got := auditActions(t, c, "release.gate_warning"); got != 1 {
					t.Errorf("%d release.gate_warning audit events after the hotfix, want 1", got)
				}
			} else {
				c.fails("(repair: silo keys remove "+tc.key.ID+")", "deploy")
			}

			out := c.ok("keys", "remove", tc.key.ID)
			if want := "removed key record " + tc.key.ID + " (bound to " + string(tc.key.Account) + "): " + tc.says; !strings.Contains(out, want) {
				t.Errorf("silo keys remove: %q, want it to say %q", out, want)
			}
			if got := auditActions(t, c, "key.remove"); got != 1 {
				t.Errorf("%d key.remove audit events, want 1", got)
			}
			c.fails("there is no API key", "keys", "remove", tc.key.ID)
			if tc.hotfix {
				return
			}
			if out := c.ok("deploy"); !strings.Contains(out, "succeeded") {
				t.Errorf("deploy after the repair: %s; want the rollout succeeded", out)
			}
		})
	}
}

// The must-not twin: silo keys remove refuses a key the verifier finds
// nothing wrong with, revoked or not, and changes nothing: the key stays
// as it was and no audit event is written.
func TestKeysRemoveRefusesASoundKey(t *testing.T) {
	c := newCLI(t)
	out := c.ok("tenant", "create", "acme", "--output", "json")
	keys := listKeys(t, c, "acme")
	if len(keys) != 1 {
		t.Fatalf("acme has %d keys after its creation (%s), want 1", len(keys), out)
	}
	id := keys[0].ID
	c.fails("the isolation verifier finds nothing wrong with its record: silo keys remove removes only a key record it flags, and nothing was changed. To stop the key working, revoke it: silo keys revoke acme "+id, "keys", "remove", id)
	if d := cmp.Diff(keys, listKeys(t, c, "acme")); d != "" {
		t.Errorf("a refused remove changed acme's keys (-before +after):\n%s", d)
	}
	c.ok("keys", "revoke", "acme", id)
	c.fails("finds nothing wrong with its record", "keys", "remove", id)
	if got := listKeys(t, c, "acme"); len(got) != 1 || got[0].Revoked == nil {
		t.Errorf("acme's keys after a refused remove of a revoked key: %+v, want the one key, revoked", got)
	}
	if got := auditActions(t, c, "key.remove"); got != 0 {
		t.Errorf("%d key.remove audit events after refused removes, want 0", got)
	}
}

// plantKey stores key k in c's data dir, past every command.
func plantKey(t *testing.T, c *cli, k store.APIKey) {
	t.Helper()
	a, err := openApp(context.Background(), &globals{dataDir: c.dataDir, stdout: &strings.Builder{}, stderr: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	k.Hash, k.Created = make([]byte, 32), time.Now()
	if err := a.store.Update(context.Background(), func(tx store.Tx) error { return tx.PutKey(k) }); err != nil {
		t.Fatal(err)
	}
}

func listKeys(t *testing.T, c *cli, id silo.AccountID) []store.APIKey {
	t.Helper()
	var ks []store.APIKey
	withStore(t, c, func(tx store.Tx) error {
		var err error
		ks, err = tx.Keys(id)
		return err
	})
	return ks
}

// auditActions counts the audit events with action in c's data dir.
func auditActions(t *testing.T, c *cli, action string) int {
	t.Helper()
	n := 0
	withStore(t, c, func(tx store.Tx) error {
		es, err := tx.Audit(0, 0)
		for _, e := range es {
			if e.Event.Action == action {
				n++
			}
		}
		return err
	})
	return n
}

func withStore(t *testing.T, c *cli, fn func(tx store.Tx) error) {
	t.Helper()
	a, err := openApp(context.Background(), &globals{dataDir: c.dataDir, stdout: &strings.Builder{}, stderr: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.store.View(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}
