package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/usage"
)

// fleetSorts are the fleet page's orders: id follows the registry's
// order a page at a time; the others sort every matching account.
var fleetSorts = []string{"id", "name", "state", "requests", "errors", "cost"}

// fleetUsageTTL is how long the fleet's usage summary is reused: usage is
// written a minute at a time, so a fresher one would show nothing new.
const fleetUsageTTL = time.Minute

// fleetUsage is the usage of every account over one window, as of at.
type fleetUsage struct {
	at time.Time
	m  map[silo.AccountID]*accountUsage
}

// The windows of the fleet's usage summary: requests and errors of
// yesterday and today, and the cost of this month.
const (
	windowDays  = "days"
	windowMonth = "month"
)

// fleetSorted serves the fleet page sorted by a column over every account
// that matches the filters: it reads them all (the registry a few thousand
// at a time), sorts them, and shows the page asked for by number. A usage
// column sorts by a summary of the fleet's usage over its window, read
// with one fleet-wide usage report and reused for a minute; the page's
// rows show their own usage as the pages in ID order do.
func (c *Console) fleetSorted(w http.ResponseWriter, r *http.Request, s *session, p FleetPage) {
	if !slices.Contains(fleetSorts, p.Sort) {
		c.fail(w, "fleet", s, silo.Errorf(silo.CodeInvalid, "the fleet cannot be sorted by %q; use %s", p.Sort, strings.Join(fleetSorts, ", ")))
		return
	}
	page := 1
	if v := r.URL.Query().Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			c.fail(w, "fleet", s, silo.Errorf(silo.CodeInvalid, "page %q is not a page number; pages count from 1", v))
			return
		}
		page = n
	}
	as, err := c.matching(r.Context(), p)
	if err != nil {
		c.fail(w, "fleet", s, err)
		return
	}
	var u map[silo.AccountID]*accountUsage
	switch p.Sort {
	case "requests", "errors":
		u, err = c.fleetUsage(r.Context(), windowDays)
	case "cost":
		u, err = c.fleetUsage(r.Context(), windowMonth)
	}
	if err != nil {
		c.fail(w, "fleet", s, err)
		return
	}
	sortFleet(as, u, p.Sort)
	size := c.cfg.PageSize
	from := min((page-1)*size, len(as))
	to := min(from+size, len(as))
	link := func(n int) string {
		v := url.Values{"sort": {p.Sort}, "page": {strconv.Itoa(n)}}
		for k, x := range map[string]string{"q": p.Query, "kind": p.Kind, "state": p.State, "param": p.Param} {
			if x != "" {
				v.Set(k, x)
			}
		}
		return "/console/?" + v.Encode()
	}
	if to < len(as) {
		p.Next = link(page + 1)
	}
	p.Pages = max(1, (len(as)+size-1)/size)
	if page > 1 {
		p.Prev = link(min(page-1, p.Pages))
	}
	p.Page, p.Total, p.Accounts = page, len(as), as[from:to]
	p.Usage = c.usageOf(r.Context(), p.Accounts)
	c.render(w, http.StatusOK, "fleet", s, p)
}

// matching reads every account the page's filters select, by ID.
func (c *Console) matching(ctx context.Context, p FleetPage) ([]silo.Account, error) {
	pk, pv, byParam := strings.Cut(p.Param, "=")
	anyValue := p.Param != "" && !byParam
	if anyValue {
		pk, byParam = p.Param, true
	}
	var out []silo.Account
	after := fleetAfter(p.Query)
	const batch = 5000
	for {
		got, err := c.api.Accounts(ctx, store.Filter{Kind: silo.Kind(p.Kind), State: silo.State(p.State), After: silo.AccountID(after), Limit: batch})
		if err != nil {
			return nil, err
		}
		for _, a := range got {
			if !strings.HasPrefix(string(a.ID), p.Query) { // sorted by ID: no later one matches
				return out, nil
			}
			if v, ok := a.Params[pk]; !byParam || ok && (anyValue || v == pv) {
				out = append(out, a)
			}
		}
		if len(got) < batch {
			return out, nil
		}
		after = string(got[len(got)-1].ID)
	}
}

// fleetUsage returns the usage of every account but production over a
// window: windowDays sets Requests and Errors (yesterday and today),
// windowMonth Cost and Floor (this month), as Console.usage counts them.
func (c *Console) fleetUsage(ctx context.Context, window string) (map[silo.AccountID]*accountUsage, error) {
	c.fleetMu.Lock()
	defer c.fleetMu.Unlock()
	now := c.cfg.Now().UTC()
	if got, ok := c.fleetU[window]; ok && now.Sub(got.at) < fleetUsageTTL && !now.Before(got.at) {
		return got.m, nil
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	q := usage.Query{Since: today.AddDate(0, 0, -1), Until: now, Limit: usage.MaxLines}
	if window == windowMonth {
		q.Since = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	m := map[silo.AccountID]*accountUsage{}
	for {
		rep, err := c.api.Usage(ctx, q)
		if err != nil {
			return nil, err
		}
		// The lines of one ID come earliest account first: the last is
		// the account that has the ID now, the one the fleet lists.
		for _, l := range rep.Lines {
			m[l.Account] = &accountUsage{Requests: l.Requests, Errors: l.Errors, Cost: l.Cost, Floor: l.Floor}
		}
		if rep.Next == "" {
			break
		}
		q.After = rep.Next
	}
	if c.fleetU == nil {
		c.fleetU = map[string]fleetUsage{}
	}
	c.fleetU[window] = fleetUsage{at: now, m: m}
	return m, nil
}

// sortFleet orders accounts by a column: usage columns largest first
// (accounts without usage last), name and state in their order; ties by
// ID.
func sortFleet(as []silo.Account, u map[silo.AccountID]*accountUsage, by string) {
	key := func(a silo.Account) float64 {
		x := u[a.ID]
		if x == nil || a.Kind == silo.KindProduction {
			return -1
		}
		switch by {
		case "requests":
			return float64(x.Requests)
		case "errors":
			return float64(x.Errors)
		}
		return x.Cost + x.Floor
	}
	states := map[silo.State]int{silo.StateProvisioning: 0, silo.StateActive: 1, silo.StateSuspended: 2, silo.StateDeleting: 3}
	var names map[silo.AccountID]string
	if by == "name" {
		names = make(map[silo.AccountID]string, len(as))
		for _, a := range as {
			names[a.ID] = strings.ToLower(fleetName(a))
		}
	}
	slices.SortStableFunc(as, func(a, b silo.Account) int {
		switch by {
		case "name":
			if d := strings.Compare(names[a.ID], names[b.ID]); d != 0 {
				return d
			}
		case "state":
			if d := states[a.State] - states[b.State]; d != 0 {
				return d
			}
		default:
			ka, kb := key(a), key(b)
			if ka > kb {
				return -1
			}
			if ka < kb {
				return 1
			}
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
}

// fleetName is what the fleet sorts by name: the display name, or the ID
// of an account without one.
func fleetName(a silo.Account) string {
	if a.Name != "" {
		return a.Name
	}
	return string(a.ID)
}
