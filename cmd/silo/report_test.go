package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-run/silo/isolation/report"
)

// TestReportVerifyChecksTheSignerAgainstTheKeyGiven: a customer holding only
// the report and the operator's published key can tell a genuine report
// from a forgery re-signed with another key; without a key the command says
// it checked integrity only and exits 3; keys are never picked up from the
// data dir or the current directory.
func TestReportVerifyChecksTheSignerAgainstTheKeyGiven(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	dir := t.TempDir()
	genuine := filepath.Join(dir, "acme.json")
	writeFile(t, genuine, c.ok("report", "acme", "--format", "json"))
	pemFile := filepath.Join(dir, "key.pem")
	writeFile(t, pemFile, c.ok("report", "key"))
	var k struct {
		Fingerprint string   `json:"fingerprint"`
		Retired     []string `json:"retired"`
	}
	if err := json.Unmarshal([]byte(c.ok("report", "key", "-o", "json")), &k); err != nil || len(k.Fingerprint) != 64 || len(k.Retired) != 0 {
		t.Fatalf("report key -o json: %+v %v", k, err)
	}

	// A forgery: the same content re-signed by someone else's key.
	data, _ := os.ReadFile(genuine)
	v, err := report.VerifyReport(data)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forgedSigned, _ := report.Sign(*v.Report, other)
	forgedJSON, _ := forgedSigned.JSON()
	forged := filepath.Join(dir, "forged.json")
	writeFile(t, forged, string(forgedJSON))
	otherFP := report.Fingerprint(other.Public().(ed25519.PublicKey))

	// Reports that are not silo's: a field no format has, a value of the
	// wrong type, a file cut short. Said in silo's words, not the decoder's.
	extra := filepath.Join(dir, "extra.json")
	writeFile(t, extra, strings.Replace(string(data), "{", `{"extra":1,`, 1))
	wrongType := filepath.Join(dir, "wrongtype.json")
	writeFile(t, wrongType, strings.Replace(string(data), `"signature":`, `"signature":7,"x":`, 1))
	short := filepath.Join(dir, "short.json")
	writeFile(t, short, string(data[:len(data)/2]))

	keySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/key.pem":
			b, _ := os.ReadFile(pemFile)
			w.Write(b)
		case "/other.pem":
			w.Write(report.PublicPEM(other.Public().(ed25519.PublicKey)))
		default:
			http.NotFound(w, r)
		}
	}))
	defer keySrv.Close()

	for _, tc := range []struct {
		name     string
		file     string
		key      string
		wantCode int
		want     string
	}{
		{"genuine, fingerprint", genuine, k.Fingerprint, 0, "intact and signed by the key you gave"},
		{"genuine, sha256: prefix", genuine, "sha256:" + strings.ToUpper(k.Fingerprint), 0, "intact and signed by the key you gave"},
		{"genuine, key file", genuine, pemFile, 0, "intact and signed by the key you gave"},
		{"genuine, URL", genuine, keySrv.URL + "/key.pem", 0, "intact and signed by the key you gave"},
		{"genuine, no key", genuine, "", exitUnpinned, "NOT CHECKED: who signed it"},
		{"genuine, foreign key", genuine, otherFP, 1, "which is not the key you trust"},
		{"genuine, foreign key by URL", genuine, keySrv.URL + "/other.pem", 1, "which is not the key you trust"},
		{"forged, fingerprint", forged, k.Fingerprint, 1, "which is not the key you trust"},
		{"forged, key file", forged, pemFile, 1, "which is not the key you trust"},
		{"forged, no key", forged, "", exitUnpinned, "NOT CHECKED: who signed it"},
		// A --key that gives no key is a wrong call (2), never the 1 of
		// a report that fails its check.
		{"key URL missing", genuine, keySrv.URL + "/none.pem", 2, "404"},
		{"key not a key", genuine, genuine, 2, "the key at " + genuine},
		{"key typo", genuine, "deadbeef", 2, "--key deadbeef is neither a fingerprint (64 hex digits) nor a readable key file"},
		{"key plain http off loopback", genuine, "http://example.com/key.pem", 2, "plain http"},
		// The HTTP client's own text never reaches the reader.
		{"key URL https to a plain http server", genuine, "https://" + strings.TrimPrefix(keySrv.URL, "http://") + "/key.pem", 2, "the server there answers plain http, not https; give the address it serves over https"},
		{"key URL nothing listening", genuine, "http://" + closedAddr(t) + "/key.pem", 2, "nothing listens at that address"},
		{"report file missing", filepath.Join(dir, "nosuch.json"), k.Fingerprint, 2, "cannot read report"},
		{"report with an extra field", extra, pemFile, 1, `the report is not a silo isolation report: it has a field "extra" that no silo report format has`},
		{"report with a value of the wrong type", wrongType, pemFile, 1, "the report is not a silo isolation report: signature must be a string, not a number"},
		{"report cut short", short, pemFile, 1, "the report is not a silo isolation report: it is not valid JSON: it ends before its value does"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"report", "verify", tc.file}
			if tc.key != "" {
				args = append(args, "--key", tc.key)
			}
			code, out, errOut := c.run(args...)
			if code != tc.wantCode || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("exit %d, want %d, and output to contain %q\nstdout: %s\nstderr: %s", code, tc.wantCode, tc.want, out, errOut)
			}
			if strings.Contains(errOut, `Get "`) || strings.Contains(errOut, "http: ") || strings.Contains(errOut, " json: ") || strings.Contains(errOut, "(json: ") {
				t.Errorf("the HTTP client's text reached the reader: %s", errOut)
			}
			if tc.wantCode != 0 && strings.Contains(out, "intact and signed by the key you gave") {
				t.Errorf("a failing check printed success: %s", out)
			}
		})
	}

	// Exit 3 is an outcome, not an error: the result is on stdout, in JSON
	// too, and stderr stays empty; a failing check (its twin) is an error.
	code, out, errOut := c.run("report", "verify", genuine, "-o", "json")
	var res struct {
		Valid         bool `json:"valid"`
		SignerChecked bool `json:"signer_checked"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != exitUnpinned || err != nil || !res.Valid || res.SignerChecked || errOut != "" {
		t.Errorf("report verify -o json without --key: exit %d, stdout %q (%v), stderr %q; want exit 3, the result on stdout, nothing on stderr", code, out, err, errOut)
	}
	code, out, errOut = c.run("report", "verify", genuine, "--key", otherFP, "-o", "json")
	if code != 1 || out != "" || !json.Valid([]byte(errOut)) {
		t.Errorf("report verify -o json with a foreign key: exit %d, stdout %q, stderr %q; want exit 1, an error object on stderr only", code, out, errOut)
	}

	// A .silo directory shipped next to the forgery, holding the forger's
	// key, is not read: without --key the answer stays "not checked".
	ship := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ship, ".silo"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := report.LoadOrCreateKey(filepath.Join(ship, ".silo")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(ship)
	for _, args := range [][]string{{"report", "verify", forged}, {"--data-dir", ".silo", "report", "verify", forged}} {
		code, out, _ := runBare(args...)
		if code != exitUnpinned || strings.Contains(out, "installation") {
			t.Errorf("silo %s next to a shipped .silo: exit %d, want %d\n%s", strings.Join(args, " "), code, exitUnpinned, out)
		}
	}
}

// After silo report key rotate, old reports verify against the published
// keys (which list the old key after the new one), new reports name the new
// key, and the new key alone does not vouch for old reports.
func TestReportKeyRotation(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	dir := t.TempDir()
	old := filepath.Join(dir, "old.html")
	writeFile(t, old, c.ok("report", "acme"))
	oldFP := fingerprintOf(t, c)
	out := c.ok("report", "key", "rotate")
	if !strings.Contains(out, oldFP) {
		t.Errorf("rotate output does not name the old key %s: %s", oldFP, out)
	}
	newFP := fingerprintOf(t, c)
	if newFP == oldFP {
		t.Fatalf("the key did not change")
	}
	pemFile := filepath.Join(dir, "keys.pem")
	writeFile(t, pemFile, c.ok("report", "key"))
	c.ok("report", "verify", old, "--key", pemFile)
	c.ok("report", "verify", old, "--key", oldFP)
	c.fails("which is not the key you trust", "report", "verify", old, "--key", newFP)
	fresh := filepath.Join(dir, "new.html")
	writeFile(t, fresh, c.ok("report", "acme"))
	if out := c.ok("report", "verify", fresh, "--key", pemFile); !strings.Contains(out, newFP) {
		t.Errorf("a new report is not signed by the new key: %s", out)
	}
	c.fails("which is not the key you trust", "report", "verify", fresh, "--key", oldFP)
}

func fingerprintOf(t *testing.T, c *cli) string {
	t.Helper()
	var k struct {
		Fingerprint string `json:"fingerprint"`
	}
	if err := json.Unmarshal([]byte(c.ok("report", "key", "-o", "json")), &k); err != nil {
		t.Fatal(err)
	}
	return k.Fingerprint
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runBare runs the CLI with exactly args (no --data-dir of a test fixture).
func runBare(args ...string) (int, string, string) {
	var out, errOut strings.Builder
	code := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// closedAddr is a loopback address nothing listens at.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
