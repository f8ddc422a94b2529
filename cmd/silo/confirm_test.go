package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
)

// scaffold makes a silo init app with tenant acme (and globex) on it.
func scaffold(t *testing.T) *cli {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	if _, _, err := runCLI(t, "init", dir); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: filepath.Join(dir, "silo.yaml")}
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	return c
}

// edit rewrites the app's silo.yaml with the replacements old, new, ...
func (c *cli) edit(pairs ...string) {
	c.t.Helper()
	b, err := os.ReadFile(c.file)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(c.file, []byte(strings.NewReplacer(pairs...).Replace(string(b))), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// dropVisits removes the scaffold's visits table: applying it destroys data.
var dropVisits = []string{"    tables: {visits: read-write}\n", "", "tables:\n  visits: {}\n", ""}

// Destroying data needs the user's word: without --yes (and without a
// terminal) apply and tenant delete refuse and change nothing; with --yes
// (the twins) they go ahead. A change that destroys nothing needs no word.
func TestDestroyingDataNeedsConfirmation(t *testing.T) {
	t.Parallel()
	c := scaffold(t)
	before := stateOf(t, c)
	c.fails("deleting globex destroys its account and all its data, which cannot be undone; nothing was changed. Rerun with --yes", "tenant", "delete", "globex")
	c.edit(dropVisits...)
	c.fails("this apply destroys data (deletes table/visits in acme, globex)", "apply", "--all")
	c.fails("this apply destroys data (deletes table/visits in acme)", "apply", "acme")
	if d := cmp.Diff(before, stateOf(t, c)); d != "" {
		t.Fatalf("refused commands changed the state (-before +after):\n%s", d)
	}

	c.ok("tenant", "delete", "globex", "--yes")
	if out := c.ok("apply", "--all", "--yes"); !strings.Contains(out, "delete table/visits") {
		t.Fatalf("apply --all --yes:\n%s\nwant table/visits deleted", out)
	}
	// Nothing destroys data now: no confirmation needed.
	c.edit(`"Hello, `, `"Hi, `)
	c.ok("apply", "--all")
}

// A saved plan is applied exactly, and refused when the fleet moved since it
// was made; the twin applies it when nothing moved.
func TestSavedPlan(t *testing.T) {
	t.Parallel()
	c := scaffold(t)
	plan := filepath.Join(t.TempDir(), "plan.json")
	c.edit(`"Hello, `, `"Hi, `)
	out := c.ok("plan", "--all", "--out", plan)
	if !strings.Contains(out, `"Hello, acme (plan free)" → "Hi, acme (plan free)"`) {
		t.Fatalf("plan --out:\n%s", out)
	}
	// The fleet moves: a tenant is created after the plan was made.
	c.ok("tenant", "create", "initech")
	before := stateOf(t, c)
	c.fails("the fleet changed since the plan was made (initech is new)", "apply", "--plan", plan)
	if d := cmp.Diff(before, stateOf(t, c)); d != "" {
		t.Fatalf("a refused saved plan changed the state (-before +after):\n%s", d)
	}

	// Twin: plan again and apply at once.
	c.ok("plan", "--all", "--out", plan)
	var res struct {
		Release string
		Applied []struct{ Account silo.AccountID }
	}
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "apply", "--plan", plan)), &res); err != nil {
		t.Fatal(err)
	}
	got := map[silo.AccountID]bool{}
	for _, p := range res.Applied {
		got[p.Account] = true
	}
	if !got["acme"] || !got["globex"] || !got["initech"] {
		t.Fatalf("apply --plan applied %v; want acme, globex and initech", got)
	}
	if out := c.ok("plan", "--all"); !strings.Contains(out, "nothing to do") {
		t.Fatalf("plan after applying the saved plan:\n%s\nwant nothing to do", out)
	}
	// Applying it a second time: every account it names has changed since.
	c.fails("the fleet changed since the plan was made", "apply", "--plan", plan)
	c.fails("is not a plan written by silo plan --out", "apply", "--plan", c.file)
	c.fails("--plan applies the saved plan's accounts", "apply", "--all", "--plan", plan)
}
