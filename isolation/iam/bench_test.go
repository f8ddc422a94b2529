package iam

import (
	"fmt"
	"testing"
)

// synthetic returns an organization of n tenant accounts shaped like
// fleet's (one table, one function role each) plus production.
func synthetic(b *testing.B, n int) Snapshot {
	t := &testing.T{}
	s := fleet(t)
	base := s.Accounts[2]
	for i := 0; len(s.Accounts) < n+1; i++ {
		a := base
		id := fmt.Sprintf("4%011d", i)
		a.ID, a.Silo = id, fmt.Sprintf("t%d", i)
		a.Resources = []Resource{{Kind: Table, Name: "t", ARN: "arn:aws:dynamodb:us-east-1:" + id + ":table/silo.t"}}
		trust, err := Parse(`{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"` + id + `"}}}]}`)
		grants, err2 := Parse(`{"Statement":[{"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:PutItem"],"Resource":"` + a.Resources[0].ARN + `"}]}`)
		if err != nil || err2 != nil {
			b.Fatal(err, err2)
		}
		a.Roles = []Role{{ARN: "arn:aws:iam::" + id + ":role/silo/silo-fn-f", Trust: Doc{Name: "trust", Policy: trust}, Policies: []Doc{{Name: "grants", Policy: grants}}}}
		s.Accounts = append(s.Accounts, a)
	}
	return s
}

// BenchmarkVerify measures Verify on 10 and 100 tenants; the 10-tenant run
// is the baseline, the cost grows with the square of the accounts.
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{10, 100} {
		s := synthetic(b, n)
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if r := Verify(s); !r.Proved() {
					b.Fatalf("not proved: %v", r.Findings[:1])
				}
			}
		})
	}
}
