package iam

import (
	"strings"
	"testing"
)

// fleet is a small organization: production exports table intel; tenants
// acme and globex each have a function role reading their own table.
func fleet(t *testing.T) Snapshot {
	const org = "o-abc"
	acct := func(id, silo, kind, ou string) Account {
		a := Account{ID: id, Silo: silo, Kind: kind, OrgPath: org + "/r-1/" + ou + "/"}
		table := "arn:aws:dynamodb:us-east-1:" + id + ":table/silo.t"
		a.Resources = []Resource{{Kind: Table, Name: "t", ARN: table}}
		a.Roles = []Role{{
			ARN:      "arn:aws:iam::" + id + ":role/silo/silo-fn-f",
			Trust:    doc(t, "trust of f", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"`+id+`"}}}]}`),
			Policies: []Doc{doc(t, "grants of f", `{"Statement":[{"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:PutItem"],"Resource":"`+table+`"}]}`)},
		}}
		return a
	}
	prod := acct("100000000000", "production", "production", "ou-prod")
	share := doc(t, "policy of table intel", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["dynamodb:GetItem","dynamodb:Query"],"Resource":"arn:aws:dynamodb:us-east-1:100000000000:table/silo.intel",
		"Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"},"ForAnyValue:StringLike":{"aws:PrincipalOrgPaths":["o-abc/r-1/ou-tenants/*"]}}}]}`)
	prod.Resources = append(prod.Resources, Resource{Kind: Table, Name: "intel", ARN: "arn:aws:dynamodb:us-east-1:100000000000:table/silo.intel", Policy: &share, Exported: true})
	acme := acct("200000000000", "acme", "tenant", "ou-tenants")
	acme.Roles[0].Policies = append(acme.Roles[0].Policies, doc(t, "export grant", `{"Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:us-east-1:100000000000:table/silo.intel"}]}`))
	return Snapshot{OrgID: org, Management: "900000000000", Accounts: []Account{prod, acme, acct("300000000000", "globex", "tenant", "ou-tenants")}}
}

func TestVerifyFindsEachCrossing(t *testing.T) {
	clean := Verify(fleet(t))
	if !clean.Proved() {
		t.Fatalf("the clean fleet is not proved: %v %v", clean.Findings, clean.Unverifiable)
	}
	if clean.Checked == 0 || clean.Principals == 0 {
		t.Fatalf("nothing was checked: %+v", clean)
	}
	for _, tt := range []struct {
		name   string
		mutate func(s *Snapshot)
		want   string // substring of a finding, or of an unverifiable note
	}{
		{"globex trusted by acme's role", func(s *Snapshot) {
			s.Accounts[1].Roles[0].Trust = doc(t, "trust", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"300000000000"},"Action":"sts:AssumeRole"}]}`)
		}, "I1: any principal of account 300000000000 (globex) may sts:AssumeRole on arn:aws:iam::200000000000:role/silo/silo-fn-f"},
		{"production role with tenant grants", func(s *Snapshot) {
			s.Accounts[0].Roles[0].Policies[0] = doc(t, "grants", `{"Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}]}`)
			s.Accounts[1].Resources[0].Policy = &Doc{Name: "acme table policy", Policy: mustParse(t, `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"100000000000"},"Action":"dynamodb:*","Resource":"*"}]}`)}
		}, "I2: a Lambda function of account 100000000000 (production) through arn:aws:iam::100000000000:role/silo/silo-fn-f may dynamodb:GetItem on arn:aws:dynamodb:us-east-1:200000000000:table/silo.t"},
		{"write to the export", func(s *Snapshot) {
			s.Accounts[0].Resources[1].Policy.Policy.Statements[0].Actions = []string{"dynamodb:*"}
		}, "I1: any principal of account 200000000000 (acme) may dynamodb:PutItem on arn:aws:dynamodb:us-east-1:100000000000:table/silo.intel"},
		{"unknown operator", func(s *Snapshot) {
			s.Accounts[2].Roles[0].Policies[0] = doc(t, "grants", `{"Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01"}}}]}`)
		}, "condition operator DateGreaterThan"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := fleet(t)
			tt.mutate(&s)
			r := Verify(s)
			if r.Proved() {
				t.Fatalf("mutation not caught")
			}
			var all []string
			for _, f := range r.Findings {
				all = append(all, f.String())
			}
			all = append(all, r.Unverifiable...)
			if !strings.Contains(strings.Join(all, "\n"), tt.want) {
				t.Errorf("want %q among:\n%s", tt.want, strings.Join(all, "\n"))
			}
		})
	}
}

func mustParse(t *testing.T, s string) Policy {
	t.Helper()
	p, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
