package report_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/provider"
)

func res(t *testing.T, typ silo.ResourceType, name string, spec any) silo.Resource {
	r, err := silo.NewResource(typ, name, spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testInput is acme's account in a proved fleet of 42 accounts.
func testInput(t *testing.T) report.Input {
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	return report.Input{
		Account: silo.Account{ID: "acme", Kind: silo.KindTenant, Name: "Acme <Corp> & Co", State: silo.StateActive, Release: "r-0123456789abcdef"},
		Resources: []silo.Resource{
			res(t, silo.TypeTable, "findings", struct{}{}),
			res(t, silo.TypeBucket, "uploads", struct{}{}),
			res(t, silo.TypeConfig, "region", engine.ConfigSpec{Value: "eu"}),
			res(t, silo.TypeSecret, "api-token", struct{}{}),
			res(t, silo.TypeFunction, "ingest", engine.FunctionSpec{Artifact: "sha256:aa", Tables: map[string]string{"findings": "read-write"},
				Buckets: map[string]string{"uploads": "read-write"}, Secrets: []string{"api-token"}, Exports: []string{"catalog"}}),
			res(t, silo.TypeRoute, "POST /findings", engine.RouteSpec{Method: "POST", Path: "/findings", Function: "ingest"}),
		},
		Keys:     []isolation.Key{{ID: "sk_acme_0123456789abcdef", Account: "acme"}, {ID: "sk_acme_fedcba9876543210", Account: "acme", Revoked: true}},
		DataKey:  provider.KeyInfo{Algorithm: "AES-256-GCM, envelope", Fingerprint: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", WrappedBy: "local master key 1234"},
		Proof:    isolation.Result{Status: isolation.StatusProved, Accounts: 42, Edges: 1234},
		ProvedAt: now.Add(-time.Minute),
		Now:      now,
	}
}

func signed(t *testing.T) (report.Signed, ed25519.PrivateKey) {
	key, err := report.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.Sign(report.Build(context.Background(), testInput(t)), key)
	if err != nil {
		t.Fatal(err)
	}
	return s, key
}

func TestBuildSaysItPlainly(t *testing.T) {
	r := report.Build(context.Background(), testInput(t))
	all := strings.Join(r.Summary, "\n")
	for _, want := range []string{
		"isolated account of Acme <Corp> & Co (account acme)",
		"1 table, 1 storage bucket, 1 configuration value and 1 secret",
		"Only your own functions (ingest) and your own API keys (1 active key) can reach your data",
		"read 1 shared resource that the shared production account publishes for every customer (catalog), read-only",
		"fingerprint 9f86d081884c7d65",
		"Isolation was last proved on 25 November 2026 at 17:59 UTC across all 42 accounts",
		"Live attack probes have not been run",
		"release r-0123456789abcdef",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("summary lacks %q:\n%s", want, all)
		}
	}
	for _, a := range r.Access {
		if strings.Contains(a.Who, "fedcba") {
			t.Errorf("a revoked key is listed as reaching the account: %v", a)
		}
	}
}

func TestRoundTripAndEveryByteEdit(t *testing.T) {
	s, _ := signed(t)
	js, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []struct {
		name string
		data []byte
	}{{"json", js}, {"html", page}} {
		t.Run(form.name, func(t *testing.T) {
			r, err := report.VerifyReport(form.data)
			if err != nil {
				t.Fatalf("untouched report: %v", err)
			}
			if r.Tenant != "acme" || r.PublicKey != s.Report.PublicKey {
				t.Fatalf("got %s %s", r.Tenant, r.PublicKey)
			}
			edited := 0
			for i := range form.data {
				b := append([]byte(nil), form.data...)
				b[i] ^= 0x01
				if _, err := report.VerifyReport(b); err == nil {
					t.Fatalf("edit of byte %d (%q → %q) verified", i, form.data[i], b[i])
				} else if silo.ErrorCode(err) != silo.CodeFailedCheck {
					t.Fatalf("edit of byte %d: got %v, want failed_check", i, err)
				}
				edited++
			}
			// Inserting or deleting a byte is caught too.
			if _, err := report.VerifyReport(append(append([]byte(nil), form.data...), ' ')); err == nil {
				t.Errorf("appended byte verified")
			}
			if _, err := report.VerifyReport(form.data[:len(form.data)-1]); err == nil {
				t.Errorf("dropped byte verified")
			}
			t.Logf("%d single-byte edits, all refused; untouched verifies", edited)
		})
	}
}

func TestResignedWithAnotherKeyShowsAnotherSigner(t *testing.T) {
	s, key := signed(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forged := s.Report
	forged.Proof.Violations = 0
	forged.Name = "Someone Else"
	fs, err := report.Sign(forged, other)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := fs.JSON()
	r, err := report.VerifyReport(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.PublicKey == report.PublicKey(key) {
		t.Fatalf("a report signed by another key claims the installation's key")
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, err := report.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, report.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("got %v %v, want mode 0600", fi.Mode().Perm(), err)
	}
	k2, err := report.LoadOrCreateKey(dir)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("second load: got a different key (%v)", err)
	}
	os.Chmod(filepath.Join(dir, report.KeyFile), 0o644)
	if _, err := report.LoadOrCreateKey(dir); silo.ErrorCode(err) != silo.CodeFailedCheck {
		t.Fatalf("world-readable key: got %v, want failed_check", err)
	}
}
