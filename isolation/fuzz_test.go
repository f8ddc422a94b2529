package isolation_test

import (
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
)

// FuzzDecide checks, for any account and resource name, that acme's ingest
// function is allowed exactly its granted, declared tables of acme: nothing
// of another account, no pattern or path.
func FuzzDecide(f *testing.F) {
	pol, err := isolation.PolicyFromFleet(testFleet(f, 2))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][2]string{{"acme", "findings"}, {"globex", "findings"}, {"acme", "../globex/findings"}, {"acme", "*"}, {"production", "catalog"}, {"", "findings"}, {"acme", "findings\x00"}} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, acct, name string, write bool) {
		act := isolation.ActTableRead
		if write {
			act = isolation.ActTableWrite
		}
		d := pol.Decide(isolation.Request{
			Principal: isolation.Principal{Kind: isolation.PrincipalFunction, Account: "acme", Name: "ingest"},
			Action:    act,
			Resource:  isolation.Resource{Account: silo.AccountID(acct), Type: silo.TypeTable, Name: name},
		})
		want := acct == "acme" && (name == "findings" || name == "scans")
		if d.Allow != want {
			t.Fatalf("%s %s/%q: got allow=%v (%v), want %v", act, acct, name, d.Allow, d.Reasons, want)
		}
	})
}
