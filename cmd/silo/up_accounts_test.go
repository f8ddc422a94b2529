package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
)

// TestUpListsEveryAccountItServes runs silo up on a data dir where tenants
// were created besides its demo tenants: it lists each with its URLs and
// how to get a key (it issues fresh keys only for the accounts it made),
// leaves out a deleted tenant, and names the first upOthersShown of the
// others, counting the rest with how to list them all.
func TestUpListsEveryAccountItServes(t *testing.T) {
	t.Setenv("USER", "tester")
	dir := t.TempDir()
	_, stop := startUp(t, dir)
	stop()
	cli := func(args ...string) {
		t.Helper()
		if out, errOut, err := runCLI(t, append(args, "--data-dir", dir)...); err != nil {
			t.Fatalf("silo %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
	}
	others := []string{"ky", "kz"}
	for i := range upOthersShown - 1 {
		others = append(others, fmt.Sprintf("t%02d", i))
	}
	for _, id := range append(others, "gone") {
		cli("tenant", "create", id)
	}
	cli("tenant", "delete", "gone", "--yes")
	cli("tenant", "suspend", "kz")

	sum, stop := startUp(t, dir)
	defer stop()
	byID := map[string]upAccount{}
	for _, a := range sum.Accounts {
		byID[string(a.ID)] = a
		if a.Kind == silo.KindProduction {
			t.Errorf("silo up lists the production account %s; tenants reach its exports, nobody its URL", a.ID)
		}
	}
	for _, id := range []string{"acme", "globex", "dev-tester"} {
		if a, ok := byID[id]; !ok || a.Key == "" {
			t.Errorf("silo up lists %s as %+v; want it with a fresh key", id, a)
		}
	}
	for _, id := range []string{"ky", "kz"} {
		a, ok := byID[id]
		if !ok || a.Key != "" || !strings.HasPrefix(a.URL, "http://"+id+".localhost:") || !strings.Contains(a.Path, "/t/"+id+"/findings") {
			t.Errorf("silo up lists %s as %+v; want its URLs and no key", id, a)
		}
	}
	if a := byID["kz"]; a.State != "suspended" {
		t.Errorf("silo up lists kz in state %q; want suspended", a.State)
	}
	if _, ok := byID["gone"]; ok {
		t.Errorf("silo up lists the deleted tenant gone: %+v", sum.Accounts)
	}
	// Three it keys, then upOthersShown of the upOthersShown+1 others.
	if len(sum.Accounts) != 3+upOthersShown || sum.More != 1 {
		t.Errorf("silo up lists %d accounts and counts %d more; want %d and 1", len(sum.Accounts), sum.More, 3+upOthersShown)
	}

	var text bytes.Buffer
	printUp(&text, sum, "localhost", ":8080")
	for _, want := range []string{
		"no key issued: silo keys create ky",
		"(tenant, suspended",
		"... and 1 more accounts: silo tenant list --kind all lists every one",
		"curl -H 'Authorization: Bearer " + byID["acme"].Key + "'",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("silo up prints:\n%s\nwant %q", text.String(), want)
		}
	}
}
