package usage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// The groupings of a report.
const (
	ByAccount  = "account"
	ByFunction = "function"
	ByDay      = "day"
)

// Query selects a report.
type Query struct {
	// Account limits the report to one account ("" for every account).
	Account silo.AccountID `json:"account,omitempty"`
	// Since and Until bound the report by whole UTC days: the day holding
	// Since up to and including the day holding Until.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// By groups the lines: ByAccount (default), ByFunction or ByDay.
	By string `json:"by,omitempty"`
	// After is the Next of the previous page; Limit bounds the lines of a
	// page (default DefaultLines, at most MaxLines).
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
	// Probes lists the throwaway accounts of silo verify --probe too; a
	// report of every account leaves them out otherwise (see
	// control.Plane.Usage).
	Probes bool `json:"probes,omitempty"`
}

// DefaultLines is how many lines a page holds unless Limit says; MaxLines
// is the most one page holds (a fleet of 10,000 accounts in one page of
// account lines).
const (
	DefaultLines = 1000
	MaxLines     = 10_000
)

// Earliest is the earliest time a usage window may start or end: the
// first moment of the year 1, the earliest an RFC 3339 time (the API's
// form) can name. Every account, and so every usage, is much later.
var Earliest = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrTooEarly marks a usage window that starts before Earliest. Test
// with errors.Is.
var ErrTooEarly = errors.New("usage window starts before the year 1")

// Check validates q and fills in its defaults.
//
// # Errors
//
// CodeInvalid saying what to fix.
func (q *Query) Check() error {
	switch q.By {
	case "":
		q.By = ByAccount
	case ByAccount, ByFunction, ByDay:
	default:
		return silo.Errorf(silo.CodeInvalid, "usage cannot be grouped by %q; use account, function or day", q.By)
	}
	if q.Limit < 0 {
		return silo.Errorf(silo.CodeInvalid, "usage page limit %d is negative", q.Limit)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLines
	}
	q.Limit = min(q.Limit, MaxLines)
	if q.Until.IsZero() || q.Since.IsZero() {
		return silo.Errorf(silo.CodeInvalid, "a usage report needs a start and an end; pass --since (e.g. 30d)")
	}
	if q.Since.Before(Earliest) || q.Until.Before(Earliest) {
		return &silo.Error{Code: silo.CodeInvalid, Err: ErrTooEarly,
			Message: "the usage window reaches back before the year 1; start it later (30d, or a date such as 2026-03-01)"}
	}
	if q.Until.Before(q.Since) {
		return silo.Errorf(silo.CodeInvalid, "the usage window ends (%s) before it starts (%s)", q.Until.Format(time.DateOnly), q.Since.Format(time.DateOnly))
	}
	return nil
}

// Line is one line of a report: the usage of one account, or of one
// function or one day of it. An account is an ID and a creation time: a
// deleted account's ID may be taken by a new account, and each has lines
// of its own.
type Line struct {
	Account silo.AccountID `json:"account"`
	// Created is when the account was created (zero for usage metered
	// for an ID no account held); Deleted, when it was deleted (nil while
	// it exists).
	Created  time.Time  `json:"created,omitzero"`
	Deleted  *time.Time `json:"deleted,omitempty"`
	Function string     `json:"function,omitempty"`
	Day      string     `json:"day,omitempty"` // YYYY-MM-DD
	store.Counters
	GBSeconds float64 `json:"gb_seconds"`
	// TableByteHours and BucketByteHours are the bytes the account stored
	// in its tables and in its buckets times the hours it held them, from
	// hourly samples (store.Tx.SetStored); on account and day lines only.
	TableByteHours  int64 `json:"table_byte_hours"`
	BucketByteHours int64 `json:"bucket_byte_hours"`
	// Cost is the estimated cost of the usage, stored bytes included;
	// StorageCost is the stored bytes' part of it; Floor the share of the
	// idle account's floor (on account and day lines only). In US dollars.
	Cost        float64 `json:"cost_usd"`
	StorageCost float64 `json:"storage_usd"`
	Floor       float64 `json:"floor_usd"`
}

// key orders the lines: by account ID, then creation (the earlier account
// with an ID first), function and day.
func (l Line) key() string {
	return string(l.Account) + "\x00" + fmt.Sprintf("%020d", store.CreatedKey(l.Created)) + "\x00" + l.Function + "\x00" + l.Day
}

// who is an account as a report tells accounts apart: its ID and the
// stored form of its creation time.
type who struct {
	id      silo.AccountID
	created int64
}

func (l Line) who() who { return who{l.Account, store.CreatedKey(l.Created)} }

// Report is one page of a usage report.
type Report struct {
	Query  Query  `json:"query"`
	Prices Prices `json:"prices"`
	Lines  []Line `json:"lines"`
	// Next, if not empty, is the After of the next page.
	Next string `json:"next,omitempty"`
}

// Lifetime is when an account existed, which is when it costs its floor:
// from From (its creation, which with the ID names the account) to To (its
// deletion, or now for an account that still exists). A zero From or To
// leaves that end open (the report's window bounds it). Deleted says
// whether To is a deletion.
type Lifetime struct {
	Account  silo.AccountID
	From, To time.Time
	Deleted  bool
}

// LifetimeOf is the lifetime of a as of now: from its creation until its
// deletion (a deleted account's last update) or, while it exists, now.
func LifetimeOf(a silo.Account, now time.Time) Lifetime {
	l := Lifetime{Account: a.ID, From: a.Created, To: now}
	if a.State == silo.StateDeleted {
		l.To, l.Deleted = a.Updated, true
	}
	return l
}

func (l Lifetime) who() who { return who{l.Account, store.CreatedKey(l.From)} }

// mark sets the account's creation and deletion on line x.
func (l Lifetime) mark(x *Line) {
	x.Created = l.From
	if l.Deleted {
		to := l.To
		x.Deleted = &to
	}
}

// touches reports whether the account existed for some time in [start,
// end), or was created and deleted at one moment of it.
func (l Lifetime) touches(start, end time.Time) bool {
	from, to := l.From, l.To
	if from.IsZero() || from.Before(start) {
		from = start
	}
	if to.IsZero() || to.After(end) {
		to = end
	}
	return from.Before(end) && (to.After(from) || to.Equal(from) && l.From.Equal(l.To))
}

// within is how long of [start, end) the account existed.
func (l Lifetime) within(start, end time.Time) time.Duration {
	if !l.From.IsZero() && l.From.After(start) {
		start = l.From
	}
	if !l.To.IsZero() && l.To.Before(end) {
		end = l.To
	}
	return max(end.Sub(start), 0)
}

// Build reads the usage that q selects from st and prices it. accounts are
// the accounts to list even without usage (an idle account still costs its
// floor) with when each existed, each with its own lines, apart from those
// of another account with its ID: an account is listed only if it existed
// in the window, on day lines only on the days it existed, and its floor is
// charged only for the time it existed (an account created an hour ago
// costs an hour of floor, a deleted one nothing after its deletion). With
// q.Account empty the report holds these accounts only: usage recorded for
// any other (the production account's, which a per-tenant billing export
// leaves out) is not listed. With q.Account set only that one is listed,
// whether in accounts or not; if not, it carries no floor.
//
// # Errors
//
// CodeInvalid for a bad query; the store's errors, wrapped.
func Build(ctx context.Context, st store.Store, q Query, p Prices, accounts []Lifetime) (Report, error) {
	if err := q.Check(); err != nil {
		return Report{}, err
	}
	from := q.Since.UTC().Truncate(24 * time.Hour)
	to := q.Until.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	lives := map[who]Lifetime{}
	for _, a := range accounts {
		if (q.Account == "" || a.Account == q.Account) && a.touches(from, to) {
			lives[a.who()] = a
		}
	}
	listed := map[who]Lifetime{}
	for _, a := range accounts {
		listed[a.who()] = a
	}
	lines := map[string]*Line{}
	add := func(l Line) {
		if _, ok := listed[l.who()]; q.Account == "" && !ok {
			return // not one of the accounts the report is about
		}
		k := l.key()
		if have, ok := lines[k]; ok {
			have.Counters = have.Counters.Add(l.Counters)
			have.TableByteHours += l.TableByteHours
			have.BucketByteHours += l.BucketByteHours
			return
		}
		lines[k] = &l
	}
	if q.By != ByFunction {
		for _, a := range lives {
			if q.By == ByAccount {
				add(Line{Account: a.Account, Created: a.From})
				continue
			}
			d := from
			if a.From.After(d) {
				d = a.From.UTC().Truncate(24 * time.Hour)
			}
			for ; d.Before(to) && a.touches(d, d.AddDate(0, 0, 1)); d = d.AddDate(0, 0, 1) {
				add(Line{Account: a.Account, Created: a.From, Day: d.Format(time.DateOnly)})
			}
		}
	}
	sq := store.UsageQuery{Account: q.Account, From: from, To: to, Limit: 5000}
	for {
		var days []store.UsageDay
		err := st.View(ctx, func(tx store.Tx) error {
			var err error
			days, err = tx.Usage(sq)
			return err
		})
		if err != nil {
			return Report{}, err
		}
		for _, u := range days {
			l := Line{Account: u.Account, Created: u.Created, Counters: u.Total}
			switch q.By {
			case ByFunction:
				l.Function = u.Function
			case ByDay:
				l.Day = u.Day.Format(time.DateOnly)
			}
			add(l)
		}
		if len(days) < sq.Limit {
			break
		}
		last := days[len(days)-1]
		sq.After = &store.UsageCursor{Day: last.Day, Account: last.Account, Created: last.Created, Function: last.Function}
	}
	if q.By != ByFunction {
		if err := addStored(ctx, st, q, from, to, add); err != nil {
			return Report{}, err
		}
	}
	after, err := base64.RawURLEncoding.DecodeString(q.After)
	if err != nil || !validKey(string(after)) {
		return Report{}, silo.Errorf(silo.CodeInvalid, "the usage page cursor %q is not one this server returned; start again without it", q.After)
	}
	keys := make([]string, 0, len(lines))
	for k := range lines {
		if k > string(after) || len(after) == 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	r := Report{Query: q, Prices: p, Lines: []Line{}}
	for i, k := range keys {
		if i == q.Limit {
			r.Next = base64.RawURLEncoding.EncodeToString([]byte(keys[i-1]))
			break
		}
		l := *lines[k]
		l.GBSeconds = GBSeconds(l.Counters)
		l.StorageCost = p.StoredCost(l.TableByteHours, l.BucketByteHours)
		l.Cost = p.Cost(l.Counters) + l.StorageCost
		if a, ok := listed[l.who()]; ok {
			a.mark(&l)
		}
		if a, ok := lives[l.who()]; ok {
			switch q.By {
			case ByAccount:
				l.Floor = p.Floor(a.within(from, to))
			case ByDay:
				if d, err := time.Parse(time.DateOnly, l.Day); err == nil {
					l.Floor = p.Floor(a.within(d, d.AddDate(0, 0, 1)))
				}
			}
		}
		r.Lines = append(r.Lines, l)
	}
	return r, nil
}

// addStored adds the stored-bytes days that q selects to their account's
// or day's line.
func addStored(ctx context.Context, st store.Store, q Query, from, to time.Time, add func(Line)) error {
	sq := store.UsageQuery{Account: q.Account, From: from, To: to, Limit: 5000}
	for {
		var days []store.StoredDay
		err := st.View(ctx, func(tx store.Tx) error {
			var err error
			days, err = tx.Stored(sq)
			return err
		})
		if err != nil {
			return err
		}
		for _, d := range days {
			l := Line{Account: d.Account, Created: d.Created}
			if q.By == ByDay {
				l.Day = d.Day.Format(time.DateOnly)
			}
			if d.Kind == store.StoredBucket {
				l.BucketByteHours = d.ByteHours
			} else {
				l.TableByteHours = d.ByteHours
			}
			add(l)
		}
		if len(days) < sq.Limit {
			return nil
		}
		last := days[len(days)-1]
		sq.After = &store.UsageCursor{Day: last.Day, Account: last.Account, Created: last.Created, Function: store.StoredResource(last.Kind, last.Name)}
	}
}

func validKey(s string) bool { return s == "" || strings.Count(s, "\x00") == 3 }
