// Command list is the findings app's read function: GET /findings lists the
// tenant's findings, filtered by ?severity= and ?app= (and capped by
// ?limit=, default 100, at most 1000); GET /findings/{id} returns one.
package main

import (
	"errors"
	"strconv"

	"github.com/silo-run/silo/examples/findings/internal/finding"
	"github.com/silo-run/silo/sdk/fn"
)

func init() { fn.Handle(handle) }

func handle(r *fn.Request) *fn.Response {
	if id := r.Param("id"); id != "" {
		return get(id)
	}
	return list(r)
}

func get(id string) *fn.Response {
	var f finding.Finding
	b, err := fn.Table(finding.Table).Get(id)
	if err == nil {
		err = finding.Decode(b, &f)
	}
	switch {
	case errors.Is(err, fn.ErrNotFound), errors.Is(err, fn.ErrInvalid):
		return finding.Error(404, "no finding "+strconv.Quote(id))
	case err != nil:
		fn.Log.Error("read finding failed", "id", id, "error", err.Error())
		return finding.Error(503, "findings are unavailable; try again")
	}
	return fn.Bytes(200, "application/json", finding.AppendJSON(make([]byte, 0, 2*len(b)), &f))
}

func list(r *fn.Request) *fn.Response {
	sev, app := r.QueryValue("severity"), r.QueryValue("app")
	if sev != "" && !finding.ValidSeverity(sev) {
		return finding.Error(400, "severity must be one of critical, high, medium, low, info")
	}
	limit := 100
	if s := r.QueryValue("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return finding.Error(400, "limit must be a number from 1 to 1000")
		}
		limit = n
	}
	// Findings are appended to the body as they are scanned: a stored
	// finding already in its canonical encoding is copied as it is.
	body := make([]byte, 0, 1024)
	count := 0
	after := ""
	for count < limit {
		page, err := fn.Table(finding.Table).Scan("", after, 500)
		if err != nil {
			fn.Log.Error("scan findings failed", "error", err.Error())
			return finding.Error(503, "findings are unavailable; try again")
		}
		for _, kv := range page {
			if count == limit {
				break
			}
			mark := len(body)
			if count > 0 {
				body = append(body, ',')
			}
			var kept bool
			if body, kept, err = finding.AppendStored(body, kv.Value, sev, app); !kept || err != nil {
				body = body[:mark]
				continue
			}
			count++
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].Key
	}
	fn.Log.Debug("listed findings", "count", count, "severity", sev, "app", app)
	return fn.Bytes(200, "application/json", finding.AppendList(body, count, fn.Config("plan")))
}

func main() {}
