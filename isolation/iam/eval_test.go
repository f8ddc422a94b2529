package iam

import (
	"strings"
	"testing"
)

func TestPatterns(t *testing.T) {
	for _, tt := range []struct {
		a, b          string
		glob, overlap bool
		covers        bool // Covers(a, b)
	}{
		{"*", "anything", true, true, true},
		{"dynamodb:*", "dynamodb:GetItem", true, true, true},
		{"dynamodb:Get*", "dynamodb:PutItem", false, false, false},
		{"s3:?etObject", "s3:GetObject", true, true, true},
		{"arn:aws:s3:::b/*", "arn:aws:s3:::b/*", true, true, true},
		{"arn:aws:s3:::b/public/*", "arn:aws:s3:::b/*", false, true, false},
		{"arn:aws:s3:::b/*", "arn:aws:s3:::b/public/*", true, true, true},
		{"arn:aws:s3:::other/*", "arn:aws:s3:::b/*", false, false, false},
		{"arn:aws:s3:::*", "arn:aws:s3:::b/*", true, true, true},
		{"a*c", "a*d", false, false, false},
		{"a*", "*b", false, true, false},
	} {
		if got := Glob(tt.a, tt.b); got != tt.glob {
			t.Errorf("Glob(%q, %q) = %v", tt.a, tt.b, got)
		}
		if got := Overlap(tt.a, tt.b); got != tt.overlap {
			t.Errorf("Overlap(%q, %q) = %v", tt.a, tt.b, got)
		}
		if got := Covers(tt.a, tt.b); got != tt.covers {
			t.Errorf("Covers(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name, doc   string
		err         bool
		unsupported string // a substring of the first statement's Unsupported, "" for none
	}{
		{"lists", `{"Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::b/*"]}]}`, false, ""},
		{"strings", `{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}`, false, ""},
		{"url-encoded", `%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3A*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D`, false, ""},
		{"principal star", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}`, false, ""},
		{"not principal", `{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"111111111111"},"Action":"s3:*","Resource":"*"}]}`, false, "NotPrincipal"},
		{"unknown operator", `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`, false, "IpAddress"},
		{"unknown key", `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"a"}}}]}`, false, "aws:PrincipalTag/team"},
		{"if exists", `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:SourceAccount":"1"}}}]}`, false, "StringEqualsIfExists"},
		{"federated", `{"Statement":[{"Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, false, "Federated"},
		{"policy variable", `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringLike":{"aws:PrincipalOrgPaths":"${aws:username}"}}}]}`, false, "policy variable"},
		{"bad effect", `{"Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}`, true, ""},
		{"no action", `{"Statement":[{"Effect":"Allow","Resource":"*"}]}`, true, ""},
		{"not json", `Allow everything`, true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.doc)
			if (err != nil) != tt.err {
				t.Fatalf("Parse: err %v, want error %v", err, tt.err)
			}
			if err != nil {
				return
			}
			got := strings.Join(p.Statements[0].Unsupported, "; ")
			if tt.unsupported == "" && got != "" || !strings.Contains(got, tt.unsupported) {
				t.Errorf("unsupported %q, want %q", got, tt.unsupported)
			}
		})
	}
}

func doc(t *testing.T, name, s string) Doc {
	t.Helper()
	p, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return Doc{Name: name, Policy: p}
}

func TestDecide(t *testing.T) {
	const (
		a, b   = "111111111111", "222222222222"
		roleA  = "arn:aws:iam::111111111111:role/r"
		table  = "arn:aws:dynamodb:us-east-1:222222222222:table/silo.t"
		org    = "o-abc"
		tenant = "o-abc/r-1/ou-tenants/"
	)
	inA := Principal{Account: a, ARN: roleA, OrgID: org, OrgPath: tenant}
	outside := Principal{}
	readTable := `{"Statement":[{"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:Query"],"Resource":"` + table + `"}]}`
	orgShare := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"dynamodb:GetItem","Resource":"` + table + `",
		"Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"},"ForAnyValue:StringLike":{"aws:PrincipalOrgPaths":["o-abc/r-1/ou-tenants/*"]}}}]}`
	for _, tt := range []struct {
		name     string
		p        Principal
		action   string
		resource string
		access   func(t *testing.T) Access
		want     bool
	}{
		{"same account identity allow", Principal{Account: b, ARN: "arn:aws:iam::222222222222:role/x"}, "dynamodb:GetItem", table,
			func(t *testing.T) Access {
				return Access{Identity: []Doc{doc(t, "id", readTable)}, ResourceAccount: b}
			}, true},
		{"same account, action not granted", Principal{Account: b, ARN: "arn:aws:iam::222222222222:role/x"}, "dynamodb:PutItem", table,
			func(t *testing.T) Access {
				return Access{Identity: []Doc{doc(t, "id", readTable)}, ResourceAccount: b}
			}, false},
		{"cross account needs the resource policy", inA, "dynamodb:GetItem", table,
			func(t *testing.T) Access {
				return Access{Identity: []Doc{doc(t, "id", readTable)}, ResourceAccount: b}
			}, false},
		{"cross account with org-path share", inA, "dynamodb:GetItem", table,
			func(t *testing.T) Access {
				r := doc(t, "res", orgShare)
				return Access{Identity: []Doc{doc(t, "id", readTable)}, Resource: &r, ResourceAccount: b}
			}, true},
		{"org-path share refuses another OU", Principal{Account: a, ARN: roleA, OrgID: org, OrgPath: "o-abc/r-1/ou-production/"}, "dynamodb:GetItem", table,
			func(t *testing.T) Access {
				r := doc(t, "res", orgShare)
				return Access{Identity: []Doc{doc(t, "id", readTable)}, Resource: &r, ResourceAccount: b}
			}, false},
		{"org-path share refuses outside", outside, "dynamodb:GetItem", table,
			func(t *testing.T) Access {
				r := doc(t, "res", orgShare)
				return Access{Unconstrained: true, Resource: &r, ResourceAccount: b}
			}, false},
		{"principal star reaches outside", outside, "s3:GetObject", "arn:aws:s3:::b/*",
			func(t *testing.T) Access {
				r := doc(t, "res", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}`)
				return Access{Unconstrained: true, Resource: &r, ResourceAccount: b}
			}, true},
		{"deny wins", Principal{Account: b, ARN: "arn:aws:iam::222222222222:role/x"}, "dynamodb:GetItem", table,
			func(t *testing.T) Access {
				return Access{Identity: []Doc{doc(t, "id", readTable), doc(t, "deny", `{"Statement":[{"Effect":"Deny","Action":"dynamodb:*","Resource":"*"}]}`)}, ResourceAccount: b}
			}, false},
		{"NotAction allow", Principal{Account: b, ARN: "arn:aws:iam::222222222222:role/x"}, "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:222222222222:secret:s",
			func(t *testing.T) Access {
				return Access{Identity: []Doc{doc(t, "id", `{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}`)}, ResourceAccount: b}
			}, true},
		{"NotResource allow", Principal{Account: b, ARN: "arn:aws:iam::222222222222:role/x"}, "dynamodb:GetItem", table,
			func(t *testing.T) Access {
				return Access{Identity: []Doc{doc(t, "id", `{"Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","NotResource":"arn:aws:dynamodb:*:*:table/other"}]}`)}, ResourceAccount: b}
			}, true},
		{"trust by account needs identity", inA, "sts:AssumeRole", "arn:aws:iam::222222222222:role/t",
			func(t *testing.T) Access {
				tr := doc(t, "trust", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"sts:AssumeRole"}]}`)
				return Access{Identity: []Doc{doc(t, "id", readTable)}, Resource: &tr, ResourceAccount: b, PolicyRequired: true}
			}, false},
		{"trust by account, any principal of it", Principal{Account: a, OrgID: org, OrgPath: tenant}, "sts:AssumeRole", "arn:aws:iam::222222222222:role/t",
			func(t *testing.T) Access {
				tr := doc(t, "trust", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"sts:AssumeRole"}]}`)
				return Access{Unconstrained: true, Resource: &tr, ResourceAccount: b, PolicyRequired: true}
			}, true},
		{"lambda with its own source account", Principal{Service: "lambda.amazonaws.com", SourceAccount: b}, "sts:AssumeRole", "arn:aws:iam::222222222222:role/fn",
			func(t *testing.T) Access {
				tr := doc(t, "trust", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"222222222222"}}}]}`)
				return Access{Resource: &tr, ResourceAccount: b, PolicyRequired: true}
			}, true},
		{"lambda of another account", Principal{Service: "lambda.amazonaws.com", SourceAccount: a}, "sts:AssumeRole", "arn:aws:iam::222222222222:role/fn",
			func(t *testing.T) Access {
				tr := doc(t, "trust", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"222222222222"}}}]}`)
				return Access{Resource: &tr, ResourceAccount: b, PolicyRequired: true}
			}, false},
		{"key policy must name the principal", Principal{Account: b, ARN: "arn:aws:iam::222222222222:role/x"}, "kms:Decrypt", "arn:aws:kms:us-east-1:222222222222:key/k",
			func(t *testing.T) Access {
				kp := doc(t, "key", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:role/other"},"Action":"kms:*","Resource":"*"}]}`)
				return Access{Identity: []Doc{doc(t, "id", `{"Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}`)}, Resource: &kp, ResourceAccount: b, PolicyRequired: true}
			}, false},
		{"key policy delegating to the account", Principal{Account: b, ARN: "arn:aws:iam::222222222222:role/x"}, "kms:Decrypt", "arn:aws:kms:us-east-1:222222222222:key/k",
			func(t *testing.T) Access {
				kp := doc(t, "key", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"kms:*","Resource":"*"}]}`)
				return Access{Identity: []Doc{doc(t, "id", `{"Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}}]}`)}, Resource: &kp, ResourceAccount: b, PolicyRequired: true}
			}, true},
		{"a direct call does not meet kms:ViaService", Principal{Account: b, ARN: "arn:aws:iam::222222222222:role/x", ViaKnown: true}, "kms:Decrypt", "arn:aws:kms:us-east-1:222222222222:key/k",
			func(t *testing.T) Access {
				kp := doc(t, "key", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"kms:*","Resource":"*"}]}`)
				return Access{Identity: []Doc{doc(t, "id", `{"Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}}]}`)}, Resource: &kp, ResourceAccount: b, PolicyRequired: true}
			}, false},
		{"a Deny on an unknown key does not apply", Principal{Account: b, ARN: "arn:aws:iam::222222222222:role/x"}, "kms:Decrypt", "arn:aws:kms:us-east-1:222222222222:key/k",
			func(t *testing.T) Access {
				return Access{Identity: []Doc{doc(t, "id", `{"Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"},{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}}]}`)}, ResourceAccount: b}
			}, true},
		{"unsupported allow is never evaluated", Principal{Account: b, ARN: "arn:aws:iam::222222222222:role/x"}, "dynamodb:GetItem", table,
			func(t *testing.T) Access {
				return Access{Identity: []Doc{doc(t, "id", `{"Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`)}, ResourceAccount: b}
			}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, because := Decide(tt.p, tt.action, tt.resource, tt.access(t))
			if got != tt.want {
				t.Errorf("Decide = %v (because %v), want %v", got, because, tt.want)
			}
			if got && len(because) == 0 {
				t.Errorf("allowed without naming a policy")
			}
		})
	}
}
