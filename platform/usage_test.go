package platform_test

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/usage"
)

const plansApp = "testdata/limits"

func refusal(t *testing.T, r *silotest.Response) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("refusal body %s: %v", r.Body, err)
	}
	return e.Error.Message
}

// TestPlanLimits: through the real gateway, a tenant on plan free is
// refused past its burst with a message naming the limit, the plan and how
// to raise it, while a tenant on pro is served; moving the tenant to pro
// (a param change, no restart) lifts the limit once the gateway re-reads it,
// and an operator's override lowers it again.
func TestPlanLimits(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, plansApp)
	acme := p.Tenant(t, "acme")
	globex := p.Tenant(t, "globex", silotest.Param("plan", "pro"))
	pp := p.Platform()
	ctx := context.Background()

	for i := range 2 {
		if r := acme.GET(t, "/hello"); r.Status != 200 {
			t.Fatalf("acme (free) request %d within its burst: got %s, want 200", i+1, r)
		}
	}
	r := acme.GET(t, "/hello")
	if r.Status != 429 || r.Header.Get("X-Silo-Limit") != "rate" {
		t.Fatalf("acme (free) past its burst: got %s (limit %q), want 429 naming rate", r, r.Header.Get("X-Silo-Limit"))
	}
	if msg := refusal(t, r); !strings.Contains(msg, `plan "free"`) || !strings.Contains(msg, "larger plan") {
		t.Errorf("refusal: got %q, want the plan and how to raise the limit", msg)
	}
	dev := p.Tenant(t, "dev-ann", silotest.Kind(silo.KindDeveloper)) // on the default plan, free
	for i := range 10 {
		if r := globex.GET(t, "/hello"); r.Status != 200 {
			t.Fatalf("globex (pro) request %d: got %s, want 200", i+1, r)
		}
		if r := dev.GET(t, "/hello"); r.Status != 200 {
			t.Fatalf("developer account request %d: got %s, want 200 (plans are for tenants)", i+1, r)
		}
	}

	if _, err := pp.Plane.UpdateParams(ctx, "acme", map[string]string{"plan": "pro"}, ""); err != nil {
		t.Fatal(err)
	}
	pp.Invalidate("acme")
	p.Clock().Advance(time.Second) // the gateway's limit refresh
	for i := range 10 {
		if r := acme.GET(t, "/hello"); r.Status != 200 {
			t.Fatalf("acme on pro, request %d: got %s, want 200", i+1, r)
		}
	}

	got, err := pp.SetLimitOverride(ctx, "acme", silo.Limits{Concurrency: 3, Rate: 0.001, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got.Plan != "pro" || got.Effective.Rate != 0.001 || got.Effective.Concurrency != 3 {
		t.Errorf("limits after the override: got %+v, want plan pro with rate 0.001, concurrency 3", got)
	}
	p.Clock().Advance(time.Second)
	if r := acme.GET(t, "/hello"); r.Status != 200 {
		t.Fatalf("first request under the override: got %s, want 200", r)
	}
	r = acme.GET(t, "/hello")
	if r.Status != 429 || !strings.Contains(refusal(t, r), "override") {
		t.Fatalf("second request under the override (burst 1): got %s, want 429 naming the override", r)
	}
	if _, err := pp.SetLimitOverride(ctx, "acme", silo.Limits{Rate: -1}); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("negative override: got %v, want invalid", err)
	}
}

// TestMeteringCountsExactly: every request a tenant sends through the
// gateway over HTTP is in the stored usage once the meter flushes, per
// function, with its bytes and GB-seconds; requests refused by a limit are
// not, and another tenant's are apart.
func TestMeteringCountsExactly(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, plansApp)
	acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"))
	free := p.Tenant(t, "initech")
	pp := p.Platform()
	ctx := context.Background()

	const n = 57
	var in, out int64
	for i := range n {
		body := strings.Repeat("x", i)
		r := acme.POST(t, "/hello", body)
		if r.Status != 200 {
			t.Fatalf("request %d: got %s", i, r)
		}
		in, out = in+int64(len(body)), out+int64(len(r.Body))
	}
	acme.GET(t, "/nosuch") // admitted, no route: metered without a function
	served, refused := 0, 0
	for range 5 {
		if r := free.GET(t, "/hello"); r.Status == 200 {
			served++
		} else if r.Status == 429 {
			refused++
		}
	}
	if served != 2 || refused != 3 {
		t.Fatalf("initech (free, burst 2): %d served, %d refused; want 2, 3", served, refused)
	}
	if err := pp.Usage.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var days []store.UsageDay
	if err := pp.Store.View(ctx, func(tx store.Tx) error {
		var err error
		days, err = tx.Usage(store.UsageQuery{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got := map[string]store.Counters{}
	for _, d := range days {
		got[string(d.Account)+"/"+d.Function] = d.Total
	}
	hello := got["acme/hello"]
	if hello.Requests != n || hello.Errors != 0 || hello.BytesIn != in || hello.BytesOut != out {
		t.Errorf("acme/hello: got %+v, want %d requests, %d bytes in, %d out", hello, n, in, out)
	}
	if hello.DurationMicros <= 0 || hello.MemoryMiBMicros != 32*hello.DurationMicros {
		t.Errorf("acme/hello: %d MiB·µs for %d µs, want 32 MiB × the duration", hello.MemoryMiBMicros, hello.DurationMicros)
	}
	if c := got["acme/"]; c.Requests != 1 {
		t.Errorf("acme's unrouted request: got %+v, want 1 request without a function", c)
	}
	if c := got["initech/hello"]; c.Requests != 2 {
		t.Errorf("initech/hello: got %d requests, want 2 (the 3 refused are not invocations)", c.Requests)
	}
	if len(got) != 3 {
		t.Errorf("got usage for %v, want acme/hello, acme/ and initech/hello only", got)
	}

	r, err := pp.UsageReport(ctx, usage.Query{Account: "acme", Since: p.Clock().Now().Add(-time.Hour), By: usage.ByFunction})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Lines) != 2 || r.Lines[1].Function != "hello" || r.Lines[1].Requests != n || r.Lines[1].Cost <= 0 {
		t.Errorf("report by function: got %+v, want the unrouted line and hello with %d requests and a cost", r.Lines, n)
	}
}

// TestMonthlyInvocationsThroughPlatform: an override's monthly invocations
// count what the meter recorded this month, flushed or not.
func TestMonthlyInvocationsThroughPlatform(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, plansApp)
	acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"))
	pp := p.Platform()
	ctx := context.Background()
	for range 3 {
		acme.GET(t, "/hello")
	}
	if err := pp.Usage.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	acme.GET(t, "/hello") // pending in the meter
	if _, err := pp.SetLimitOverride(ctx, "acme", silo.Limits{Invocations: 6}); err != nil {
		t.Fatal(err)
	}
	p.Clock().Advance(time.Second)
	for i := range 2 {
		if r := acme.GET(t, "/hello"); r.Status != 200 {
			t.Fatalf("request %d of 6 this month: got %s, want 200", 5+i, r)
		}
	}
	if r := acme.GET(t, "/hello"); r.Status != 429 || r.Header.Get("X-Silo-Limit") != "invocations" {
		t.Fatalf("request 7 of 6 this month: got %s, want 429 naming invocations", r)
	}
}

// TestUsageFloorFollowsLifetimes: through the platform, an account's floor
// in a usage report covers the time from its onboarding to its deletion or
// now, however far back the report starts; a deleted account is still
// listed for the time it existed, and a new one only on the days it has
// existed.
func TestUsageFloorFollowsLifetimes(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, app)
	pp := p.Platform()
	ctx := context.Background()
	p.Tenant(t, "acme")
	p.Clock().Advance(6 * time.Hour)
	p.Tenant(t, "hooli")
	p.Clock().Advance(2 * time.Hour)
	if _, err := pp.Plane.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	p.Clock().Advance(time.Hour)
	hour := usage.DefaultPrices().AccountPerMonth / 720
	now := p.Clock().Now()

	for _, since := range []string{"30d", "100000d"} {
		start, err := control.Since(since, now)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pp.UsageReport(ctx, usage.Query{Since: start})
		if err != nil {
			t.Fatal(err)
		}
		got := map[silo.AccountID]float64{}
		for _, l := range r.Lines {
			got[l.Account] = l.Floor
		}
		want := map[silo.AccountID]float64{"acme": 8 * hour, "hooli": 3 * hour}
		if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
			t.Errorf("since %s, floors by account (-want +got):\n%s", since, diff)
		}
		r, err = pp.UsageReport(ctx, usage.Query{Account: "hooli", Since: start, By: usage.ByDay})
		if err != nil {
			t.Fatal(err)
		}
		var days []string
		var sum float64
		for _, l := range r.Lines {
			days, sum = append(days, l.Day), sum+l.Floor
		}
		if today := now.UTC().Format(time.DateOnly); len(days) != 1 || days[0] != today || math.Abs(sum-3*hour) > 1e-12 {
			t.Errorf("since %s, hooli by day: got days %v with floors summing to %v, want %s alone with %v", since, days, sum, today, 3*hour)
		}
	}
}

// TestReusedIDInheritsNoUsage: a tenant deleted and created again under
// its ID is two accounts in the usage report: the deleted one keeps what
// it used (what its meter held at its deletion included, flushed after
// the new one exists), marked deleted with its dates; the new one starts
// from nothing, and its monthly invocations count its own requests only.
func TestReusedIDInheritsNoUsage(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, plansApp)
	pp := p.Platform()
	ctx := context.Background()
	old := p.Tenant(t, "hooli", silotest.Param("plan", "pro"))
	for range 10 {
		old.GET(t, "/hello")
	}
	if err := pp.Usage.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	old.GET(t, "/hello") // still in the meter at the deletion
	p.Clock().Advance(time.Hour)
	if _, err := pp.Plane.DeleteAccount(ctx, "hooli"); err != nil {
		t.Fatal(err)
	}
	p.Clock().Advance(time.Hour)
	hooli := p.Tenant(t, "hooli", silotest.Param("plan", "pro"))
	if err := pp.Usage.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := pp.UsageReport(ctx, usage.Query{Account: "hooli", Since: p.Clock().Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Lines) != 2 {
		t.Fatalf("report of hooli: got %+v, want the deleted account's line and the new one's", r.Lines)
	}
	gone, cur := r.Lines[0], r.Lines[1]
	if gone.Requests != 11 || gone.Deleted == nil || !gone.Created.Before(*gone.Deleted) || !gone.Deleted.Before(cur.Created) {
		t.Errorf("the deleted hooli: got %+v, want its 11 requests, its creation and deletion before the new one's creation", gone)
	}
	if cur.Requests != 0 || cur.Deleted != nil {
		t.Errorf("the new hooli: got %+v, want no requests, not deleted", cur)
	}

	// Its monthly bound counts its own requests, not the deleted one's 11.
	if _, err := pp.SetLimitOverride(ctx, "hooli", silo.Limits{Invocations: 3}); err != nil {
		t.Fatal(err)
	}
	p.Clock().Advance(time.Second)
	for i := range 3 {
		if r := hooli.GET(t, "/hello"); r.Status != 200 {
			t.Fatalf("the new hooli's request %d of 3 this month: got %s, want 200", i+1, r)
		}
	}
	if r := hooli.GET(t, "/hello"); r.Status != 429 || r.Header.Get("X-Silo-Limit") != "invocations" {
		t.Fatalf("the new hooli's request 4 of 3 this month: got %s, want 429 naming invocations", r)
	}
}
