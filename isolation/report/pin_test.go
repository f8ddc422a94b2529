package report_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation/report"
)

func TestCheckSignerAcceptsOnlyTheTrustedKey(t *testing.T) {
	s, key := signed(t)
	pub := key.Public().(ed25519.PublicKey)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forged := s.Report
	forged.Name = "Someone Else"
	fs, err := report.Sign(forged, other)
	if err != nil {
		t.Fatal(err)
	}
	genuine, _ := s.JSON()
	forgery, _ := fs.JSON()
	trusted := []string{report.Fingerprint(pub)}

	// The forgery is self-consistent: integrity alone accepts it.
	vf, err := report.VerifyReport(forgery)
	if err != nil {
		t.Fatalf("forgery: integrity check: %v", err)
	}
	if _, err := report.CheckSigner(vf, trusted); silo.ErrorCode(err) != silo.CodeFailedCheck {
		t.Errorf("forgery signed by a foreign key: got %v, want failed_check", err)
	}
	// Twin: the genuine report passes the same check.
	vg, err := report.VerifyReport(genuine)
	if err != nil {
		t.Fatal(err)
	}
	if fp, err := report.CheckSigner(vg, trusted); err != nil || fp != trusted[0] {
		t.Errorf("genuine report: got %q %v, want %s", fp, err, trusted[0])
	}
	if _, err := report.CheckSigner(vg, nil); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("no trusted key: got %v, want invalid", err)
	}
}

// A forger signs with their own key but names the installation's key as
// the signer: the report must not verify.
func TestSignerNameMustBeTheSigningKey(t *testing.T) {
	s, key := signed(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	r := s.Report
	r.PublicKey = base64.StdEncoding.EncodeToString(other.Public().(ed25519.PublicKey))
	r.Signer = report.Fingerprint(key.Public().(ed25519.PublicKey)) // claims the genuine key
	b, _ := json.Marshal(r)
	lie := report.Signed{Report: r, Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(other, b))}
	for name, render := range map[string]func() ([]byte, error){"json": lie.JSON, "html": lie.HTML} {
		data, _ := render()
		if _, err := report.VerifyReport(data); silo.ErrorCode(err) != silo.CodeFailedCheck {
			t.Errorf("%s: a report naming a signer other than its key: got %v, want failed_check", name, err)
		}
	}
	// Twin: the same content honestly signed by the other key verifies.
	honest, _ := report.Sign(r, other)
	data, _ := honest.JSON()
	if _, err := report.VerifyReport(data); err != nil {
		t.Errorf("honest signature by the other key: %v", err)
	}
}

func TestParsePin(t *testing.T) {
	_, k1, _ := ed25519.GenerateKey(rand.Reader)
	_, k2, _ := ed25519.GenerateKey(rand.Reader)
	p1, p2 := k1.Public().(ed25519.PublicKey), k2.Public().(ed25519.PublicKey)
	fp1, fp2 := report.Fingerprint(p1), report.Fingerprint(p2)
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"fingerprint", fp1, []string{fp1}},
		{"upper case with prefix and newline", "sha256:" + strings.ToUpper(fp1) + "\n", []string{fp1}},
		{"one PEM key", string(report.PublicPEM(p1)), []string{fp1}},
		{"two PEM keys", string(report.PublicPEM(p1, p2)), []string{fp1, fp2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := report.ParsePin([]byte(tc.in))
			if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v %v, want %v", got, err, tc.want)
			}
		})
	}
	seed, _ := os.ReadFile(writeKey(t))
	for _, bad := range []string{"", "not a key", fp1[:63], fp1 + "00", string(seed), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if _, err := report.ParsePin([]byte(bad)); silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("ParsePin(%.30q): got %v, want invalid", bad, err)
		}
	}
}

func writeKey(t *testing.T) string {
	dir := t.TempDir()
	if _, err := report.LoadOrCreateKey(dir); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, report.KeyFile)
}

// After a rotation, a report signed with the old key still verifies
// against the published keys, names the old key, and new reports name the
// new one.
func TestRotationKeepsOldReportsVerifiable(t *testing.T) {
	dir := t.TempDir()
	k1, err := report.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := report.Sign(report.Build(t.Context(), testInput(t)), k1)
	oldJSON, _ := old.JSON()
	before, nu, err := report.RotateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !before.Equal(k1.Public()) || nu.Equal(before) {
		t.Fatalf("rotation: old %x new %x, key was %x", before, nu, k1.Public())
	}
	k2, err := report.LoadOrCreateKey(dir)
	if err != nil || !k2.Public().(ed25519.PublicKey).Equal(nu) {
		t.Fatalf("after rotation the key file holds another key (%v)", err)
	}
	published, err := report.PublishedKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(published) != 2 || !published[0].Equal(nu) || !published[1].Equal(before) {
		t.Fatalf("published %d keys, want the new then the old", len(published))
	}
	pins, err := report.ParsePin(report.PublicPEM(published...))
	if err != nil {
		t.Fatal(err)
	}
	v, err := report.VerifyReport(oldJSON)
	if err != nil {
		t.Fatal(err)
	}
	if fp, err := report.CheckSigner(v, pins); err != nil || fp != report.Fingerprint(before) {
		t.Errorf("old report against the published keys: got %q %v, want the old key", fp, err)
	}
	// Against the new key alone, the old report is refused.
	if _, err := report.CheckSigner(v, []string{report.Fingerprint(nu)}); err == nil {
		t.Errorf("old report verified against the new key alone")
	}
	fresh, _ := report.Sign(report.Build(t.Context(), testInput(t)), k2)
	if fresh.Report.Signer != report.Fingerprint(nu) {
		t.Errorf("a new report names signer %s, want the new key", fresh.Report.Signer)
	}
}

// Reports of formats 1 to 3, issued before format 4, still verify byte
// for byte and against their signer's key only.
func TestOlderFormatsStillVerify(t *testing.T) {
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	for _, format := range []int{1, 2, 3} {
		pem, err := os.ReadFile(fmt.Sprintf("testdata/v%d-signer.pem", format))
		if err != nil {
			t.Fatal(err)
		}
		pins, err := report.ParsePin(pem)
		if err != nil {
			t.Fatal(err)
		}
		for _, ext := range []string{"json", "html"} {
			file := fmt.Sprintf("testdata/v%d-report.%s", format, ext)
			t.Run(filepath.Base(file), func(t *testing.T) {
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				v, err := report.VerifyReport(data)
				if err != nil {
					t.Fatalf("format %d report: %v", format, err)
				}
				if v.Format != format || v.Tenant != "acme" {
					t.Errorf("got format %d tenant %s", v.Format, v.Tenant)
				}
				if _, err := report.CheckSigner(v, pins); err != nil {
					t.Errorf("against its signer: %v", err)
				}
				if _, err := report.CheckSigner(v, []string{report.Fingerprint(other.Public().(ed25519.PublicKey))}); err == nil {
					t.Errorf("verified against a foreign key")
				}
				i := strings.Index(string(data), "acme")
				edited := append([]byte(nil), data...)
				edited[i] = 'X'
				if _, err := report.VerifyReport(edited); err == nil {
					t.Errorf("an edited format %d report verified", format)
				}
			})
		}
	}
}
