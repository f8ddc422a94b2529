package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/provider/providertest"
)

// walkFiles calls fn with the path and raw bytes of every regular file under
// dir.
func walkFiles(t *testing.T, dir string, fn func(path string, b []byte)) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			n++
			fn(path, b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// copyTo copies the file from to to, replacing to with a new file.
func copyTo(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(to)
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// findCanaries returns the files under dir that hold any canary.
func findCanaries(t *testing.T, dir string, canaries [][]byte) []string {
	var hits []string
	walkFiles(t, dir, func(path string, b []byte) {
		for _, c := range canaries {
			if bytes.Contains(b, c) {
				hits = append(hits, filepath.Base(path)+" holds "+string(c))
			}
		}
	})
	return hits
}

// openers returns the files under dir that hold A's wrapped key, or a window
// that the master unwraps into a key opening env.
func openers(t *testing.T, dir string, master *envelope.Master, wrapped, env []byte) []string {
	var hits []string
	walkFiles(t, dir, func(path string, b []byte) {
		if bytes.Contains(b, wrapped) {
			hits = append(hits, path+" holds the wrapped key")
		}
		for off := 0; off+len(wrapped) <= len(b); off++ {
			if k, err := master.Unwrap("acme", b[off:off+len(wrapped)]); err == nil {
				if _, err := k.Open("api_token", env); err == nil {
					hits = append(hits, path+" unwraps")
				}
			}
		}
	})
	return hits
}

func readSecrets(t *testing.T, acctDir string) map[string][]byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(acctDir, "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var enc map[string]string
	if err := json.Unmarshal(raw, &enc); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for k, v := range enc {
		b, err := local.SecretEnvelope(v)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = b
	}
	return out
}

// logKeys gives a log store the provider's per-account log keys, as the
// platform does.
func logKeys(p *local.Provider) logs.Keys {
	return func(id silo.AccountID) (logs.Cipher, error) {
		s, err := p.LogSealer(id)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// kinds are the places an account's data lives; each gets its own canary.
var kinds = []string{"secret", "table", "blob", "log"}

func canaryOf(id silo.AccountID, kind string) []byte {
	return []byte("CANARY-" + kind + "-" + string(id) + "-7f3a9c1e-do-not-leak")
}

// plant writes a canary of each kind into account id and reads each back
// (the control that the harness plants what it later looks for).
func plant(t *testing.T, p *local.Provider, lg *logs.Store, id silo.AccountID) {
	t.Helper()
	ctx := context.Background()
	if err := p.PutSecret(ctx, id, "api_token", canaryOf(id, "secret")); err != nil {
		t.Fatal(err)
	}
	d, err := p.Data(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "k", canaryOf(id, "table")); err != nil {
		t.Fatal(err)
	}
	if err := d.PutBlob(ctx, "uploads", "report.pdf", canaryOf(id, "blob")); err != nil {
		t.Fatal(err)
	}
	if err := lg.Append(logs.Entry{Account: id, Function: "ingest", Msg: string(canaryOf(id, "log")), Attrs: map[string]string{"payload": string(canaryOf(id, "log"))}}); err != nil {
		t.Fatal(err)
	}
	wantPlanted(t, p, lg, id)
}

// wantPlanted checks that every canary of account id reads back.
func wantPlanted(t *testing.T, p *local.Provider, lg *logs.Store, id silo.AccountID) {
	t.Helper()
	ctx := context.Background()
	d, err := p.Data(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	got["secret"], _ = d.Secret(ctx, "api_token")
	got["table"], _ = d.Get(ctx, "findings", "k")
	got["blob"], _ = d.GetBlob(ctx, "uploads", "report.pdf")
	if es, _ := lg.Read(id, logs.Query{}); len(es) == 1 && es[0].Attrs["payload"] == es[0].Msg {
		got["log"] = []byte(es[0].Msg)
	}
	for _, k := range kinds {
		if !bytes.Equal(got[k], canaryOf(id, k)) {
			t.Errorf("control: %s's %s reads %q, want its canary", id, k, got[k])
		}
	}
}

// TestCryptoShredding plants canaries in every kind of data of account A
// (secret, table value, blob, log record), deletes A, and shows that the
// canaries are on disk nowhere, before or after, that A's old ciphertext
// no longer decrypts with anything left, and that copies of A's old files
// put back under a re-created A open nothing; B's data still reads.
func TestCryptoShredding(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	stopAt := ""
	var lg *logs.Store
	p, err := local.New(local.Config{Dir: dir, OnRotateStep: func(step string, _ silo.AccountID) error {
		if step == stopAt {
			return errors.New("stopped by the test")
		}
		return nil
	}, OnDeleteAccount: func(id silo.AccountID) error { return lg.Remove(id) }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if lg, err = logs.Open(logs.Config{Dir: filepath.Join(dir, "logs"), Keys: logKeys(p)}); err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	stack := providertest.Stack(t)
	ids := []silo.AccountID{"acme", "globex"}
	canaries := map[silo.AccountID][]byte{}
	var all [][]byte
	for _, id := range ids {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		providertest.ApplyAll(t, p, id, stack)
		plant(t, p, lg, id)
		canaries[id] = canaryOf(id, "secret")
		for _, k := range kinds {
			all = append(all, canaryOf(id, k))
		}
	}
	// Control: the canaries are encrypted at rest, so not even now are they
	// in any file; the walk itself must see files, though.
	if n := walkFiles(t, dir, func(string, []byte) {}); n < 8 {
		t.Fatalf("walk saw %d files; the harness is not looking at the data", n)
	}
	if hits := findCanaries(t, dir, all); len(hits) != 0 {
		t.Errorf("plaintext data on disk before delete: %v", hits)
	}
	// Copies of A's sealed files, as a backup or a disk image would keep them.
	acmeFiles := map[string]string{
		filepath.Join("accounts", "acme", "data.db"):                        "",
		filepath.Join("accounts", "acme", "blobs", "uploads", "report.pdf"): "",
		filepath.Join("logs", "acme.log"):                                   "",
	}
	stash := t.TempDir()
	for rel := range acmeFiles {
		acmeFiles[rel] = filepath.Join(stash, strings.ReplaceAll(rel, string(filepath.Separator), "_"))
		copyTo(t, filepath.Join(dir, rel), acmeFiles[rel])
	}

	// A's key is rotated once, then a second rotation stops after the
	// secrets were resealed: A's ring holds its current key and the
	// previous one, and the delete must destroy both.
	acmeDir := filepath.Join(dir, "accounts", "acme")
	if err := p.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	prevSecrets := readSecrets(t, acmeDir)
	stopAt = local.StepDataKeyResealed
	if err := p.RotateDataKey(ctx, "acme"); err == nil {
		t.Fatal("rotation did not stop at the hook")
	}
	stopAt = ""
	oldSecrets := readSecrets(t, acmeDir)
	ring, err := local.WrappedKeys(acmeDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ring) != 2 {
		t.Fatalf("acme's ring holds %d keys, want 2 (current and previous)", len(ring))
	}
	master, err := envelope.LoadOrCreateMaster(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	pairs := []struct {
		name    string
		wrapped []byte
		env     []byte
	}{
		{"current key", ring[0], oldSecrets["api_token"]},
		{"previous key", ring[1], prevSecrets["api_token"]},
	}
	for _, pr := range pairs {
		// Control: with the key still on disk, the copied ciphertext opens.
		dk, err := master.Unwrap("acme", pr.wrapped)
		if err != nil {
			t.Fatalf("%s: %v", pr.name, err)
		}
		if v, err := dk.Open("api_token", pr.env); err != nil || !bytes.Equal(v, canaries["acme"]) {
			t.Fatalf("control: %s: copied ciphertext = %q, %v; want the canary", pr.name, v, err)
		}
		// Control for the scan below: before the delete it finds data.key.
		if hits := openers(t, dir, master, pr.wrapped, pr.env); len(hits) == 0 {
			t.Fatalf("control: %s: before delete, the scan found nothing that opens A's secret", pr.name)
		}
	}

	if _, err := p.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if hits := findCanaries(t, dir, all); len(hits) != 0 {
		t.Errorf("canaries on disk after delete: %v", hits)
	}
	// Nothing of A remains, and no file left on disk unwraps into a key
	// that opens A's old ciphertext.
	if _, err := os.Stat(acmeDir); !os.IsNotExist(err) {
		t.Errorf("account dir still exists: %v", err)
	}
	// The only path to A's plaintext is master key → A's wrapped data key →
	// data key (the raw data key is never written to disk). So after the
	// delete, A's wrapped key is in no file and no window of any file
	// unwraps to a key that opens A's old secret.
	for _, pr := range pairs {
		if hits := openers(t, dir, master, pr.wrapped, pr.env); len(hits) != 0 {
			t.Errorf("after delete, A's secret under its %s still opens via: %v", pr.name, hits)
		}
	}
	// The raw wrapped key blob of A is gone; without it the master key alone
	// opens nothing of A.
	if _, err := master.Unwrap("acme", oldSecrets["api_token"]); err == nil {
		t.Errorf("master key opens A's secret directly")
	}
	// Twin: B's data still reads, every kind.
	wantPlanted(t, p, lg, "globex")
	if _, err := os.Stat(filepath.Join(dir, "logs", "acme.log")); !os.IsNotExist(err) {
		t.Errorf("acme's log file survived the delete: %v", err)
	}

	// A new acme inherits nothing: it starts empty, and A's old files put
	// back in its place open nothing.
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", stack)
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get(ctx, "findings", "k"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("new acme: Get = %q, %v; want not found", v, err)
	}
	if es, err := lg.Read("acme", logs.Query{}); err != nil || len(es) != 0 {
		t.Errorf("new acme: logs = %v, %v; want none", es, err)
	}
	if err := lg.Append(logs.Entry{Account: "acme", Msg: "new acme's own line"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil { // releases data.db, replaced below
		t.Fatal(err)
	}
	for rel, copied := range acmeFiles {
		copyTo(t, copied, filepath.Join(dir, rel))
	}
	p2, err := local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	lg2, err := logs.Open(logs.Config{Dir: filepath.Join(dir, "logs"), Keys: logKeys(p2)})
	if err != nil {
		t.Fatal(err)
	}
	defer lg2.Close()
	d, err = p2.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get(ctx, "findings", "k"); err == nil || bytes.Contains(v, []byte("CANARY")) {
		t.Errorf("old data.db under the new acme: Get = %q, %v; want an error", v, err)
	}
	if v, err := d.GetBlob(ctx, "uploads", "report.pdf"); err == nil || bytes.Contains(v, []byte("CANARY")) {
		t.Errorf("old blob under the new acme: GetBlob = %q, %v; want an error", v, err)
	}
	if es, err := lg2.Read("acme", logs.Query{}); err != nil || len(es) != 0 {
		t.Errorf("old log file under the new acme: logs = %v, %v; want none", es, err)
	}
	// Twin: the new acme's own data reads through the same code.
	if err := d.Put(ctx, "findings", "k2", []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get(ctx, "findings", "k2"); err != nil || string(v) != "mine" {
		t.Errorf("new acme's own value = %q, %v", v, err)
	}
	if err := d.PutBlob(ctx, "uploads", "new.pdf", []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if v, err := d.GetBlob(ctx, "uploads", "new.pdf"); err != nil || string(v) != "mine" {
		t.Errorf("new acme's own blob = %q, %v", v, err)
	}
	// The trash is empty.
	if ents, _ := os.ReadDir(filepath.Join(dir, "trash")); len(ents) != 0 {
		t.Errorf("trash holds %d entries after delete", len(ents))
	}
}

// TestInterruptedDeleteCompletes simulates a crash after the key was shredded
// but before the directory was removed: the account does not exist, and a
// new account of that name starts empty.
func TestInterruptedDeleteCompletes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	d, _ := p.Data(ctx, "acme")
	d.Put(ctx, "findings", "k", []byte("old"))
	p.Close()
	os.Remove(filepath.Join(dir, "accounts", "acme", "data.key")) // "crashed" mid-delete
	os.MkdirAll(filepath.Join(dir, "trash", "acme-half"), 0o700)  // and one mid-trash

	p, err = local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if ents, _ := os.ReadDir(filepath.Join(dir, "trash")); len(ents) != 0 {
		t.Errorf("New left %d trash entries", len(ents))
	}
	if ids, _ := p.Accounts(ctx); len(ids) != 0 {
		t.Errorf("half-deleted account listed: %v", ids)
	}
	if _, err := p.Data(ctx, "acme"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("Data of half-deleted account: got %v, want not found", err)
	}
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	d, _ = p.Data(ctx, "acme")
	if _, err := d.Get(ctx, "findings", "k"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("old data revived in recreated account: %v", err)
	}
}

// TestSymlinkNotFollowed plants links in a bucket pointing outside it; no
// blob operation follows them. Twin: a regular blob next to them works.
func TestSymlinkNotFollowed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, id := range []silo.AccountID{"acme", "globex"} {
		p.CreateAccount(ctx, id, silo.KindTenant)
		providertest.ApplyAll(t, p, id, providertest.Stack(t))
	}
	outside := filepath.Join(t.TempDir(), "outside")
	os.MkdirAll(outside, 0o700)
	os.WriteFile(filepath.Join(outside, "target"), []byte("OUTSIDE-SECRET"), 0o600)
	g, _ := p.Data(ctx, "globex")
	g.PutBlob(ctx, "uploads", "theirs", []byte("GLOBEX-BLOB"))

	bucket := filepath.Join(dir, "accounts", "acme", "blobs", "uploads")
	links := map[string]string{
		"file-link":   filepath.Join(outside, "target"),
		"dir-link":    outside,
		"other-acct":  filepath.Join(dir, "accounts", "globex", "blobs", "uploads", "theirs"),
		"rel-link":    "../../../globex/blobs/uploads/theirs",
		"master-link": filepath.Join(dir, "master.key"),
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(bucket, name)); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := p.Data(ctx, "acme")
	for name := range links {
		t.Run(name, func(t *testing.T) {
			for _, key := range []string{name, name + "/target", name + "/x"} {
				if v, err := d.GetBlob(ctx, "uploads", key); err == nil {
					t.Errorf("GetBlob(%q) followed the link: %q", key, v)
				}
			}
			if err := d.PutBlob(ctx, "uploads", name+"/x", []byte("escaped")); err == nil {
				t.Errorf("PutBlob(%q) wrote through the link", name+"/x")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); !os.IsNotExist(err) {
		t.Errorf("a file was created outside the bucket: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "target")); string(b) != "OUTSIDE-SECRET" {
		t.Errorf("outside target changed: %q", b)
	}
	ks, err := d.ListBlobs(ctx, "uploads", "", 100)
	if err != nil || len(ks) != 0 {
		t.Errorf("ListBlobs listed links: %q, %v", ks, err)
	}
	// Twin: a regular blob in the same bucket works.
	if err := d.PutBlob(ctx, "uploads", "regular", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if v, err := d.GetBlob(ctx, "uploads", "regular"); err != nil || string(v) != "ok" {
		t.Errorf("GetBlob(regular) = %q, %v", v, err)
	}
	// Overwriting a link replaces the link, not its target.
	if err := d.PutBlob(ctx, "uploads", "file-link", []byte("replaced")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "target")); string(b) != "OUTSIDE-SECRET" {
		t.Errorf("PutBlob over a link wrote its target: %q", b)
	}
}

// snapshot returns every path under dir.
func snapshot(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !strings.Contains(path, ".tmp-") {
			out[path] = true
		}
		return nil
	})
	return out
}

// TestTraversalStaysInside runs the traversal corpus and checks the
// filesystem: every new path is inside acme's uploads bucket.
func TestTraversalStaysInside(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, id := range []silo.AccountID{"acme", "globex"} {
		p.CreateAccount(ctx, id, silo.KindTenant)
		providertest.ApplyAll(t, p, id, providertest.Stack(t))
	}
	parent := filepath.Dir(dir)
	before := snapshot(t, parent)
	bucket := filepath.Join(dir, "accounts", "acme", "blobs", "uploads") + string(filepath.Separator)
	d, _ := p.Data(ctx, "acme")
	stored, rejected := 0, 0
	for _, key := range providertest.TraversalKeys {
		if err := d.PutBlob(ctx, "uploads", key, []byte("x")); err != nil {
			if c := silo.ErrorCode(err); c != silo.CodeInvalid && c != silo.CodeConflict {
				t.Errorf("PutBlob(%.40q): got %v, want CodeInvalid (or CodeConflict with an earlier key)", key, err)
			}
			rejected++
			continue
		}
		stored++
	}
	for path := range snapshot(t, parent) {
		if !before[path] && !strings.HasPrefix(path, bucket) && path != dir+"/accounts/acme/data.db" {
			t.Errorf("traversal created %s outside the bucket", path)
		}
	}
	if stored == 0 || rejected == 0 {
		t.Errorf("stored %d, rejected %d; the corpus should have both", stored, rejected)
	}
}

func FuzzPutBlob(f *testing.F) {
	for _, k := range providertest.TraversalKeys {
		f.Add(k)
	}
	dir := f.TempDir()
	p, err := local.New(local.Config{Dir: dir})
	if err != nil {
		f.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	p.CreateAccount(ctx, "acme", silo.KindTenant)
	providertest.ApplyAll(f, p, "acme", providertest.Stack(f))
	d, _ := p.Data(ctx, "acme")
	bucket, err := filepath.EvalSymlinks(filepath.Join(dir, "accounts", "acme", "blobs", "uploads"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := d.PutBlob(ctx, "uploads", key, []byte("fuzz"))
		if err != nil {
			if c := silo.ErrorCode(err); c != silo.CodeInvalid && c != silo.CodeConflict {
				t.Fatalf("PutBlob(%q): unexpected error %v", key, err)
			}
			if provider.ValidateBlobKey(key) == nil && silo.ErrorCode(err) == silo.CodeInvalid {
				t.Fatalf("PutBlob(%q) rejected a valid key: %v", key, err)
			}
			return
		}
		// It landed inside the bucket, at exactly the key.
		path := filepath.Join(bucket, filepath.FromSlash(key))
		rel, err := filepath.Rel(bucket, path)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			t.Fatalf("PutBlob(%q) resolves outside the bucket: %s", key, path)
		}
		b, err := os.ReadFile(path)
		if err != nil || len(b) != len("fuzz")+envelope.Overhead || bytes.Contains(b, []byte("fuzz")) {
			t.Fatalf("PutBlob(%q): file %s = %q, %v; want the sealed blob", key, path, b, err)
		}
		if v, err := d.GetBlob(ctx, "uploads", key); err != nil || string(v) != "fuzz" {
			t.Fatalf("GetBlob(%q) = %q, %v; want what was put", key, v, err)
		}
		if err := d.DeleteBlob(ctx, "uploads", key); err != nil {
			t.Fatalf("DeleteBlob(%q): %v", key, err)
		}
	})
}
