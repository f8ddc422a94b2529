package providertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// TraversalKeys is the corpus of hostile blob keys. A provider must either
// reject each with CodeInvalid or store it strictly inside the bucket, under
// exactly that key.
var TraversalKeys = []string{
	"..",
	".",
	"%2e%2e",
	"%2e%2e/x",
	"..%2f..%2fx",
	"../x",
	"a/../../x",
	"a/..",
	"a/./b",
	"/etc/passwd",
	"//x",
	"a//b",
	"a/",
	`C:\x`,
	`..\x`,
	`a\..\..\x`,
	"a\x00b",
	"\x00",
	"a\nb",
	"./.",
	"x.",
	"x ",
	"a./b",
	"a /b",
	"...",
	"\u2024\u2024/x",        // one dot leader: looks like ".."
	"\uff0e\uff0e\uff0fx",   // fullwidth "../x"
	"a\uff0fb",              // fullwidth solidus
	"\u2215etc\u2215passwd", // division slash
	"\xff\xfe",              // not UTF-8
	"",
	strings.Repeat("k", 2000),
	strings.Repeat("a/", 600) + "x",
}

func testTableData(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")

	_, err := d.Get(ctx, "findings", "missing")
	wantNotFound(t, "Get missing key", err)
	must(t, "Put", d.Put(ctx, "findings", "f1", []byte("high")))
	must(t, "Put empty value", d.Put(ctx, "findings", "empty", nil))
	v, err := d.Get(ctx, "findings", "f1")
	must(t, "Get", err)
	if diff := cmp.Diff([]byte("high"), v); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
	if v, err := d.Get(ctx, "findings", "empty"); err != nil || len(v) != 0 {
		t.Errorf("Get empty = %q, %v; want empty value", v, err)
	}
	must(t, "overwrite", d.Put(ctx, "findings", "f1", []byte("low")))
	if v, _ := d.Get(ctx, "findings", "f1"); string(v) != "low" {
		t.Errorf("after overwrite Get = %q, want low", v)
	}
	// Tables are separate.
	_, err = d.Get(ctx, "sessions", "f1")
	wantNotFound(t, "Get from other table", err)
	must(t, "Delete", d.Delete(ctx, "findings", "f1"))
	_, err = d.Get(ctx, "findings", "f1")
	wantNotFound(t, "Get after Delete", err)
	must(t, "Delete missing key", d.Delete(ctx, "findings", "f1"))

	for _, table := range []string{"nosuch", "../findings", ""} {
		_, err = d.Get(ctx, table, "k")
		wantNotFound(t, fmt.Sprintf("Get from table %q", table), err)
		wantNotFound(t, fmt.Sprintf("Put into table %q", table), d.Put(ctx, table, "k", []byte("v")))
		wantNotFound(t, fmt.Sprintf("Delete from table %q", table), d.Delete(ctx, table, "k"))
		_, err = d.Add(ctx, table, "k", 1)
		wantNotFound(t, fmt.Sprintf("Add in table %q", table), err)
		_, err = d.Scan(ctx, table, "", "", 10)
		wantNotFound(t, fmt.Sprintf("Scan table %q", table), err)
	}
	wantCode(t, "Put empty key", d.Put(ctx, "findings", "", []byte("v")), silo.CodeInvalid)
	wantCode(t, "Put 2000-byte key", d.Put(ctx, "findings", strings.Repeat("k", 2000), []byte("v")), silo.CodeInvalid)
	// Keys are opaque bytes: traversal-looking keys are just keys.
	must(t, "Put ../x key", d.Put(ctx, "findings", "../x", []byte("dots")))
	if v, err := d.Get(ctx, "findings", "../x"); err != nil || string(v) != "dots" {
		t.Errorf("Get ../x = %q, %v", v, err)
	}
}

func testScan(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")
	for _, k := range []string{"b/1", "a/2", "a/1", "a/3", "a", "c", "a/10"} {
		must(t, "Put "+k, d.Put(ctx, "findings", k, []byte("v"+k)))
	}
	keys := func(kvs []provider.KV) []string {
		out := []string{}
		for _, kv := range kvs {
			if string(kv.Value) != "v"+kv.Key {
				t.Errorf("Scan: key %q has value %q", kv.Key, kv.Value)
			}
			out = append(out, kv.Key)
		}
		return out
	}
	tests := []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"", "", 100, []string{"a", "a/1", "a/10", "a/2", "a/3", "b/1", "c"}},
		{"a/", "", 100, []string{"a/1", "a/10", "a/2", "a/3"}},
		{"a/", "", 2, []string{"a/1", "a/10"}},
		{"a/", "a/10", 2, []string{"a/2", "a/3"}},
		{"a/", "a/3", 2, []string{}},
		{"a/", "a/0", 1, []string{"a/1"}},
		{"", "b/1", 10, []string{"c"}},
		{"", "a", 1, []string{"a/1"}},
		{"z", "", 10, []string{}},
		{"a/", "b", 10, []string{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("prefix=%q,after=%q,limit=%d", tt.prefix, tt.after, tt.limit), func(t *testing.T) {
			kvs, err := d.Scan(ctx, "findings", tt.prefix, tt.after, tt.limit)
			must(t, "Scan", err)
			if diff := cmp.Diff(tt.want, keys(kvs)); diff != "" {
				t.Errorf("Scan (-want +got):\n%s", diff)
			}
		})
	}
	// Paging with after visits every key exactly once.
	var all []string
	after := ""
	for {
		kvs, err := d.Scan(ctx, "findings", "", after, 3)
		must(t, "Scan page", err)
		if len(kvs) == 0 {
			break
		}
		all = append(all, keys(kvs)...)
		after = kvs[len(kvs)-1].Key
	}
	if diff := cmp.Diff([]string{"a", "a/1", "a/10", "a/2", "a/3", "b/1", "c"}, all); diff != "" {
		t.Errorf("paged Scan (-want +got):\n%s", diff)
	}
}

func testBlobs(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")

	_, err := d.GetBlob(ctx, "uploads", "missing")
	wantNotFound(t, "GetBlob missing", err)
	for _, k := range []string{"reports/2024/q1.pdf", "reports/2024/q2.pdf", "reports/2025/q1.pdf", "logo.png", "reports.txt"} {
		must(t, "PutBlob "+k, d.PutBlob(ctx, "uploads", k, []byte("blob:"+k)))
	}
	must(t, "PutBlob empty", d.PutBlob(ctx, "uploads", "empty", nil))
	v, err := d.GetBlob(ctx, "uploads", "reports/2024/q1.pdf")
	must(t, "GetBlob", err)
	if diff := cmp.Diff([]byte("blob:reports/2024/q1.pdf"), v); diff != "" {
		t.Errorf("GetBlob (-want +got):\n%s", diff)
	}
	if v, err := d.GetBlob(ctx, "uploads", "empty"); err != nil || len(v) != 0 {
		t.Errorf("GetBlob empty = %q, %v", v, err)
	}
	must(t, "overwrite", d.PutBlob(ctx, "uploads", "logo.png", []byte("new")))
	if v, _ := d.GetBlob(ctx, "uploads", "logo.png"); string(v) != "new" {
		t.Errorf("after overwrite GetBlob = %q, want new", v)
	}
	list := func(prefix string, limit int) []string {
		t.Helper()
		ks, err := d.ListBlobs(ctx, "uploads", prefix, limit)
		must(t, "ListBlobs", err)
		return ks
	}
	tests := []struct {
		prefix string
		limit  int
		want   []string
	}{
		{"", 100, []string{"empty", "logo.png", "reports.txt", "reports/2024/q1.pdf", "reports/2024/q2.pdf", "reports/2025/q1.pdf"}},
		{"reports/", 100, []string{"reports/2024/q1.pdf", "reports/2024/q2.pdf", "reports/2025/q1.pdf"}},
		{"reports", 2, []string{"reports.txt", "reports/2024/q1.pdf"}},
		{"reports/2024/q", 100, []string{"reports/2024/q1.pdf", "reports/2024/q2.pdf"}},
		{"nothing", 100, []string{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, list(tt.prefix, tt.limit)); diff != "" {
			t.Errorf("ListBlobs(%q, %d) (-want +got):\n%s", tt.prefix, tt.limit, diff)
		}
	}
	must(t, "DeleteBlob", d.DeleteBlob(ctx, "uploads", "reports/2025/q1.pdf"))
	_, err = d.GetBlob(ctx, "uploads", "reports/2025/q1.pdf")
	wantNotFound(t, "GetBlob after delete", err)
	must(t, "DeleteBlob missing", d.DeleteBlob(ctx, "uploads", "reports/2025/q1.pdf"))
	if diff := cmp.Diff([]string{"reports/2024/q1.pdf", "reports/2024/q2.pdf"}, list("reports/", 100)); diff != "" {
		t.Errorf("ListBlobs after delete (-want +got):\n%s", diff)
	}
	// A prefix is not a blob.
	_, err = d.GetBlob(ctx, "uploads", "reports/2024")
	wantNotFound(t, "GetBlob of a prefix", err)

	for _, bucket := range []string{"nosuch", "../uploads", ""} {
		_, err = d.GetBlob(ctx, bucket, "k")
		wantNotFound(t, fmt.Sprintf("GetBlob from bucket %q", bucket), err)
		wantNotFound(t, fmt.Sprintf("PutBlob to bucket %q", bucket), d.PutBlob(ctx, bucket, "k", []byte("v")))
		wantNotFound(t, fmt.Sprintf("DeleteBlob from bucket %q", bucket), d.DeleteBlob(ctx, bucket, "k"))
		_, err = d.ListBlobs(ctx, bucket, "", 10)
		wantNotFound(t, fmt.Sprintf("ListBlobs of bucket %q", bucket), err)
	}
}

// MaxList is the limit the suite passes to ListBlobs when it wants all keys.
const MaxList = 1000

func testBlobTraversal(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	create(t, p, "globex")
	for _, id := range []silo.AccountID{"acme", "globex"} {
		ApplyAll(t, p, id, Stack(t))
	}
	second, err := silo.NewResource(silo.TypeBucket, "other", map[string]any{})
	must(t, "NewResource", err)
	ApplyAll(t, p, "acme", []silo.Resource{second})
	a, b := dataOf(t, p, "acme"), dataOf(t, p, "globex")

	stored := 0
	for _, key := range TraversalKeys {
		t.Run(fmt.Sprintf("%.40q", key), func(t *testing.T) {
			value := []byte("traversal:" + key)
			err := a.PutBlob(ctx, "uploads", key, value)
			if err != nil {
				wantCode(t, "PutBlob", err, silo.CodeInvalid)
				_, err := a.GetBlob(ctx, "uploads", key)
				if silo.ErrorCode(err) != silo.CodeInvalid && !errors.Is(err, silo.ErrNotFound) {
					t.Errorf("GetBlob of rejected key: got %v, want CodeInvalid or not found", err)
				}
				return
			}
			stored++
			// Stored: exactly under that key, in that bucket, in that account.
			got, err := a.GetBlob(ctx, "uploads", key)
			if err != nil || string(got) != string(value) {
				t.Errorf("GetBlob after PutBlob = %q, %v; want %q", got, err, value)
			}
			ks, err := a.ListBlobs(ctx, "uploads", "", MaxList)
			must(t, "ListBlobs", err)
			if !contains(ks, key) {
				t.Errorf("ListBlobs does not list stored key %q: %q", key, ks)
			}
			if ks, _ := a.ListBlobs(ctx, "other", "", MaxList); len(ks) != 0 {
				t.Errorf("key %q reached bucket other: %q", key, ks)
			}
			if ks, _ := b.ListBlobs(ctx, "uploads", "", MaxList); len(ks) != 0 {
				t.Errorf("key %q reached account globex: %q", key, ks)
			}
			must(t, "DeleteBlob", a.DeleteBlob(ctx, "uploads", key))
		})
	}
	// Twin: the look-alikes are ordinary names and must be storable.
	for _, key := range []string{"%2e%2e", "\u2024\u2024/x", "a\uff0fb"} {
		must(t, "PutBlob look-alike "+key, a.PutBlob(ctx, "uploads", key, []byte("ok")))
	}
	if stored == 0 {
		t.Errorf("no traversal key was stored; the look-alikes should be")
	}
}

func testConfigAndSecrets(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")
	if v, err := d.Config(ctx, "log_level"); err != nil || v != "info" {
		t.Errorf("Config(log_level) = %q, %v; want info", v, err)
	}
	_, err := d.Config(ctx, "nosuch")
	wantNotFound(t, "Config missing", err)

	_, err = d.Secret(ctx, "api_token")
	wantNotFound(t, "Secret declared but never put", err)
	wantNotFound(t, "PutSecret to undeclared slot", p.PutSecret(ctx, "acme", "undeclared", []byte("x")))
	_, err = d.Secret(ctx, "undeclared")
	wantNotFound(t, "Secret undeclared", err)

	must(t, "PutSecret declared", p.PutSecret(ctx, "acme", "api_token", []byte("tok-123")))
	must(t, "PutSecret again", p.PutSecret(ctx, "acme", "api_token", []byte("tok-456")))
	v, err := d.Secret(ctx, "api_token")
	must(t, "Secret", err)
	if diff := cmp.Diff([]byte("tok-456"), v); diff != "" {
		t.Errorf("Secret (-want +got):\n%s", diff)
	}
	// Every provider holds the same sizes (provider.CheckSecretSize), so
	// a value set on one fits on all.
	for _, c := range []struct {
		name  string
		value []byte
		limit int
	}{
		{"text", bytes.Repeat([]byte("s"), provider.MaxSecretSize), provider.MaxSecretSize},
		{"other data", bytes.Repeat([]byte{0xff}, provider.MaxBinarySecretSize), provider.MaxBinarySecretSize},
	} {
		over := append(slices.Clone(c.value), c.value[0])
		err := p.PutSecret(ctx, "acme", "api_token", over)
		wantCode(t, "PutSecret of "+c.name+" one byte over the limit", err, silo.CodeInvalid)
		if msg := silo.UserMessage(err); err != nil && (!strings.Contains(msg, "api_token") || !strings.Contains(msg, fmt.Sprintf("%d bytes", len(over))) || !strings.Contains(msg, fmt.Sprintf("at most %d bytes", c.limit))) {
			t.Errorf("PutSecret of %s one byte over the limit: %q; want the secret's name, its size and the limit", c.name, msg)
		}
		must(t, "PutSecret of "+c.name+" at the limit", p.PutSecret(ctx, "acme", "api_token", c.value))
		if v, err := d.Secret(ctx, "api_token"); err != nil || !bytes.Equal(v, c.value) {
			t.Errorf("Secret of %s at the limit = %d bytes, %v; want the %d put", c.name, len(v), err, len(c.value))
		}
	}
	// Any bytes come back as they went in, including text that looks like
	// an encoding.
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, want := range [][]byte{all, []byte("base64:AAAA"), []byte(" line one\n\tline two \r\n")} {
		must(t, "PutSecret", p.PutSecret(ctx, "acme", "api_token", want))
		v, err := d.Secret(ctx, "api_token")
		must(t, "Secret", err)
		if diff := cmp.Diff(want, v); diff != "" {
			t.Errorf("Secret of %q (-want +got):\n%s", want, diff)
		}
	}
	must(t, "PutSecret empty", p.PutSecret(ctx, "acme", "api_token", nil))
	if v, err := d.Secret(ctx, "api_token"); err != nil || len(v) != 0 {
		t.Errorf("empty Secret = %q, %v", v, err)
	}

	// Deleting the slot removes the value; redeclaring does not bring it back.
	must(t, "PutSecret", p.PutSecret(ctx, "acme", "api_token", []byte("tok-789")))
	must(t, "delete secret", p.Apply(ctx, "acme", silo.Change{Op: silo.OpDelete, Type: silo.TypeSecret, Name: "api_token"}))
	_, err = d.Secret(ctx, "api_token")
	wantNotFound(t, "Secret after slot deleted", err)
	wantNotFound(t, "PutSecret after slot deleted", p.PutSecret(ctx, "acme", "api_token", []byte("x")))
	ApplyAll(t, p, "acme", Stack(t)[5:6])
	_, err = d.Secret(ctx, "api_token")
	wantNotFound(t, "Secret after slot redeclared", err)
}

func testKeyInfo(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	create(t, p, "globex")
	a, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo acme", err)
	b, err := p.KeyInfo(ctx, "globex")
	must(t, "KeyInfo globex", err)
	if a.Algorithm == "" || a.Fingerprint == "" || a.WrappedBy == "" {
		t.Errorf("KeyInfo has empty fields: %+v", a)
	}
	if a.Fingerprint == b.Fingerprint {
		t.Errorf("two accounts share data key fingerprint %s", a.Fingerprint)
	}
}

func testIsolation(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	for _, id := range []silo.AccountID{"acme", "globex"} {
		create(t, p, id)
		ApplyAll(t, p, id, Stack(t))
	}
	a, b := dataOf(t, p, "acme"), dataOf(t, p, "globex")
	must(t, "A Put", a.Put(ctx, "findings", "only-a", []byte("A")))
	must(t, "A PutBlob", a.PutBlob(ctx, "uploads", "only-a", []byte("A")))
	must(t, "A PutSecret", p.PutSecret(ctx, "acme", "api_token", []byte("A-secret")))
	must(t, "B PutSecret", p.PutSecret(ctx, "globex", "api_token", []byte("B-secret")))
	must(t, "A config", p.Apply(ctx, "acme", configChange(t, "plan", "a-only")))

	// Controls: A sees its own data.
	if v, err := a.Get(ctx, "findings", "only-a"); err != nil || string(v) != "A" {
		t.Errorf("control: A Get = %q, %v", v, err)
	}
	if v, err := a.GetBlob(ctx, "uploads", "only-a"); err != nil || string(v) != "A" {
		t.Errorf("control: A GetBlob = %q, %v", v, err)
	}
	if v, err := a.Secret(ctx, "api_token"); err != nil || string(v) != "A-secret" {
		t.Errorf("control: A Secret = %q, %v", v, err)
	}
	if v, err := a.Config(ctx, "plan"); err != nil || v != "a-only" {
		t.Errorf("control: A Config = %q, %v", v, err)
	}
	// B sees none of it.
	_, err := b.Get(ctx, "findings", "only-a")
	wantNotFound(t, "B Get of A's key", err)
	_, err = b.GetBlob(ctx, "uploads", "only-a")
	wantNotFound(t, "B GetBlob of A's blob", err)
	if kvs, err := b.Scan(ctx, "findings", "", "", 100); err != nil || len(kvs) != 0 {
		t.Errorf("B Scan = %v, %v; want nothing", kvs, err)
	}
	if ks, err := b.ListBlobs(ctx, "uploads", "", 100); err != nil || len(ks) != 0 {
		t.Errorf("B ListBlobs = %v, %v; want nothing", ks, err)
	}
	if v, err := b.Secret(ctx, "api_token"); err != nil || string(v) != "B-secret" {
		t.Errorf("B Secret = %q, %v; want B-secret", v, err)
	}
	if v, err := b.Config(ctx, "plan"); err != nil || v != "pro" {
		t.Errorf("B Config = %q, %v; want pro", v, err)
	}
	// A's resources are not B's.
	must(t, "A-only table", p.Apply(ctx, "acme", tableChange(t, "a-only")))
	must(t, "A Put a-only", a.Put(ctx, "a-only", "k", []byte("v")))
	_, err = b.Get(ctx, "a-only", "k")
	wantNotFound(t, "B Get from A's table", err)
	// Counters: B's Add of the same key counts in B's table only.
	if n, err := a.Add(ctx, "findings", "count", 5); err != nil || n != 5 {
		t.Errorf("control: A Add = %d, %v; want 5", n, err)
	}
	if n, err := b.Add(ctx, "findings", "count", 1); err != nil || n != 1 {
		t.Errorf("B Add = %d, %v; want 1 (its own counter)", n, err)
	}
	if v, err := a.Get(ctx, "findings", "count"); err != nil || string(v) != "5" {
		t.Errorf("A's counter after B's Add = %q, %v; want 5", v, err)
	}
	_, err = b.Add(ctx, "a-only", "k", 1)
	wantNotFound(t, "B Add in A's table", err)
}
