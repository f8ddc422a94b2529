package console

import (
	"net/http"
	"net/url"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// FleetPage is the data of the fleet page.
type FleetPage struct {
	Query, Kind, State string
	Param              string // key=value, or key for any value
	Sort               string // the fleet by: id (default), name, state, requests, errors, cost
	Sorts              []string
	Page               int    // 1-based, when sorted by other than id
	Prev               string // URL of the previous page, "" on the first (sorted by other than id)
	Total, Pages       int    // accounts matching and pages, when sorted by other than id
	Scanned            int    // when the page ended early: accounts read looking for Param
	Accounts           []silo.Account
	Usage              map[silo.AccountID]*accountUsage
	Next               string // URL of the next page, "" on the last
	Kinds              []silo.Kind
	States             []silo.State
}

// fleetAfter returns the paging cursor that starts a listing at the first
// ID with the prefix q: IDs are DNS labels ([a-z0-9-]), so the last byte
// lowered by one and followed by '~' (above every label byte) sorts just
// before every ID that starts with q.
func fleetAfter(q string) string {
	if q == "" {
		return ""
	}
	return q[:len(q)-1] + string(q[len(q)-1]-1) + "~"
}

// idPrefix reports whether q can begin an account ID: IDs are DNS labels
// ([a-z0-9-]), so a query with any other character (a space, an accent,
// bytes that are not UTF-8) matches no account, and the fleet page lists
// none without asking the API.
func idPrefix(q string) bool {
	for i := 0; i < len(q); i++ {
		if c := q[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// fleetScan bounds how many accounts one fleet page reads while it looks
// for accounts with a parameter; past it the page ends early and its next
// link goes on from where the scan stopped.
const fleetScan = 5000

func (c *Console) fleet(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	p := FleetPage{
		Query: strings.ToLower(strings.TrimSpace(q.Get("q"))), Kind: q.Get("kind"), State: q.Get("state"),
		Param: strings.TrimSpace(q.Get("param")), Sort: q.Get("sort"),
		Kinds:  []silo.Kind{silo.KindTenant, silo.KindDeveloper, silo.KindEnvironment, silo.KindProduction},
		States: []silo.State{silo.StateProvisioning, silo.StateActive, silo.StateSuspended, silo.StateDeleting},
		Sorts:  fleetSorts,
	}
	pk, pv, byParam := strings.Cut(p.Param, "=")
	if p.Param != "" && !byParam {
		pk, byParam = p.Param, true // any value
		pv = "\x00any"
	}
	if !idPrefix(p.Query) {
		c.render(w, http.StatusOK, "fleet", s, p)
		return
	}
	if p.Sort != "" && p.Sort != "id" {
		c.fleetSorted(w, r, s, p)
		return
	}
	after := q.Get("after")
	if after == "" {
		after = fleetAfter(p.Query)
	}
	size := c.cfg.PageSize
	var as []silo.Account
	scanned, more := 0, false
	for {
		batch := size + 1
		if byParam {
			batch = 500
		}
		got, err := c.api.Accounts(r.Context(), store.Filter{Kind: silo.Kind(p.Kind), State: silo.State(p.State), After: silo.AccountID(after), Limit: batch})
		if err != nil {
			c.fail(w, "fleet", s, err)
			return
		}
		done := len(got) < batch
		for i, a := range got {
			if !strings.HasPrefix(string(a.ID), p.Query) { // sorted by ID: no later one matches
				got, done = got[:i], true
				break
			}
		}
		scanned += len(got)
		for _, a := range got {
			if v, ok := a.Params[pk]; !byParam || ok && (pv == "\x00any" || v == pv) {
				as = append(as, a)
			}
			after = string(a.ID)
			if len(as) > size {
				break
			}
		}
		if len(as) > size || done {
			break
		}
		if scanned >= fleetScan {
			more = true
			break
		}
	}
	next := ""
	switch {
	case len(as) > size:
		as = as[:size]
		next = string(as[size-1].ID)
	case more:
		next = after
		p.Scanned = scanned
	}
	if next != "" {
		v := url.Values{"after": {next}}
		for k, x := range map[string]string{"q": p.Query, "kind": p.Kind, "state": p.State, "param": p.Param, "sort": p.Sort} {
			if x != "" {
				v.Set(k, x)
			}
		}
		p.Next = "/console/?" + v.Encode()
	}
	p.Accounts = as
	p.Usage = c.usageOf(r.Context(), as)
	c.render(w, http.StatusOK, "fleet", s, p)
}
