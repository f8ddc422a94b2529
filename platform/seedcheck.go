package platform

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// CheckSeed refuses a seed directory dir that names a table or bucket the
// stack st does not declare for the account it would load into (the
// production section's for the production account): a file that would
// load nothing is an error, never dropped. It reads only the directory's
// layout, so a command checks before it creates anything. of names the
// stack in the error: "silo.yaml", or the release it comes from, which
// may differ from silo.yaml until that is deployed.
//
// # Errors
//
// server.ScanSeed's; CodeInvalid naming each undeclared table and bucket
// with its files and the ones the stack declares.
func CheckSeed(st *spec.Stack, of string, production bool, dir string) error {
	lay, err := server.ScanSeed(dir)
	if err != nil {
		return err
	}
	tables, buckets := st.Tables, st.Buckets
	if production {
		tables, buckets = st.Production.Tables, st.Production.Buckets
	}
	var problems []string
	check := func(what string, declared []string, files []string, name func(string) string) {
		missing, seen := []string{}, map[string]bool{}
		for _, f := range files {
			n := name(f)
			if !slices.Contains(declared, n) && !seen[n] {
				seen[n] = true
				missing = append(missing, fmt.Sprintf("%q (%s)", n, f))
			}
		}
		if len(missing) == 0 {
			return
		}
		have := "none"
		if len(declared) > 0 {
			have = strings.Join(declared, ", ")
		}
		problems = append(problems, fmt.Sprintf("%ss not declared in %s: %s (declared %ss: %s)", what, of, strings.Join(missing, ", "), what, have))
	}
	check("table", sortedKeys(tables), lay.Tables, func(f string) string { return strings.TrimSuffix(path.Base(f), ".json") })
	check("bucket", sortedKeys(buckets), lay.Objects, func(f string) string { return strings.Split(f, "/")[1] })
	if len(problems) == 0 {
		return nil
	}
	// The directory is not named: on a server it is the server's copy.
	return silo.Errorf(silo.CodeInvalid, "the seed directory names %s; rename or remove those files, or declare them in silo.yaml and deploy, then run again (nothing was created)", strings.Join(problems, "; and "))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkSeedOf is CheckSeed for the account id as it is: against the
// stack of the release it runs.
func (p *Platform) checkSeedOf(ctx context.Context, id silo.AccountID, dir string) error {
	var a silo.Account
	var r store.Release
	err := p.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if a, err = tx.Account(id); err != nil {
			return err
		}
		if a.Release == "" {
			return nil
		}
		r, err = tx.Release(a.Release)
		return err
	})
	if err != nil || a.Release == "" {
		return err
	}
	rel, err := engine.LoadRelease(r)
	if err != nil {
		return err
	}
	return CheckSeed(rel.Stack, fmt.Sprintf("release %s (the one %s runs)", rel.ID, id), id == silo.ProductionID, dir)
}
