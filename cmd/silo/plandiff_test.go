package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanShowsAttributes checks that a plan shows each changed attribute as
// before → after and warns when a change destroys data, on the scaffold of
// silo init edited the way a user would; the twin is the unchanged plan.
func TestPlanShowsAttributes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "demo")
	if _, _, err := runCLI(t, "init", dir); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	c.file = filepath.Join(dir, "silo.yaml")
	c.ok("tenant", "create", "acme")
	if out := c.ok("plan", "acme"); strings.Contains(out, "→") || strings.Contains(out, "destroys") {
		t.Fatalf("plan of an unchanged app:\n%s\nwant no changes", out)
	}
	b, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.NewReplacer(
		"    tables: {visits: read-write}\n", "    memory: 128MiB\n    timeout: 2m\n",
		"tables:\n  visits: {}\n", "",
		`greeting: "Hello, ${tenant.id}`, `greeting: "Howdy, ${tenant.id}`,
	).Replace(string(b)) + "\nschedules:\n  tidy: {function: hello, every: 1h}\n"
	if err := os.WriteFile(c.file, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	out := c.ok("plan", "acme")
	for _, want := range []string{
		`value: "Hello, acme (plan free)" → "Howdy, acme (plan free)"`,
		`tables.visits: "read-write" → (none)`,
		"delete table/visits",
		"! destroys the table's data in this account",
		"create schedule/tidy",
		"every: 1h\n", // as silo.yaml writes them, not in bytes and nanoseconds
		"memory: 64MiB → 128MiB\n",
		"timeout: 5s → 2m\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan after the edit:\n%s\nwant a line with %q", out, want)
		}
	}
}
