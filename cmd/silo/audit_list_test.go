package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/silo-run/silo/store"
)

// TestAuditList lists the audit log whole, by account and by page, locally
// and (the same output) through a server; a bad --limit is a usage error.
func TestAuditList(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	c.ok("keys", "create", "acme", "--name", "ci")

	var all []store.AuditEntry
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "audit", "list")), &all); err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for i, e := range all {
		actions[e.Event.Action+" "+string(e.Event.Account)]++
		if i > 0 && e.Seq <= all[i-1].Seq {
			t.Fatalf("audit list is not in sequence order: %d after %d", e.Seq, all[i-1].Seq)
		}
	}
	for _, want := range []string{"account.create acme", "account.create globex"} {
		if actions[want] != 1 {
			t.Errorf("audit list: %v; want one %q", actions, want)
		}
	}

	var acme []store.AuditEntry
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "audit", "list", "--account", "acme")), &acme); err != nil {
		t.Fatal(err)
	}
	if len(acme) == 0 || len(acme) >= len(all) {
		t.Fatalf("audit list --account acme: %d of %d entries; want some, not all", len(acme), len(all))
	}
	for _, e := range acme {
		if e.Event.Account != "acme" {
			t.Errorf("audit list --account acme listed an entry of %q", e.Event.Account)
		}
	}

	page := c.ok("audit", "list", "--limit", "1")
	if !strings.Contains(page, "(more: --after ") || strings.Count(page, "\n") != 3 {
		t.Errorf("audit list --limit 1:\n%s\nwant the header, one entry and how to see more", page)
	}
	var rest []store.AuditEntry
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "audit", "list", "--after", "1")), &rest); err != nil {
		t.Fatal(err)
	}
	if len(rest) != len(all)-1 || rest[0].Seq != all[1].Seq {
		t.Errorf("audit list --after 1: %d entries from %d; want %d from %d", len(rest), rest[0].Seq, len(all)-1, all[1].Seq)
	}
	c.fails("--limit must be between 1 and 1000", "audit", "list", "--limit", "0")
}

func TestAuditListThroughAServer(t *testing.T) {
	t.Parallel()
	f := startRemote(t)
	if out := f.same("audit", "list"); !strings.Contains(out, "account.create") {
		t.Fatalf("audit list through a server:\n%s", out)
	}
	f.same("audit", "list", "--account", "demo-acme", "--limit", "2")
}
