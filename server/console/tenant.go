package console

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/usage"
	"github.com/silo-run/silo/usage/storage"
)

// chartDays is how many UTC days the tenant page's charts cover.
const chartDays = 30

// tenantLogs is how many of the newest log entries the tenant page shows.
const tenantLogs = 20

// TenantExtras are the parts of the tenant page read beside the account:
// each is nil or empty when it cannot be read, and the page says so.
type TenantExtras struct {
	Limits     *control.AccountLimits
	Stored     []storedRow
	StoredCost float64 // all of Stored per 30 days
	Charts     []Chart
	Days       []usage.Line // the chart's days, newest first, for the table under it
	// Earlier are the deleted accounts that had the ID before this one,
	// with their usage over the chart's days: kept apart from this
	// account's, for billing, and counted in none of its limits.
	Earlier  []usage.Line
	Logs     []logs.Entry // newest last
	LogsErr  string
	Report   *reportCheck
	ParamsTx string // the parameters as key=value lines, for the form
	// ReadOnly is set for an account that is deleted or being deleted:
	// its page shows what was recorded and offers no action that needs a
	// live account (parameters, keys, secrets, suspend, the report). Only
	// a deletion that did not finish can be run again.
	ReadOnly bool
}

// storedRow is one table or bucket with its bytes and the share of its
// limit used.
type storedRow struct {
	storage.Used
	Pct      int     // of the limit, 0 without one
	PerMonth float64 // what it costs per 30 days at the server's prices
}

// reportCheck is the outcome of checking the account's signed report the
// way a reader does: its integrity, then its signer against the keys the
// installation publishes. None is set instead when the API has no report
// of the account to give (a deleted account), in the API's words.
type reportCheck struct {
	OK        bool
	Signer    string
	Generated time.Time
	Err       string
	None      string
}

func (c *Console) tenantExtras(ctx context.Context, a silo.Account) TenantExtras {
	x := TenantExtras{ReadOnly: a.State == silo.StateDeleted || a.State == silo.StateDeleting}
	lines := make([]string, 0, len(a.Params))
	for k, v := range a.Params {
		lines = append(lines, k+"="+v)
	}
	sort.Strings(lines)
	x.ParamsTx = strings.Join(lines, "\n")
	if l, err := c.api.Limits(ctx, a.ID); err == nil {
		x.Limits = &l
	}
	prices := usage.DefaultPrices()
	if a.Kind != silo.KindProduction {
		x.Charts, x.Days, x.Earlier, prices = c.charts(ctx, a)
	}
	if us, err := c.api.Stored(ctx, a.ID); err == nil {
		for _, u := range us {
			r := storedRow{Used: u, PerMonth: prices.StoredPerMonth(u.Bytes, u.Kind == "bucket")}
			if u.Limit > 0 {
				r.Pct = int(min(100, u.Bytes*100/int64(u.Limit)))
			}
			x.Stored = append(x.Stored, r)
			x.StoredCost += r.PerMonth
		}
	}
	es, err := c.api.Logs(ctx, a.ID, logs.Query{Last: tenantLogs})
	if err != nil {
		x.LogsErr = silo.UserMessage(err)
	}
	x.Logs = es
	if a.Kind != silo.KindProduction && a.State != silo.StateDeleting {
		x.Report = c.checkReport(ctx, a.ID)
	}
	return x
}

// checkReport fetches the account's signed report and checks it as
// `silo report verify` does. For a deleted account the API has none, and
// its answer says why (the one answer every request about a deleted
// account gets); the page shows that answer, word for word.
func (c *Console) checkReport(ctx context.Context, id silo.AccountID) *reportCheck {
	b, err := c.api.Report(ctx, id, "json")
	if silo.ErrorCode(err) == silo.CodeNotFound {
		return &reportCheck{None: silo.UserMessage(err)}
	}
	if err != nil {
		return &reportCheck{Err: silo.UserMessage(err)}
	}
	v, err := report.VerifyReport(b)
	if err != nil {
		return &reportCheck{Err: silo.UserMessage(err)}
	}
	pem, err := c.api.ReportKey(ctx)
	if err != nil {
		return &reportCheck{Err: silo.UserMessage(err)}
	}
	pins, err := report.ParsePin(pem)
	if err != nil {
		return &reportCheck{Err: silo.UserMessage(err)}
	}
	signer, err := report.CheckSigner(v, pins)
	if err != nil {
		return &reportCheck{Err: silo.UserMessage(err)}
	}
	return &reportCheck{OK: true, Signer: signer, Generated: v.Generated}
}

// charts reads the usage of the account's ID by day over the last
// chartDays days and draws the account's requests (with errors) and cost
// per day. It returns apart, one line each, what the earlier accounts with
// the ID used in those days.
func (c *Console) charts(ctx context.Context, a silo.Account) ([]Chart, []usage.Line, []usage.Line, usage.Prices) {
	now := c.cfg.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	first := today.AddDate(0, 0, -(chartDays - 1))
	rep, err := c.api.Usage(ctx, usage.Query{Account: a.ID, Since: first, Until: now, By: usage.ByDay})
	if err != nil {
		return nil, nil, nil, usage.DefaultPrices()
	}
	byDay := map[string]usage.Line{}
	var earlier []usage.Line
	for _, l := range rep.Lines {
		if l.Created.Equal(a.Created) {
			byDay[l.Day] = l
			continue
		}
		if n := len(earlier); n == 0 || !earlier[n-1].Created.Equal(l.Created) {
			earlier = append(earlier, usage.Line{Account: l.Account, Created: l.Created, Deleted: l.Deleted})
		}
		e := &earlier[len(earlier)-1]
		e.Counters, e.GBSeconds = e.Counters.Add(l.Counters), e.GBSeconds+l.GBSeconds
		e.Cost, e.Floor = e.Cost+l.Cost, e.Floor+l.Floor
	}
	days := make([]string, chartDays)
	req, errs, cost := make([]float64, chartDays), make([]float64, chartDays), make([]float64, chartDays)
	var table []usage.Line
	for i := range chartDays {
		d := first.AddDate(0, 0, i).Format(time.DateOnly)
		days[i] = d
		l := byDay[d]
		req[i], errs[i], cost[i] = float64(l.Requests), float64(l.Errors), l.Cost+l.Floor
		if l.Requests > 0 || l.Cost > 0 {
			table = append(table, l)
		}
	}
	sort.Slice(table, func(i, j int) bool { return table[i].Day > table[j].Day })
	return []Chart{
		barChart("Requests per day", days, req, errs, func(v float64) string { return fmt.Sprintf("%.0f", v) }),
		barChart("Estimated cost per day (usage and idle floor)", days, cost, nil, func(v float64) string { return fmt.Sprintf("$%.4f", v) }),
	}, table, earlier, rep.Prices
}
