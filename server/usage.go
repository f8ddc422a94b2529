package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/usage"
	"github.com/silo-run/silo/usage/storage"
)

// routeUsage serves the limits and usage endpoints:
//
//	GET /v1/accounts/{id}/limits   the account's plan, override and effective limits
//	PUT /v1/accounts/{id}/limits   set the override (silo.Limits; {} removes it)
//	GET /v1/usage                  a page of a usage report (see UsageQuery)
//	GET /v1/accounts/{id}/storage  bytes stored per table and bucket ([]storage.Used)
func (s *Server) routeUsage() {
	s.handle("GET /v1/accounts/{id}/storage", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		o := s.ops()
		if o.Stored == nil {
			return 0, nil, missing("the storage tracker")
		}
		us, err := o.Stored(r.Context(), id)
		if us == nil {
			us = []storage.Used{}
		}
		return http.StatusOK, us, err
	})
	s.handle("GET /v1/accounts/{id}/limits", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		l, err := s.cfg.Plane.Limits(r.Context(), id)
		return http.StatusOK, l, err
	})
	s.handle("PUT /v1/accounts/{id}/limits", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		l, err := decodeLimits(r)
		if err != nil {
			return 0, nil, err
		}
		out, err := s.cfg.Plane.SetLimitOverride(r.Context(), id, l)
		return http.StatusOK, out, err
	})
	s.handle("GET /v1/usage", func(r *http.Request) (int, any, error) {
		q, err := UsageQuery(r.URL.Query(), s.cfg.Now())
		if err != nil {
			return 0, nil, err
		}
		prices := s.cfg.Prices
		if prices == (usage.Prices{}) {
			prices = usage.DefaultPrices()
		}
		rep, err := s.cfg.Plane.Usage(r.Context(), q, prices)
		return http.StatusOK, rep, err
	})
}

// UsageQuery reads the query of GET /v1/usage: account (optional), since
// (required: 30d, 12h, a date 2026-03-01 or an RFC 3339 time), until
// (optional, same forms, default now), by (account, function or day),
// after (the previous page's next), limit (at most usage.MaxLines) and
// probes (true: list the throwaway accounts of silo verify --probe too).
//
// # Errors
//
// CodeInvalid saying which parameter is wrong.
func UsageQuery(v url.Values, now time.Time) (usage.Query, error) {
	var q usage.Query
	if a := v.Get("account"); a != "" {
		id, err := silo.ParseID(a)
		if err != nil {
			return q, err
		}
		q.Account = id
	}
	when := func(name, s string) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
		t, err := control.Since(s, now)
		switch {
		case errors.Is(err, usage.ErrTooEarly):
			return time.Time{}, &silo.Error{Code: silo.CodeInvalid, Err: err,
				Message: fmt.Sprintf("%s=%q reaches back before the year 1; write fewer days (100000d is about 270 years, longer than any account has existed) or a date such as 2026-03-01", name, s)}
		case err != nil:
			return time.Time{}, silo.Errorf(silo.CodeInvalid, "%s=%q is not a time; write 30d, 12h, 2026-03-01 or an RFC 3339 time", name, s)
		}
		return t, nil
	}
	var err error
	if s := v.Get("since"); s == "" {
		return q, silo.Errorf(silo.CodeInvalid, "a usage report needs since=...; e.g. since=30d")
	} else if q.Since, err = when("since", s); err != nil {
		return q, err
	}
	q.Until = now
	if s := v.Get("until"); s != "" {
		if q.Until, err = when("until", s); err != nil {
			return q, err
		}
	}
	q.By, q.After = v.Get("by"), v.Get("after")
	switch p := v.Get("probes"); p {
	case "", "false":
	case "true":
		q.Probes = true
	default:
		return q, silo.Errorf(silo.CodeInvalid, "probes=%q is not true or false", p)
	}
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 {
			return q, silo.Errorf(silo.CodeInvalid, "limit=%q is not a positive whole number", s)
		}
	}
	return q, q.Check()
}

// Limits returns an account's limits.
func (c *Client) Limits(ctx context.Context, id silo.AccountID) (control.AccountLimits, error) {
	var out control.AccountLimits
	err := c.call(ctx, http.MethodGet, "/v1/accounts/"+esc(string(id))+"/limits", nil, &out)
	return out, err
}

// SetLimitOverride sets an account's limit override (a zero l removes it).
func (c *Client) SetLimitOverride(ctx context.Context, id silo.AccountID, l silo.Limits) (control.AccountLimits, error) {
	var out control.AccountLimits
	err := c.call(ctx, http.MethodPut, "/v1/accounts/"+esc(string(id))+"/limits", l, &out)
	return out, err
}

// Usage returns one page of a usage report.
func (c *Client) Usage(ctx context.Context, q usage.Query) (usage.Report, error) {
	v := url.Values{}
	if q.Account != "" {
		v.Set("account", string(q.Account))
	}
	v.Set("since", q.Since.UTC().Format(time.RFC3339))
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339))
	}
	for k, s := range map[string]string{"by": q.By, "after": q.After} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Probes {
		v.Set("probes", "true")
	}
	var out usage.Report
	err := c.call(ctx, http.MethodGet, "/v1/usage?"+v.Encode(), nil, &out)
	return out, err
}

// Stored returns the bytes an account stores per table and bucket.
func (c *Client) Stored(ctx context.Context, id silo.AccountID) ([]storage.Used, error) {
	var out []storage.Used
	err := c.call(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(string(id))+"/storage", nil, &out)
	return out, err
}

// LastProbe returns the last live probe run recorded (GET
// /v1/verify/probe); CodeNotFound before the first.
func (c *Client) LastProbe(ctx context.Context) (report.Probe, error) {
	var out report.Probe
	err := c.call(ctx, http.MethodGet, "/v1/verify/probe", nil, &out)
	return out, err
}

// decodeLimits reads the limits object of PUT /v1/accounts/{id}/limits. A
// field given as 0 is refused as out of range, as a negative one is: 0 is
// what an absent field means, and a limit the caller gave is never dropped.
func decodeLimits(r *http.Request) (silo.Limits, error) {
	var raw json.RawMessage
	if err := decode(r, &raw); err != nil {
		return silo.Limits{}, err
	}
	var l silo.Limits
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return l, bodyError(err, reflect.TypeOf(&l))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return l, bodyError(err, reflect.TypeOf(&fields))
	}
	return l, l.CheckGiven(func(f string) bool {
		v, ok := fields[f]
		return ok && string(v) != "null"
	})
}
