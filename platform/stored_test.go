package platform_test

import (
	"context"
	"testing"

	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
)

// TestStoredBytesSampled: the meter's hourly sample records, for each
// tenant, the bytes in each of its tables and buckets exactly as the
// storage tracker counts them (what GET /v1/accounts/{id}/storage shows),
// an idle tenant's empty tables at zero; a second sample of the hour
// replaces the first.
func TestStoredBytesSampled(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, "../examples/findings")
	acme := p.Tenant(t, "acme")
	p.Tenant(t, "globex")
	pp := p.Platform()
	ctx := context.Background()
	for range 3 {
		if r := acme.POST(t, "/findings", `{"severity":"high","app":"github","title":"Leaked token"}`); r.Status != 201 && r.Status != 200 {
			t.Fatalf("POST /findings: %s", r)
		}
	}
	sample := func() map[string]store.StoredDay {
		t.Helper()
		if err := pp.Usage.SampleStored(ctx); err != nil {
			t.Fatal(err)
		}
		var days []store.StoredDay
		if err := pp.Store.View(ctx, func(tx store.Tx) error {
			var err error
			days, err = tx.Stored(store.UsageQuery{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		out := map[string]store.StoredDay{}
		for _, d := range days {
			out[string(d.Account)+"/"+d.Kind+"/"+d.Name] = d
		}
		return out
	}
	got := sample()
	used, err := pp.StoredBytes(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var findings int64
	for _, u := range used {
		d, ok := got["acme/"+u.Kind+"/"+u.Name]
		if !ok || d.ByteHours != u.Bytes || d.SampledHours != 1 {
			t.Errorf("acme %s %s: sampled %+v, want %d bytes for one hour (as the tracker counts)", u.Kind, u.Name, d, u.Bytes)
		}
		if u.Kind == store.StoredTable && u.Name == "findings" {
			findings = u.Bytes
		}
	}
	if findings == 0 {
		t.Errorf("acme's findings table holds 0 bytes after 3 findings; want them counted")
	}
	if d, ok := got["globex/table/findings"]; !ok || d.ByteHours != 0 || d.SampledHours != 1 {
		t.Errorf("globex's empty findings table: got %+v, want sampled at 0 bytes", d)
	}
	acme.POST(t, "/findings", `{"severity":"low","app":"slack","title":"Another"}`)
	if again := sample()["acme/table/findings"]; again.SampledHours != 1 || again.ByteHours <= findings {
		t.Errorf("second sample of the hour: got %d byte-hours over %d hours, want more than %d over 1 (replaced)", again.ByteHours, again.SampledHours, findings)
	}
}
