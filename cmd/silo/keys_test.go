package main

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/silo-run/silo/store"
)

// TestKeysRotate checks that rotation keeps the key's name, revokes exactly
// the old key, names its output fields like tenant create, and refuses a
// key that is revoked already.
func TestKeysRotate(t *testing.T) {
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
	c.fails(`has no key "nosuch"`, "keys", "rotate", "acme", "nosuch")
}
