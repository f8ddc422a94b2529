package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/silo-run/silo/store"
)

// TestKeysRotate checks that rotation keeps the key's name, revokes exactly
// the old key, names its output fields like tenant create, and refuses a
// key that is revoked already.
func TestKeysRotate(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	var created map[string]string
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "keys", "create", "acme", "--name", "ci")), &created); err != nil {
		t.Fatal(err)
	}
	if created["key_id"] == "" || created["key"] == "" || created["name"] != "ci" {
		t.Fatalf("keys create -o json: %v; want key, key_id and name", created)
	}
	var rotated map[string]string
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "keys", "rotate", "acme", created["key_id"])), &rotated); err != nil {
		t.Fatal(err)
	}
	if rotated["revoked"] != created["key_id"] || rotated["key_id"] == created["key_id"] || rotated["name"] != "ci" {
		t.Fatalf("keys rotate -o json: %v; want the old key revoked and a new key named ci", rotated)
	}
	var keys []store.APIKey
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "keys", "list", "acme")), &keys); err != nil {
		t.Fatal(err)
	}
	state := map[string]string{}
	for _, k := range keys {
		if k.Name != "ci" {
			continue
		}
		state[k.ID] = "active"
		if k.Revoked != nil {
			state[k.ID] = "revoked"
		}
	}
	want := map[string]string{created["key_id"]: "revoked", rotated["key_id"]: "active"}
	if d := cmp.Diff(want, state); d != "" {
		t.Fatalf("keys named ci after rotation (-want +got):\n%s", d)
	}
	c.fails("is revoked already", "keys", "rotate", "acme", created["key_id"])

	// With a grace period the old key stays active until it ends.
	out := c.ok("keys", "rotate", "acme", rotated["key_id"], "--grace", "24h")
	if !strings.Contains(out, rotated["key_id"]+" keeps working for 24h0m0s, then is revoked") {
		t.Fatalf("keys rotate --grace 24h:\n%s", out)
	}
	if out := c.ok("keys", "list", "acme"); !strings.Contains(out, "active until ") {
		t.Fatalf("keys list after a rotation with grace:\n%s\nwant the old key active until a time", out)
	}
	// A key in its grace period is being rotated, not revoked: a second
	// rotation says when it stops working and how to end it now.
	c.fails("is being rotated: it keeps working until ", "keys", "rotate", "acme", rotated["key_id"])
	c.fails("; silo keys revoke acme "+rotated["key_id"]+" ends it now", "keys", "rotate", "acme", rotated["key_id"])
	c.ok("keys", "revoke", "acme", rotated["key_id"])
	c.fails("is revoked already", "keys", "rotate", "acme", rotated["key_id"])
	c.fails("--grace must be between 0 and 720h0m0s", "keys", "rotate", "acme", rotated["key_id"], "--grace", "800h")
	c.fails(`has no key "nosuch"`, "keys", "rotate", "acme", "nosuch")
}

// The keys commands name a missing account in the words every other command
// uses, and issue nothing; the twin: the same commands for an account that
// exists succeed.
func TestKeysOfMissingAccount(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	before := stateOf(t, c)
	for _, args := range [][]string{
		{"keys", "create", "nosuch"},
		{"keys", "list", "nosuch"},
	} {
		c.fails(`silo: no account "nosuch"; silo tenant list shows the accounts`+"\n", args...)
	}
	if diff := cmp.Diff(before, stateOf(t, c)); diff != "" {
		t.Fatalf("a refused keys command changed the state (-before +after):\n%s", diff)
	}
	if out := c.ok("keys", "create", "acme"); !strings.Contains(out, "for acme (shown once") {
		t.Errorf("keys create acme: %s", out)
	}
	c.ok("keys", "list", "acme")
}
