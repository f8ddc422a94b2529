package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
	"github.com/silo-run/silo/usage"
)

const plansSpec = spec + `limits:
  free: {rate: 5, concurrency: 2, invocations: 1000}
  pro: {rate: 500}
`

// TestLimitsAndUsageAPI: an account's limits come from its plan, an
// operator's override changes them (a bad one is refused and changes
// nothing), and GET /v1/usage pages through a report that lists idle
// accounts with their floor.
func TestLimitsAndUsageAPI(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	c := f.client
	rel := upload(t, c, plansSpec, "wasm plans")
	r, err := c.StartRollout(ctx, rel.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r = follow(t, c, r.ID); r.State != rollout.StateSucceeded {
		t.Fatalf("deploy: %s (%s)", r.State, r.Reason)
	}
	for _, req := range []control.CreateRequest{{ID: "acme", Params: map[string]string{"plan": "pro"}}, {ID: "globex"}} {
		if _, err := c.CreateAccount(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	l, err := c.Limits(ctx, "globex")
	if err != nil || l.Plan != "free" || l.Effective != (silo.Limits{Rate: 5, Concurrency: 2, Invocations: 1000}) {
		t.Fatalf("globex limits: got %+v, %v; want plan free", l, err)
	}
	l, err = c.SetLimitOverride(ctx, "globex", silo.Limits{Rate: 50})
	if err != nil || l.Effective.Rate != 50 || l.Effective.Concurrency != 2 || l.Override.Rate != 50 {
		t.Fatalf("after an override of the rate: got %+v, %v; want rate 50 over plan free", l, err)
	}
	if _, err := c.SetLimitOverride(ctx, "globex", silo.Limits{Concurrency: -3}); code(err) != silo.CodeInvalid {
		t.Fatalf("negative concurrency: got %v, want invalid", err)
	}
	if l, _ := c.Limits(ctx, "globex"); l.Effective.Rate != 50 || l.Override.Concurrency != 0 {
		t.Fatalf("after a refused override: got %+v, want the previous one", l)
	}
	if _, err := c.SetLimitOverride(ctx, "nobody", silo.Limits{Rate: 1}); code(err) != silo.CodeNotFound {
		t.Fatalf("override of a missing account: got %v, want not found", err)
	}
	if l, err := c.SetLimitOverride(ctx, "globex", silo.Limits{}); err != nil || l.Override != (silo.Limits{}) || l.Effective.Rate != 5 {
		t.Fatalf("override removed: got %+v, %v; want plan free again", l, err)
	}

	st, err := sqlite.Open(ctx, filepath.Join(f.dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	if err := st.Update(ctx, func(tx store.Tx) error {
		return tx.AddUsage(now, []store.UsageDelta{
			{Account: "acme", Function: "ingest", Counters: store.Counters{Requests: 40, Errors: 2}},
			{Account: "acme", Function: "list", Counters: store.Counters{Requests: 2}},
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { // 1 GiB of table for the hour
		return tx.SetStored(now, []store.StoredSample{
			{Account: "acme", Kind: store.StoredTable, Name: "findings", Bytes: 1 << 30},
			{Account: silo.ProductionID, Kind: store.StoredTable, Name: "findings", Bytes: 1 << 20},
		})
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Usage(ctx, usage.Query{Since: now.AddDate(0, 0, -1)})
	if err != nil {
		t.Fatal(err)
	}
	// The production account's stored bytes are not part of the fleet's
	// (per-tenant) report.
	if len(rep.Lines) != 2 || rep.Lines[0].Account != "acme" || rep.Lines[0].Requests != 42 || rep.Lines[1].Account != "globex" || rep.Lines[1].Requests != 0 || rep.Lines[1].Floor <= 0 {
		t.Fatalf("fleet report: got %+v, want acme with 42 requests and idle globex with its floor, no production", rep.Lines)
	}
	// The twin: asked for by name, the production account's own usage.
	prod, err := c.Usage(ctx, usage.Query{Account: silo.ProductionID, Since: now.AddDate(0, 0, -1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(prod.Lines) != 1 || prod.Lines[0].Account != silo.ProductionID || prod.Lines[0].TableByteHours != 1<<20 || prod.Lines[0].Cost <= 0 {
		t.Fatalf("production report: got %+v, want its 1 MiB-hour of table, priced", prod.Lines)
	}
	if l := rep.Lines[0]; l.TableByteHours != 1<<30 || l.StorageCost != rep.Prices.StoredCost(1<<30, 0) || l.StorageCost <= 0 || rep.Lines[1].TableByteHours != 0 {
		t.Fatalf("fleet report: got acme %d table byte-hours costing %v, globex %d; want 1 GiB-hour priced, none for globex", l.TableByteHours, l.StorageCost, rep.Lines[1].TableByteHours)
	}
	var fns []string
	q := usage.Query{Account: "acme", Since: now.AddDate(0, 0, -1), By: usage.ByFunction, Limit: 1}
	for range 5 {
		rep, err := c.Usage(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range rep.Lines {
			fns = append(fns, l.Function)
		}
		if rep.Next == "" {
			break
		}
		q.After = rep.Next
	}
	if strings.Join(fns, ",") != "ingest,list" {
		t.Fatalf("paged by function: got %v, want ingest, list", fns)
	}
	for _, bad := range []string{"", "since=yesterday", "since=30d&by=week", "since=30d&limit=0", "since=30d&account=Bad_ID"} {
		v, _ := url.ParseQuery(bad)
		if _, err := server.UsageQuery(v, now); code(err) != silo.CodeInvalid {
			t.Errorf("query %q: got %v, want invalid", bad, err)
		}
	}
	if _, err := c.Usage(ctx, usage.Query{Account: "nobody", Since: now}); code(err) != silo.CodeNotFound {
		t.Errorf("usage of a missing account: got %v, want not found", err)
	}
}

// TestLimitOfZeroIsRefused: a limits object that gives a field as 0 is
// refused as out of range, as a negative value is, and changes nothing: 0
// is what an absent field means, so taking it would drop the caller's
// limit. The twins: the same fields above 0, and null (absent), are taken.
func TestLimitOfZeroIsRefused(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	r, err := f.client.StartRollout(ctx, upload(t, f.client, spec, "wasm").ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r = follow(t, f.client, r.ID); r.State != rollout.StateSucceeded {
		t.Fatalf("deploy: %s (%s)", r.State, r.Reason)
	}
	if _, err := f.client.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	put := func(body string) (int, string) {
		t.Helper()
		resp, b := send(t, f, http.MethodPut, "/v1/accounts/acme/limits", body, true)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		body string
		want string
	}{
		{`{"rate": 0}`, "limit rate 0 is out of range; use requests per second above 0"},
		{`{"rate": 0, "burst": 3}`, "limit rate 0 is out of range"},
		{`{"burst": 0}`, "limit burst 0 is out of range"},
		{`{"concurrency": 0}`, "limit concurrency 0 is out of range"},
		{`{"storage": 0}`, "limit storage 0 is out of range"},
		{`{"invocations": 0}`, "limit invocations 0 is out of range"},
		{`{"invocations": -1}`, "limit invocations -1 is out of range"},
	} {
		if status, body := put(tc.body); status != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("PUT %s: %d %s; want 400 with %q", tc.body, status, body, tc.want)
		}
	}
	if l, err := f.client.Limits(ctx, "acme"); err != nil || l.Override != (silo.Limits{}) {
		t.Fatalf("after the refused PUTs: override %+v, %v; want none", l.Override, err)
	}
	for _, tc := range []struct {
		body string
		want silo.Limits
	}{
		{`{"rate": 0.5, "burst": 3, "concurrency": 1, "storage": 1024, "invocations": 1}`, silo.Limits{Rate: 0.5, Burst: 3, Concurrency: 1, Storage: 1024, Invocations: 1}},
		{`{"rate": null, "burst": 3}`, silo.Limits{Burst: 3}},
		{`{}`, silo.Limits{}},
	} {
		if status, body := put(tc.body); status != http.StatusOK {
			t.Fatalf("PUT %s: %d %s; want 200", tc.body, status, body)
		}
		if l, err := f.client.Limits(ctx, "acme"); err != nil || l.Override != tc.want {
			t.Fatalf("after PUT %s: override %+v, %v; want %+v", tc.body, l.Override, err, tc.want)
		}
	}
}

// TestUsageLeavesProbesOut: the throwaway accounts of silo verify --probe
// are not customers: GET /v1/usage of every account leaves them out, with
// probes=true lists them, and a report of one, asked for by name, lists
// it. An account whose ID only looks like a probe's (a tenant) is a
// customer and is listed.
func TestUsageLeavesProbesOut(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	c := f.client
	rel := upload(t, c, plansSpec, "wasm plans")
	r, err := c.StartRollout(ctx, rel.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r = follow(t, c, r.ID); r.State != rollout.StateSucceeded {
		t.Fatalf("deploy: %s (%s)", r.State, r.Reason)
	}
	for _, req := range []control.CreateRequest{
		{ID: "acme"},
		{ID: "probe-0123abcd-a", Kind: silo.KindEnvironment, TTL: time.Hour},
		{ID: "probe-4567cdef-b"}, // a tenant: not one of the probe's
	} {
		if _, err := c.CreateAccount(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	st, err := sqlite.Open(ctx, filepath.Join(f.dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	if err := st.Update(ctx, func(tx store.Tx) error {
		return tx.AddUsage(now, []store.UsageDelta{
			{Account: "acme", Function: "ingest", Counters: store.Counters{Requests: 4}},
			{Account: "probe-0123abcd-a", Function: "probe", Counters: store.Counters{Requests: 9}},
			{Account: "probe-4567cdef-b", Function: "ingest", Counters: store.Counters{Requests: 1}},
		})
	}); err != nil {
		t.Fatal(err)
	}
	accounts := func(q usage.Query) string {
		t.Helper()
		rep, err := c.Usage(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range rep.Lines {
			out = append(out, fmt.Sprintf("%s:%d", l.Account, l.Requests))
		}
		return strings.Join(out, " ")
	}
	since := now.AddDate(0, 0, -1)
	if got, want := accounts(usage.Query{Since: since}), "acme:4 probe-4567cdef-b:1"; got != want {
		t.Errorf("every account: got %s, want %s (no probe account)", got, want)
	}
	if got, want := accounts(usage.Query{Since: since, Probes: true}), "acme:4 probe-0123abcd-a:9 probe-4567cdef-b:1"; got != want {
		t.Errorf("every account with probes=true: got %s, want %s", got, want)
	}
	if got, want := accounts(usage.Query{Account: "probe-0123abcd-a", Since: since}), "probe-0123abcd-a:9"; got != want {
		t.Errorf("the probe account by name: got %s, want %s", got, want)
	}
	v, _ := url.ParseQuery("since=30d&probes=yes")
	if _, err := server.UsageQuery(v, now); code(err) != silo.CodeInvalid {
		t.Errorf("probes=yes: got %v, want invalid", err)
	}
}

// TestAccountTTLRule: POST /v1/accounts applies the rule of silo env
// create (control.CheckTTL): an environment without a ttl, or with one
// out of range, and a tenant with one, are refused with one clear error
// and create nothing; the twins, an environment with a ttl in range and a
// tenant without one, are created, the environment with its expiry.
func TestAccountTTLRule(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	c := f.client
	rel := upload(t, c, spec, "wasm v1")
	if r, err := c.StartRollout(ctx, rel.ID, rollout.Options{}); err != nil || follow(t, c, r.ID).State != rollout.StateSucceeded {
		t.Fatalf("deploy: %v", err)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"id":"hooli5","kind":"environment"}`, "ttl is required: how long the environment lives before it is torn down, e.g. 2h (at most 720h)"},
		{`{"id":"hooli5","kind":"environment","ttl":"1000h"}`, "ttl must be at most 720h, not 1000h0m0s"},
		{`{"id":"hooli5","kind":"environment","ttl":"-2h"}`, `ttl "-2h" is not a positive duration such as 72h`},
		{`{"id":"hooli5","ttl":"2h"}`, "ttl is for environments only: a tenant account does not expire; leave ttl out, or create an environment"},
	} {
		status, eb := post(t, f, "/v1/accounts", tc.body)
		if status != http.StatusBadRequest || eb.Error.Code != "invalid" || eb.Error.Message != tc.want {
			t.Errorf("POST /v1/accounts %s: got %d %+v, want 400 invalid %q", tc.body, status, eb.Error, tc.want)
		}
		if _, err := c.Show(ctx, "hooli5"); code(err) != silo.CodeNotFound {
			t.Fatalf("after the refused %s: hooli5 %v, want no account", tc.body, err)
		}
	}
	if status, eb := post(t, f, "/v1/accounts", `{"id":"hooli5","kind":"environment","ttl":"2h"}`); status != http.StatusCreated {
		t.Fatalf("an environment with ttl 2h: got %d %+v, want 201", status, eb)
	}
	if d, err := c.Show(ctx, "hooli5"); err != nil || d.Account.Expires == nil || d.Account.Kind != silo.KindEnvironment {
		t.Errorf("the environment created with ttl 2h: got %+v, %v; want it to expire", d.Account, err)
	}
	if status, eb := post(t, f, "/v1/accounts", `{"id":"hooli6"}`); status != http.StatusCreated {
		t.Fatalf("a tenant without ttl: got %d %+v, want 201", status, eb)
	}
}
