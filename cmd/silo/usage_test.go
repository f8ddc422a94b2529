package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
	"github.com/silo-run/silo/usage"
)

const productionLimits = "the production account takes no limits, because the gateway never serves it; set limits on a tenant, developer or environment account"

// TestLimitsCommands: limits set overrides only the limits given (the
// rest keep the earlier override), show reads them back, clear removes the
// override; bad input is one clear error and changes nothing.
func TestLimitsCommands(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	var l control.AccountLimits
	read := func(args ...string) control.AccountLimits {
		t.Helper()
		var l control.AccountLimits
		if err := json.Unmarshal([]byte(c.ok(append([]string{"-o", "json", "limits"}, args...)...)), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	l = read("set", "acme", "--rate", "50", "--storage", "1GiB")
	if l.Override.Rate != 50 || l.Override.Storage != 1<<30 || l.Effective.Rate != 50 {
		t.Fatalf("after set --rate 50 --storage 1GiB: got %+v", l)
	}
	l = read("set", "acme", "--concurrency", "3")
	if l.Override.Rate != 50 || l.Override.Concurrency != 3 {
		t.Fatalf("after set --concurrency 3: got %+v, want rate 50 kept", l)
	}
	if out := c.ok("limits", "show", "acme"); !strings.Contains(out, "concurrency") || !strings.Contains(out, "50") {
		t.Errorf("limits show:\n%s", out)
	}
	c.fails("limit rate -1 is out of range", "limits", "set", "acme", "--rate", "-1")
	c.fails("needs at least one of --rate", "limits", "set", "acme")
	c.fails(`--storage "1GB" is not a size`, "limits", "set", "acme", "--storage", "1GB")
	c.fails(`no account "nobody"`, "limits", "set", "nobody", "--rate", "5")
	// The production account takes no limits (the gateway never serves
	// it): refused with one sentence, nothing written, not even an audit
	// entry.
	before := stateOf(t, c)
	if code, out, errOut := c.run("limits", "set", "production", "--rate", "5"); code != 1 || out != "" || errOut != "silo: "+productionLimits+"\n" {
		t.Errorf("limits set production: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, productionLimits)
	}
	if after := stateOf(t, c); after != before {
		t.Errorf("a refused limits set production changed the control plane:\nbefore: %s\nafter:  %s", before, after)
	}
	if l = read("show", "production"); !l.Override.IsZero() {
		t.Errorf("production after the refusal: got %+v, want no override", l)
	}
	if l = read("show", "acme"); l.Override.Rate != 50 || l.Override.Concurrency != 3 {
		t.Fatalf("after refused changes: got %+v, want the override unchanged", l)
	}
	if l = read("clear", "acme"); !l.Override.IsZero() {
		t.Fatalf("after clear: got %+v, want no override", l)
	}
}

// TestUsageCommand: silo usage exports every tenant, idle ones with their
// floor, as CSV and JSON; bad windows and groupings are one clear error.
func TestUsageCommand(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	rows, err := csv.NewReader(strings.NewReader(c.ok("usage", "--since", "7d", "-o", "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(usageHeader, ",") || rows[1][0] != "acme" || rows[2][0] != "globex" {
		t.Fatalf("usage csv: got %v, want the header, acme and globex", rows)
	}
	col := func(name string) int {
		t.Helper()
		i := slices.Index(usageHeader, name)
		if i < 0 {
			t.Fatalf("no column %s in %v", name, usageHeader)
		}
		return i
	}
	if rows[1][col("requests")] != "0" || rows[1][col("table_byte_hours")] != "0" {
		t.Errorf("idle acme: got %v, want 0 requests and no stored bytes", rows[1])
	}
	var rep usage.Report
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "usage", "acme", "--since", "2d", "--by", "day")), &rep); err != nil {
		t.Fatal(err)
	}
	// acme was created just now: one day line, today's, with the floor of
	// the moments it has existed (far less than a day's).
	if len(rep.Lines) != 1 || rep.Lines[0].Account != "acme" || rep.Lines[0].Day != time.Now().UTC().Format(time.DateOnly) ||
		rep.Lines[0].Floor <= 0 || rep.Lines[0].Floor >= rep.Prices.Floor(24*time.Hour) {
		t.Errorf("usage acme --by day over 2 days: got %+v, want today's line alone, with a floor of less than a day", rep.Lines)
	}
	if out := c.ok("usage"); !strings.Contains(out, "acme") { // --since defaults to 30d
		t.Errorf("usage with the default window:\n%s\nwant acme listed", out)
	}
	// Requests the gateway admitted but answered without running a
	// function (no route matched) are on a row of their own by function, named
	// so in csv and text; by account they count on the account's row.
	st, err := sqlite.Open(context.Background(), filepath.Join(c.dataDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx store.Tx) error {
		return tx.AddUsage(time.Now(), []store.UsageDelta{
			{Account: "acme", Function: "", Counters: store.Counters{Requests: 2}},
			{Account: "acme", Function: "ingest", Counters: store.Counters{Requests: 3}},
		})
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	rows, err = csv.NewReader(strings.NewReader(c.ok("usage", "acme", "--since", "1d", "--by", "function", "-o", "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var fns []string
	for _, r := range rows[1:] {
		fns = append(fns, r[col("function")]+"="+r[col("requests")])
	}
	if want := []string{"(no function)=2", "ingest=3"}; !slices.Equal(fns, want) {
		t.Errorf("usage acme --by function csv: functions %v, want %v", fns, want)
	}
	if out := c.ok("usage", "acme", "--since", "1d", "--by", "function"); !strings.Contains(out, "(no function)") {
		t.Errorf("usage acme --by function:\n%s\nwant the (no function) row", out)
	}
	rows, err = csv.NewReader(strings.NewReader(c.ok("usage", "acme", "--since", "1d", "-o", "csv"))).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][col("function")] != "" || rows[1][col("requests")] != "5" {
		t.Errorf("usage acme csv by account: %v %v; want one row, no function, 5 requests", rows, err)
	}
	if out := c.ok("usage", "--help"); !strings.Contains(out, "named (no function) in text and csv") {
		t.Errorf("usage --help does not explain the (no function) row:\n%s", out)
	}

	c.fails(`--since "yesterday" is not a window`, "usage", "--since", "yesterday")
	c.fails(`--by must be account, function or day, not "week"`, "usage", "--since", "7d", "--by", "week")
	c.fails("--output must be text or json", "tenant", "list", "-o", "csv")
}

// TestUsageStoredBytes: 2 GiB held in a table for 12 hours of yesterday
// and 1 KiB in a bucket for 3 are 24 GiB-hours and 3 KiB-hours in every
// form of silo usage, priced per GB-month; a function grouping has no
// stored bytes.
func TestUsageStoredBytes(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	st, err := sqlite.Open(context.Background(), filepath.Join(c.dataDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	for h := range 12 {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			ss := []store.StoredSample{
				{Account: "acme", Kind: store.StoredTable, Name: "findings", Bytes: 2 << 30},
				{Account: "production", Kind: store.StoredTable, Name: "intel", Bytes: 1 << 30},
			}
			if h < 3 {
				ss = append(ss, store.StoredSample{Account: "acme", Kind: store.StoredBucket, Name: "uploads", Bytes: 1024})
			}
			return tx.SetStored(day.Add(time.Duration(h)*time.Hour), ss)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	wantCost := 24.0/720*0.25 + 3*1024.0/(1<<30)/720*0.023
	var rep usage.Report
	// The billing export of every account leaves the production account
	// out; named, its own stored bytes are reported.
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "usage", "--since", "3d")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Lines) != 1 || rep.Lines[0].Account != "acme" {
		t.Errorf("usage of every account: got %+v, want acme's line only, no production", rep.Lines)
	}
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "usage", "production", "--since", "3d")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Lines) != 1 || rep.Lines[0].Account != "production" || rep.Lines[0].TableByteHours != 12<<30 {
		t.Errorf("usage production: got %+v, want its 12 GiB-hours of table", rep.Lines)
	}
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "usage", "acme", "--since", "3d")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Lines) != 1 || rep.Lines[0].TableByteHours != 24<<30 || rep.Lines[0].BucketByteHours != 3*1024 {
		t.Fatalf("usage acme json: got %+v, want 24 GiB-hours of table and 3 KiB-hours of bucket", rep.Lines)
	}
	if l := rep.Lines[0]; math.Abs(l.StorageCost-wantCost) > 1e-12 || math.Abs(l.Cost-wantCost) > 1e-12 {
		t.Errorf("usage acme json: storage $%v, cost $%v; want both $%v", l.StorageCost, l.Cost, wantCost)
	}
	rows, err := csv.NewReader(strings.NewReader(c.ok("usage", "acme", "--since", "3d", "--by", "day", "-o", "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var tbh []string
	for _, r := range rows[1:] {
		tbh = append(tbh, r[slices.Index(usageHeader, "table_byte_hours")])
	}
	// acme exists since today: yesterday's line is there for its stored
	// bytes (samples this test wrote), today's for its floor.
	if want := []string{strconv.Itoa(24 << 30), "0"}; !slices.Equal(tbh, want) {
		t.Errorf("usage acme --by day csv: table byte-hours %v, want %v (yesterday, today)", tbh, want)
	}
	if out := c.ok("usage", "acme", "--since", "3d"); !strings.Contains(out, "24.0000") || !strings.Contains(out, fmt.Sprintf("of which $%.4f stored bytes", wantCost)) {
		t.Errorf("usage acme text:\n%s\nwant 24 table GiB-hours and $%.4f of stored bytes", out, wantCost)
	}
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "usage", "acme", "--since", "3d", "--by", "function")), &rep); err != nil {
		t.Fatal(err)
	}
	for _, l := range rep.Lines {
		if l.TableByteHours != 0 || l.StorageCost != 0 {
			t.Errorf("usage by function: got stored bytes on %+v, want none", l)
		}
	}
	// The text total by function does not claim $0 of stored bytes and
	// floors; by account it totals both.
	if out := c.ok("usage", "acme", "--since", "3d", "--by", "function"); !strings.Contains(out, "usage of the functions (stored bytes and floors are an account's") || strings.Contains(out, "floors,") {
		t.Errorf("usage acme --by function text:\n%s\nwant a total of the functions' usage only", out)
	}
}

func TestUsageThroughAServer(t *testing.T) {
	t.Parallel()
	f := startRemote(t)
	if out := f.same("usage", "--since", "3d"); !strings.Contains(out, "demo-acme") {
		t.Fatalf("usage through a server:\n%s", out)
	}
	f.same("limits", "show", "demo-acme")
	if code, _, errOut := f.remoteRun("limits", "set", "production", "--rate", "5"); code != 1 || errOut != "silo: "+productionLimits+"\n" {
		t.Errorf("remote limits set production: exit %d, stderr %q; want exit 1 and %q", code, errOut, productionLimits)
	}
	f.remote("limits", "set", "demo-acme", "--rate", "5") // the twin
}

// TestUsageKeepsADeletedTenantsUsage: a tenant deleted and created again
// under its ID is two accounts in silo usage: the deleted one keeps its
// requests, marked with its creation and deletion, in text, csv and json,
// for every account and for the ID; the new one starts from nothing.
func TestUsageKeepsADeletedTenantsUsage(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "hooli")
	st, err := sqlite.Open(context.Background(), filepath.Join(c.dataDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx store.Tx) error {
		return tx.AddUsage(time.Now(), []store.UsageDelta{{Account: "hooli", Function: "hello", Counters: store.Counters{Requests: 10}}})
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	report := func(args ...string) []usage.Line {
		t.Helper()
		var rep usage.Report
		if err := json.Unmarshal([]byte(c.ok(append([]string{"-o", "json", "usage", "--since", "1d"}, args...)...)), &rep); err != nil {
			t.Fatal(err)
		}
		return rep.Lines
	}
	c.ok("tenant", "delete", "hooli", "--yes")
	if ls := report("hooli"); len(ls) != 1 || ls[0].Requests != 10 || ls[0].Deleted == nil {
		t.Fatalf("usage of the deleted hooli: got %+v, want its 10 requests, marked deleted", ls)
	}
	c.ok("tenant", "create", "hooli")
	for _, args := range [][]string{{"hooli"}, {}} {
		ls := report(args...)
		if len(ls) != 2 || ls[0].Requests != 10 || ls[0].Deleted == nil || ls[1].Requests != 0 || ls[1].Deleted != nil || !ls[0].Created.Before(ls[1].Created) {
			t.Errorf("usage %v after hooli was created again: got %+v, want the deleted hooli's 10 requests, then the new one's none", args, ls)
		}
	}
	text := c.ok("usage", "hooli", "--since", "1d")
	dated := regexp.MustCompile(`(?m)^\s*hooli\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+-\s+-\s+10\s`)
	fresh := regexp.MustCompile(`(?m)^\s*hooli\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+-\s+-\s+-\s+0\s`)
	if !dated.MatchString(text) || !fresh.MatchString(text) {
		t.Errorf("usage hooli in text: want the deleted hooli with both dates and 10 requests, and the new one with none:\n%s", text)
	}
	rows, err := csv.NewReader(strings.NewReader(c.ok("usage", "hooli", "--since", "1d", "-o", "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	created, deleted := slices.Index(usageHeader, "account_created"), slices.Index(usageHeader, "account_deleted")
	if len(rows) != 3 || rows[1][created] == "" || rows[1][deleted] == "" || rows[2][created] == "" || rows[2][deleted] != "" || rows[1][created] == rows[2][created] {
		t.Errorf("usage hooli in csv: got %v, want the deleted hooli with its dates, then the new one, created later, not deleted", rows)
	}
}

// TestUsageLeavesProbesOut: the throwaway accounts of silo verify --probe
// are not in silo usage of every account; --probes lists them, and so does
// naming one.
func TestUsageLeavesProbesOut(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("env", "create", "probe-53b1435c-a", "--ttl", "1h")
	st, err := sqlite.Open(context.Background(), filepath.Join(c.dataDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx store.Tx) error {
		return tx.AddUsage(time.Now(), []store.UsageDelta{
			{Account: "acme", Function: "hello", Counters: store.Counters{Requests: 2}},
			{Account: "probe-53b1435c-a", Function: "probe", Counters: store.Counters{Requests: 5}},
		})
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	accounts := func(args ...string) string {
		t.Helper()
		rows, err := csv.NewReader(strings.NewReader(c.ok(append([]string{"usage", "--since", "1d", "-o", "csv"}, args...)...))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows[1:] {
			out = append(out, r[0]+":"+r[slices.Index(usageHeader, "requests")])
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "acme:2"},
		{[]string{"--probes"}, "acme:2 probe-53b1435c-a:5"},
		{[]string{"probe-53b1435c-a"}, "probe-53b1435c-a:5"},
	} {
		if got := accounts(tc.args...); got != tc.want {
			t.Errorf("usage %v: got %s, want %s", tc.args, got, tc.want)
		}
	}
}
