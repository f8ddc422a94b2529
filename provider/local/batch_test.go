package local_test

import (
	"context"
	"reflect"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/local"
)

func createChange(typ silo.ResourceType, name, spec string) silo.Change {
	r := &silo.Resource{Type: typ, Name: name}
	if spec != "" {
		r.Spec = []byte(spec)
	}
	return silo.Change{Op: silo.OpCreate, Type: typ, Name: name, Desired: r}
}

func onboardChanges() []silo.Change {
	return []silo.Change{
		createChange(silo.TypeTable, "findings", ""),
		createChange(silo.TypeTable, "audit", ""),
		createChange(silo.TypeBucket, "reports", ""),
		createChange(silo.TypeConfig, "plan", `{"value":"pro"}`),
		createChange(silo.TypeSecret, "api_token", ""),
		createChange(silo.TypeRoute, "GET /findings", `{"method":"GET","path":"/findings","function":"list"}`),
	}
}

func newAccount(t *testing.T, p *local.Provider, id silo.AccountID) {
	t.Helper()
	if err := p.CreateAccount(context.Background(), id, silo.KindTenant); err != nil {
		t.Fatal(err)
	}
}

// TestApplyBatchSameAsApply: a batch leaves the account as the same changes
// applied one by one do (resources, tables, buckets, config), and a repeated
// batch (as after a crash) converges.
func TestApplyBatchSameAsApply(t *testing.T) {
	ctx := context.Background()
	p := newLocal(t)
	newAccount(t, p, "one")
	newAccount(t, p, "batch")
	for _, c := range onboardChanges() {
		if err := p.Apply(ctx, "one", c); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if n, err := p.ApplyBatch(ctx, "batch", onboardChanges()); err != nil || n != len(onboardChanges()) {
			t.Fatalf("ApplyBatch = %d, %v; want %d, nil", n, err, len(onboardChanges()))
		}
	}
	want, err := p.Resources(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Resources(ctx, "batch")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(onboardChanges()) || !reflect.DeepEqual(got, want) {
		t.Fatalf("resources after a batch:\n%v\nafter single applies:\n%v", got, want)
	}
	d, err := p.Data(ctx, "batch")
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"findings", "audit"} {
		if err := d.Put(ctx, table, "k", []byte("v")); err != nil {
			t.Errorf("put into table %s created by the batch: %v", table, err)
		}
	}
	if err := d.PutBlob(ctx, "reports", "r1", []byte("x")); err != nil {
		t.Errorf("put into bucket created by the batch: %v", err)
	}
	if v, err := d.Config(ctx, "plan"); err != nil || v != "pro" {
		t.Errorf("config plan = %q, %v; want pro", v, err)
	}
}

// TestApplyBatchStopsAtFailure: a change that fails stops the batch; the
// count says how many were applied and the manifest records exactly those.
// A bad name anywhere changes nothing (the twin: the same batch without it
// applies everything, above).
func TestApplyBatchStopsAtFailure(t *testing.T) {
	ctx := context.Background()
	p := newLocal(t)
	newAccount(t, p, "acme")

	cs := onboardChanges()
	cs[3] = createChange(silo.TypeConfig, "plan", `{"value":42}`) // not a string
	n, err := p.ApplyBatch(ctx, "acme", cs)
	if silo.ErrorCode(err) != silo.CodeInvalid || n != 3 {
		t.Fatalf("ApplyBatch with a bad config spec = %d, %v; want 3, an invalid-input error", n, err)
	}
	rs, err := p.Resources(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range rs {
		keys = append(keys, r.Key())
	}
	if want := []string{"bucket/reports", "table/audit", "table/findings"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("recorded after the failed batch: %v, want %v", keys, want)
	}

	newAccount(t, p, "globex")
	cs = onboardChanges()
	cs[4] = createChange(silo.TypeTable, "bad/name", "")
	if n, err := p.ApplyBatch(ctx, "globex", cs); silo.ErrorCode(err) != silo.CodeInvalid || n != 0 {
		t.Fatalf("ApplyBatch with a bad name = %d, %v; want 0, an invalid-input error", n, err)
	}
	if rs, err := p.Resources(ctx, "globex"); err != nil || len(rs) != 0 {
		t.Fatalf("resources after a batch with a bad name: %v, %v; want none", rs, err)
	}
	d, err := p.Data(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "k", []byte("v")); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Fatalf("put into a table of the rejected batch: %v; want not found", err)
	}

	if _, err := p.ApplyBatch(ctx, "nobody", onboardChanges()); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Fatalf("ApplyBatch on a missing account: %v; want not found", err)
	}
}
