package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// TestSecretValueNeverComesBack (I3): a secret's value, set through the
// control-plane API and through the CLI, is in no API answer, no command
// output, no audit event and nowhere in the control-plane state files. The
// twins show the harness sees what it looks for: the secret.set events are
// there, with the value's length.
func TestSecretValueNeverComesBack(t *testing.T) {
	t.Parallel()
	f := startRemote(t)
	var nb [12]byte
	rand.Read(nb[:])
	canary := "canary-" + hex.EncodeToString(nb[:])

	put := func(account, name string) (int, string) { return putSecret(t, f.url, f.token, account, name, canary) }
	for _, tc := range []struct {
		name, account, secret string
		wantOK                bool
	}{
		{"set", "demo-acme", "github-token", true},
		{"unknown account", "nobody", "api-token", false},
		{"bad name", "demo-acme", "bad%20name", false},
	} {
		t.Run("API "+tc.name, func(t *testing.T) {
			code, body := put(tc.account, tc.secret)
			if (code < 300) != tc.wantOK {
				t.Fatalf("status %d, want success %v: %s", code, tc.wantOK, body)
			}
			if strings.Contains(body, canary) {
				t.Errorf("the answer carries the secret's value: %s", body)
			}
		})
	}

	// Through the CLI, locally and against the server.
	for _, args := range [][]string{
		{"secret", "set", "demo-acme", "github-token", "--data-dir", f.client, "--server", f.url, "--token", f.token},
		{"secret", "set", "demo-acme", "github-token", "-o", "json", "--data-dir", f.client, "--server", f.url, "--token", f.token},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(canary), &out, &errOut); code != 0 {
			t.Fatalf("silo %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
		}
		if strings.Contains(out.String()+errOut.String(), canary) {
			t.Errorf("silo %s printed the secret's value", strings.Join(args, " "))
		}
	}

	// Listing the account's secrets names the secret (the twin), never
	// its value, through the CLI and the API.
	for _, args := range [][]string{
		{"secret", "list", "demo-acme", "--data-dir", f.client, "--server", f.url, "--token", f.token},
		{"secret", "list", "demo-acme", "-o", "json", "--data-dir", f.client, "--server", f.url, "--token", f.token},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &out, &errOut); code != 0 {
			t.Fatalf("silo %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
		}
		if said := out.String() + errOut.String(); strings.Contains(said, canary) || !strings.Contains(said, "github-token") {
			t.Errorf("silo %s printed the secret's value or not its name:\n%s", strings.Join(args, " "), said)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/accounts/demo-acme/secrets", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	listed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(listed), canary) || !strings.Contains(string(listed), `"set":true`) {
		t.Errorf("GET the account's secrets: %d %s; want the secret listed as set, without its value", resp.StatusCode, listed)
	}

	// The audit log: no event carries the value; the secret.set events are
	// there (the twin).
	st, err := sqlite.Open(context.Background(), filepath.Join(f.dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []store.AuditEntry
	err = st.View(context.Background(), func(tx store.Tx) error {
		var err error
		entries, err = tx.Audit(0, 100000)
		return err
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	sets := 0
	for _, e := range entries {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), canary) {
			t.Errorf("audit entry %d carries the secret's value: %s", e.Seq, b)
		}
		if e.Event.Action == "secret.set" && strings.Contains(string(e.Event.Detail), `"bytes":`+itoa(len(canary))) {
			sets++
		}
	}
	if sets != 3 {
		t.Errorf("found %d secret.set events with the value's length, want 3 (one API, two CLI)", sets)
	}
	// Nor anywhere in the control-plane state files.
	for _, name := range []string{"state.db", "state.db-wal", "audit.witness"} {
		b, err := os.ReadFile(filepath.Join(f.dir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s holds the secret's value", name)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestSecretSizeLimit: silo secret set and the API refuse a value larger
// than every provider holds with one error naming the secret, its size and
// the limit, and take a value at the limit (a trailing newline of the CLI's
// input not counted); a value past what is read is refused too.
func TestSecretSizeLimit(t *testing.T) {
	t.Parallel()
	f := startRemote(t)
	put := func(value string) (int, string) {
		return putSecret(t, f.url, f.token, "demo-acme", "github-token", value)
	}
	cli := func(value string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"secret", "set", "demo-acme", "github-token", "--data-dir", f.client, "--server", f.url, "--token", f.token}, strings.NewReader(value), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	at, over := strings.Repeat("k", provider.MaxSecretSize), strings.Repeat("k", provider.MaxSecretSize+1)
	huge := strings.Repeat("k", 64<<10+1)
	for _, tc := range []struct {
		name  string
		do    func(string) (int, string)
		value string
		want  []string // in the error; none: it is set
	}{
		{"API at the limit", put, at, nil},
		{"API one byte over", put, over, []string{"github-token", "4097 bytes", "at most 4096 bytes", "bucket"}},
		{"API past what is read", put, huge, []string{"github-token", "over 65536 bytes", "at most 4096 bytes", "bucket"}},
		{"CLI at the limit, with a newline", cli, at + "\n", nil},
		{"CLI one byte over", cli, over, []string{"github-token", "4097 bytes", "at most 4096 bytes", "bucket"}},
		{"CLI past what is read", cli, huge, []string{"github-token", "over 65536 bytes", "at most 4096 bytes", "bucket"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := tc.do(tc.value)
			ok := code == 0 || code == http.StatusNoContent
			if ok != (tc.want == nil) {
				t.Fatalf("got %d %s; want success %v", code, msg, tc.want == nil)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
}

// putSecret sets a secret through the control-plane API at url and returns
// the status and what came back (the body and any Location header).
func putSecret(t *testing.T, url, token, account, name, value string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url+"/v1/accounts/"+account+"/secrets/"+name, strings.NewReader(value))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b) + strings.Join(resp.Header.Values("Location"), "")
}
