package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// silo apply --plan refuses a plan file whose changes were edited (a
// delete removed from one account's plan), naming the account and
// changing nothing; the twin applies the unedited file.
func TestSavedPlanEditedIsRefused(t *testing.T) {
	c := scaffold(t)
	plan := filepath.Join(t.TempDir(), "plan.json")
	c.edit(dropVisits...)
	c.ok("plan", "--all", "--out", plan)
	b, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	var sp map[string]any
	if err := json.Unmarshal(b, &sp); err != nil {
		t.Fatal(err)
	}
	edited := false
	for _, p := range sp["plans"].([]any) {
		p := p.(map[string]any)
		if p["account"] != "acme" {
			continue
		}
		var keep []any
		for _, ch := range p["changes"].([]any) {
			if ch.(map[string]any)["op"] != "delete" {
				keep = append(keep, ch)
			}
		}
		edited = len(keep) < len(p["changes"].([]any))
		p["changes"] = keep
	}
	if !edited {
		t.Fatalf("the plan deletes nothing in acme; update this test:\n%s", b)
	}
	out, _ := json.Marshal(sp)
	bad := filepath.Join(t.TempDir(), "edited.json")
	if err := os.WriteFile(bad, out, 0o600); err != nil {
		t.Fatal(err)
	}
	before := stateOf(t, c)
	c.fails("the plan file does not match what silo plans for acme now: it was edited or the fleet changed; nothing was changed", "apply", "--plan", bad, "--yes")
	if d := cmp.Diff(before, stateOf(t, c)); d != "" {
		t.Fatalf("a refused edited plan changed the state (-before +after):\n%s", d)
	}

	// Twin: the file as silo wrote it applies.
	c.ok("apply", "--plan", plan, "--yes")
	if out := c.ok("plan", "--all"); !strings.Contains(out, "nothing to do") {
		t.Fatalf("plan after applying the saved plan:\n%s\nwant nothing to do", out)
	}
}
