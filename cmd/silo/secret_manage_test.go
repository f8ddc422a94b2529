package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// remoteIn runs a command against the server with stdin as its standard
// input.
func (f *remoteFixture) remoteIn(stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	args = append(args, "--data-dir", f.client, "--file", f.file, "--server", f.url, "--token", f.token)
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// startWithTenants is startRemote with tenants ids created too.
func startWithTenants(t *testing.T, ids ...string) *remoteFixture {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return startRemoteOn(t, filepath.Join(wd, "..", "..", "examples", "findings", "silo.yaml"), func(f *remoteFixture) {
		f.local("env", "create", "demo-acme", "--kind", "demo", "--ttl", "72h")
		for _, id := range ids {
			f.local("tenant", "create", id)
		}
	})
}

// secretEvents returns the audit events of action on the server's data
// dir, each as "account name detail".
func secretEvents(t *testing.T, f *remoteFixture, action string) []string {
	t.Helper()
	code, out, errOut := f.remoteRun("-o", "json", "audit", "list")
	if code != 0 {
		t.Fatalf("audit list: exit %d: %s", code, errOut)
	}
	var es []store.AuditEntry
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		if e.Event.Action == action {
			var d bytes.Buffer
			if err := json.Compact(&d, e.Event.Detail); err != nil {
				t.Fatal(err)
			}
			got = append(got, string(e.Event.Account)+" "+d.String())
		}
	}
	return got
}

// TestSecretDeleteAndListCommands: silo secret delete removes one tenant's
// value, and silo secret list (the same output on the data dir and
// through the server) shows it not set there and still set in the other
// tenant; deleting again says it was not set and succeeds, as a repeated
// deletion should; each deletion is audited; a wrong call, an unknown
// account or a name neither declared nor set (a typo) fails with one clear
// message and audits nothing.
func TestSecretDeleteAndListCommands(t *testing.T) {
	f := startWithTenants(t, "acme", "globex")
	for _, id := range []string{"acme", "globex"} {
		if code, _, errOut := f.remoteIn("ghp_"+id+"\n", "secret", "set", id, "github-token"); code != 0 {
			t.Fatalf("secret set %s: exit %d: %s", id, code, errOut)
		}
	}
	if out := f.same("secret", "list", "acme"); !regexpLine(out, "github-token", "set") {
		t.Errorf("secret list acme before the deletion:\n%s\nwant github-token set", out)
	}

	if out := f.remote("secret", "delete", "acme", "github-token"); out != "secret github-token deleted from acme\n" {
		t.Errorf("secret delete: %q", out)
	}
	if out := f.remote("secret", "delete", "acme", "github-token"); out != "secret github-token was not set in acme; nothing to delete\n" {
		t.Errorf("secret delete again: %q", out)
	}
	var del map[string]any
	if err := json.Unmarshal([]byte(f.remote("-o", "json", "secret", "delete", "acme", "github-token")), &del); err != nil || del["deleted"] != false {
		t.Errorf("secret delete -o json again: %v, %v; want deleted false", del, err)
	}

	if out := f.same("secret", "list", "acme"); !regexpLine(out, "github-token", "not set") {
		t.Errorf("secret list acme after the deletion:\n%s\nwant github-token not set", out)
	}
	if out := f.same("secret", "list", "globex"); !regexpLine(out, "github-token", "set") || strings.Contains(out, "not set") {
		t.Errorf("secret list globex after acme's deletion:\n%s\nwant github-token set", out)
	}
	var ss []control.SecretState
	if err := json.Unmarshal([]byte(f.remote("-o", "json", "secret", "list", "acme")), &ss); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]control.SecretState{{Name: "github-token", Declared: true}}, ss); diff != "" {
		t.Errorf("secret list -o json acme (-want +got):\n%s", diff)
	}

	want := []string{`acme {"name":"github-token","was_set":true}`, `acme {"name":"github-token","was_set":false}`, `acme {"name":"github-token","was_set":false}`}
	if diff := cmp.Diff(want, secretEvents(t, f, "secret.delete")); diff != "" {
		t.Errorf("secret.delete audit events (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		args []string
		exit int
		want string
	}{
		{[]string{"secret", "delete", "nosuch", "github-token"}, 1, `no account "nosuch"`},
		{[]string{"secret", "delete", "acme", "github-tokn"}, 1, `secret github-tokn is not declared in account acme and holds no value there (did you mean "github-token"?); silo secret list acme shows its secrets`},
		{[]string{"secret", "delete", "acme", "nosuch"}, 1, `secret nosuch is not declared in account acme and holds no value there; silo secret list acme shows its secrets`},
		{[]string{"secret", "list", "nosuch"}, 1, `no account "nosuch"`},
		{[]string{"secret", "delete", "acme"}, 2, "needs a tenant ID and a secret name"},
		{[]string{"secret", "delete", "Not-An-ID", "github-token"}, 2, ""},
		{[]string{"secret", "list"}, 2, "needs a tenant ID"},
	} {
		code, out, errOut := f.remoteRun(tc.args...)
		if code != tc.exit || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 || out != "" {
			t.Errorf("silo %s: exit %d, stdout %q, stderr %q; want exit %d and one line saying %q", strings.Join(tc.args, " "), code, out, errOut, tc.exit, tc.want)
		}
	}
	if diff := cmp.Diff(want, secretEvents(t, f, "secret.delete")); diff != "" {
		t.Errorf("secret.delete audit events after the refused calls (-want +got):\n%s", diff)
	}
}

// regexpLine reports whether out has a line whose fields are name and then
// exactly state.
func regexpLine(out, name, state string) bool {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == name && strings.Join(f[1:], " ") == state {
			return true
		}
	}
	return false
}

// TestSecretSetAll: silo secret set --all sets a value read once in every
// tenant account, each audited with the value's full length, and in no
// environment or production account unless --kinds names them; an
// account being deleted is skipped; an account that fails (its secrets
// file damaged) does not stop the others, and is named at the end with
// exit 1. Wrong calls change nothing.
func TestSecretSetAll(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	f := startRemoteOn(t, filepath.Join(wd, "..", "..", "examples", "findings", "silo.yaml"), func(f *remoteFixture) {
		f.local("env", "create", "demo-acme", "--kind", "demo", "--ttl", "72h")
		for _, id := range []string{"acme", "broken", "globex", "leaving"} {
			f.local("tenant", "create", id)
		}
		// broken's secrets file is damaged: a directory in its place.
		if err := os.Mkdir(filepath.Join(localtest.AccountDir(f.dir, "broken"), "secrets.json"), 0o700); err != nil {
			t.Fatal(err)
		}
		markDeleting(t, filepath.Join(f.dir, "state.db"), "leaving")
	})

	// Wrong calls: usage errors, and no value, set nowhere.
	for _, tc := range []struct {
		stdin string
		args  []string
		exit  int
		want  string
	}{
		{"v", []string{"secret", "set", "--all", "acme", "github-token"}, 2, "a secret name (with --all, no tenant)"},
		{"v", []string{"secret", "set", "acme", "github-token", "--kinds", "tenant"}, 2, "--kinds goes with --all"},
		{"v", []string{"secret", "set", "--all", "--kinds", "tenants", "github-token"}, 2, `unknown account kind "tenants"`},
		{"", []string{"secret", "set", "--all", "github-token"}, 1, "no value on standard input; pipe it in: silo secret set --all github-token < file"},
		{"v", []string{"secret", "set", "--all", "--kinds", "developer", "github-token"}, 1, "no account of kind developer to set secret github-token in"},
	} {
		code, out, errOut := f.remoteIn(tc.stdin, tc.args...)
		if code != tc.exit || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("silo %s: exit %d, stdout %q, stderr %q; want exit %d saying %q", strings.Join(tc.args, " "), code, out, errOut, tc.exit, tc.want)
		}
	}
	if got := secretEvents(t, f, "secret.set"); len(got) != 0 {
		t.Fatalf("wrong calls set secrets: %v", got)
	}

	const value = "ghp_fleet"
	code, out, errOut := f.remoteIn(value+"\n", "secret", "set", "--all", "github-token")
	if code != 1 {
		t.Errorf("secret set --all with a damaged account: exit %d, want 1", code)
	}
	for _, want := range [][]string{
		{"acme", "tenant", "set"},
		{"globex", "tenant", "set"},
		{"leaving", "tenant", "skipped:", "being", "deleted"},
		{"broken", "tenant", "failed:"},
	} {
		if !hasLine(out, want) {
			t.Errorf("secret set --all output:\n%s\nwant a line %q", out, strings.Join(want, " "))
		}
	}
	if !strings.Contains(out, "secret github-token set in 2 of 4 accounts") || strings.Contains(out, "demo-acme") || strings.Contains(out, "production") {
		t.Errorf("secret set --all output:\n%s\nwant 2 of the 4 tenant accounts set, no environment or production account", out)
	}
	if want := "silo: secret github-token was not set in 1 of 4 accounts (broken)"; !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("secret set --all stderr %q; want one line starting %q", errOut, want)
	}
	n := len(value)
	want := []string{
		`acme {"bytes":` + itoa(n) + `,"name":"github-token"}`,
		`globex {"bytes":` + itoa(n) + `,"name":"github-token"}`,
	}
	got := secretEvents(t, f, "secret.set")
	if diff := cmp.Diff(want, got, sortStrings); diff != "" {
		t.Errorf("secret.set audit events after --all (-want +got):\n%s", diff)
	}
	for id, state := range map[string]string{"acme": "set", "globex": "set", "demo-acme": "not set"} {
		if out := f.remote("secret", "list", id); !regexpLine(out, "github-token", state) {
			t.Errorf("secret list %s after --all:\n%s\nwant github-token %s", id, out, state)
		}
	}

	// --kinds widens the fleet: here to environments only.
	code, out, errOut = f.remoteIn(value, "-o", "json", "secret", "set", "--all", "--kinds", "environment", "github-token")
	if code != 0 {
		t.Fatalf("secret set --all --kinds environment: exit %d: %s", code, errOut)
	}
	var rep struct {
		Accounts []fleetOutcome `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]fleetOutcome{{Account: "demo-acme", Kind: silo.KindEnvironment, Result: "set"}}, rep.Accounts); diff != "" {
		t.Errorf("secret set --all --kinds environment -o json (-want +got):\n%s", diff)
	}
	if out := f.remote("secret", "list", "demo-acme"); !regexpLine(out, "github-token", "set") {
		t.Errorf("secret list demo-acme after --kinds environment:\n%s\nwant github-token set", out)
	}
}

var sortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// hasLine reports whether out has a line whose fields begin with want.
func hasLine(out string, want []string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= len(want) && slices.Equal(f[:len(want)], want) {
			return true
		}
	}
	return false
}

// markDeleting puts account id of the state at path in state deleting,
// as a deletion interrupted midway leaves it.
func markDeleting(t *testing.T, path string, id silo.AccountID) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Update(context.Background(), func(tx store.Tx) error {
		a, err := tx.Account(id)
		if err != nil {
			return err
		}
		a.State = silo.StateDeleting
		return tx.UpdateAccount(a)
	})
	if err != nil {
		t.Fatal(err)
	}
}
