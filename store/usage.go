package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
)

// Counters are what was metered for one function of one account over a
// period. They add up: the counters of a day are the sum of its hours'.
type Counters struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// DurationMicros is the time spent serving the requests, in
	// microseconds.
	DurationMicros int64 `json:"duration_us"`
	// MemoryMiBMicros is memory held × time: the function's declared
	// memory in MiB times each request's duration in microseconds, summed.
	// GB-seconds are MemoryMiBMicros / 1024 / 1e6.
	MemoryMiBMicros int64 `json:"memory_mib_us"`
	BytesIn         int64 `json:"bytes_in"`
	BytesOut        int64 `json:"bytes_out"`
}

// Add returns c + o.
func (c Counters) Add(o Counters) Counters {
	return Counters{
		Requests: c.Requests + o.Requests, Errors: c.Errors + o.Errors,
		DurationMicros: c.DurationMicros + o.DurationMicros, MemoryMiBMicros: c.MemoryMiBMicros + o.MemoryMiBMicros,
		BytesIn: c.BytesIn + o.BytesIn, BytesOut: c.BytesOut + o.BytesOut,
	}
}

// IsZero reports whether nothing was metered.
func (c Counters) IsZero() bool { return c == Counters{} }

// UsageDelta is usage to add to one hour of one function of one account.
// Created is the account's creation time: an ID whose account was deleted
// may be taken by a new account, and each keeps its own usage (see
// PurgeAccount). Zero means the account registered under the ID when the
// usage is added, if any.
type UsageDelta struct {
	Account  silo.AccountID
	Created  time.Time
	Function string
	Counters
}

// UsageDay is the stored usage of one function of one account on one UTC
// day. Hours holds the day's hourly roll-ups while they are kept; once they
// are older than the hourly retention only Total, the daily roll-up, is.
type UsageDay struct {
	Account silo.AccountID `json:"account"`
	// Created is the creation time of the account the usage is of, which
	// tells apart the accounts that had the same ID one after the other;
	// zero when the usage was metered for an ID no account held.
	Created  time.Time     `json:"created,omitzero"`
	Function string        `json:"function"`
	Day      time.Time     `json:"day"` // midnight UTC
	Hours    *[24]Counters `json:"hours,omitempty"`
	Total    Counters      `json:"total"`
}

// UsageQuery selects usage days for reading, oldest first, then by account,
// the account's creation time and function. Zero fields match everything.
type UsageQuery struct {
	Account silo.AccountID
	// Created selects the usage of the account created then (with
	// Account: of one account, not of the others that had its ID).
	Created time.Time
	From    time.Time // first day included (truncated to its UTC day)
	To      time.Time // first day excluded; zero: no end
	// After pages: only days after this (Day, Account, Function) in the
	// order above. Limit bounds the rows (0: no bound).
	After *UsageCursor
	Limit int
}

// UsageCursor is a position in the order of UsageQuery.
type UsageCursor struct {
	Day      time.Time      `json:"day"`
	Account  silo.AccountID `json:"account"`
	Created  time.Time      `json:"created,omitzero"`
	Function string         `json:"function"`
}

// Days returns the stored day numbers q reads: from (included) to to
// (excluded), each unbounded when its time is zero, and the day of its
// cursor (math.MinInt64 without one).
func (q UsageQuery) Days() (from, to, after int64) {
	from, to, after = DayNumber(q.From), math.MaxInt64, math.MinInt64
	if q.From.IsZero() {
		from = math.MinInt64
	}
	if !q.To.IsZero() {
		to = DayNumber(q.To)
	}
	if q.After != nil {
		after = DayNumber(q.After.Day)
	}
	return from, to, after
}

// CreatedKey is an account's creation time as the tables of days store it
// with each row: Unix microseconds, 0 for the zero time (usage of an ID no
// account held).
func CreatedKey(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// CreatedTime is CreatedKey's inverse, in UTC.
func CreatedTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

// CreatedOf returns the stored creation time of the account registered
// under id, 0 if none is; seen caches the answers of one transaction. The
// stores use it for usage and samples added without a creation time.
//
// # Errors
//
// The store's error reading the account.
func CreatedOf(tx Tx, id silo.AccountID, seen map[silo.AccountID]int64) (int64, error) {
	if n, ok := seen[id]; ok {
		return n, nil
	}
	a, err := tx.Account(id)
	switch {
	case errors.Is(err, silo.ErrNotFound):
		seen[id] = 0
	case err != nil:
		return 0, err
	default:
		seen[id] = CreatedKey(a.Created)
	}
	return seen[id], nil
}

// DayNumber is a UTC day as stored: days since the Unix epoch.
func DayNumber(t time.Time) int64 { return t.UTC().Unix() / 86400 }

// DayTime is the midnight UTC of a stored day number.
func DayTime(n int64) time.Time { return time.Unix(n*86400, 0).UTC() }

// The stored forms of a usage day. Both begin with a format byte; every
// number is an unsigned varint.
//
//	usageHourly: 3 bytes, a bitmap of the hours present (bit h of byte
//	             h/8), then for each present hour its six counters in the
//	             order of Counters.
//	usageDaily:  the day's six counters (the hours were rolled up).
const (
	usageHourly = 1
	usageDaily  = 2
)

// EncodeUsage returns the stored form of a day: hourly if hours is given,
// else daily with total.
func EncodeUsage(hours *[24]Counters, total Counters) []byte {
	var b []byte
	put := func(c Counters) {
		for _, v := range [...]int64{c.Requests, c.Errors, c.DurationMicros, c.MemoryMiBMicros, c.BytesIn, c.BytesOut} {
			b = binary.AppendUvarint(b, uint64(max(v, 0)))
		}
	}
	if hours == nil {
		b = append(b, usageDaily)
		put(total)
		return b
	}
	b = append(b, usageHourly, 0, 0, 0)
	for h, c := range hours {
		if !c.IsZero() {
			b[1+h/8] |= 1 << (h % 8)
			put(c)
		}
	}
	return b
}

var errUsageData = errors.New("damaged usage record")

// DecodeUsage reads a stored day: its hours (nil once rolled up) and total.
func DecodeUsage(b []byte) (*[24]Counters, Counters, error) {
	get := func() (Counters, error) {
		var v [6]int64
		for i := range v {
			x, n := binary.Uvarint(b)
			if n <= 0 || x > 1<<62 {
				return Counters{}, errUsageData
			}
			v[i], b = int64(x), b[n:]
		}
		return Counters{v[0], v[1], v[2], v[3], v[4], v[5]}, nil
	}
	if len(b) == 0 {
		return nil, Counters{}, errUsageData
	}
	switch b[0] {
	case usageDaily:
		b = b[1:]
		c, err := get()
		if err == nil && len(b) != 0 {
			err = errUsageData
		}
		return nil, c, err
	case usageHourly:
		if len(b) < 4 {
			return nil, Counters{}, errUsageData
		}
		mask := b[1:4]
		b = b[4:]
		var hours [24]Counters
		var total Counters
		for h := range hours {
			if mask[h/8]&(1<<(h%8)) == 0 {
				continue
			}
			c, err := get()
			if err != nil {
				return nil, Counters{}, err
			}
			hours[h], total = c, total.Add(c)
		}
		if len(b) != 0 {
			return nil, Counters{}, errUsageData
		}
		return &hours, total, nil
	}
	return nil, Counters{}, errUsageData
}

// AddHour returns the stored form of day with c added to the given hour
// (0-23). A day already rolled up gets c added to its total.
//
// # Errors
//
// An error wrapping a damaged stored form.
func AddHour(stored []byte, hour int, c Counters) ([]byte, error) {
	var hours *[24]Counters
	var total Counters
	if stored == nil {
		hours = &[24]Counters{}
	} else {
		var err error
		if hours, total, err = DecodeUsage(stored); err != nil {
			return nil, fmt.Errorf("add usage: %w", err)
		}
	}
	if hours == nil {
		return EncodeUsage(nil, total.Add(c)), nil
	}
	hours[hour] = hours[hour].Add(c)
	return EncodeUsage(hours, Counters{}), nil
}

// RollUp returns the daily form of a stored day.
func RollUp(stored []byte) ([]byte, error) {
	_, total, err := DecodeUsage(stored)
	if err != nil {
		return nil, fmt.Errorf("roll up usage: %w", err)
	}
	return EncodeUsage(nil, total), nil
}

// CheckUsageFunction checks the function name of a usage delta.
func CheckUsageFunction(name string) error {
	if len(name) > 128 {
		return silo.Errorf(silo.CodeInvalid, "usage function name is longer than 128 bytes")
	}
	return nil
}

// DayTable is a table of days a store keeps, one row per day and key:
// its name, the columns of its key after day, how its hours roll up, and
// what its pruning is called in errors.
type DayTable struct {
	Name   string
	Key    []string
	RollUp func([]byte) ([]byte, error)
	Op     string
}

// DayTables are the tables of days of every store: usage and stored bytes.
func DayTables() []DayTable {
	return []DayTable{
		{Name: "usage", Key: []string{"account", "created", "function"}, RollUp: RollUp, Op: "prune usage"},
		{Name: "stored_usage", Key: []string{"account", "created"}, RollUp: RollUpStored, Op: "prune stored bytes"},
	}
}

// PruneDays runs prune, a store's pruning of one table of days (see
// Tx.PruneUsage), over DayTables and adds up what it rolled and deleted.
func PruneDays(prune func(DayTable) (rolled, deleted int64, err error)) (rolled, deleted int64, err error) {
	for _, dt := range DayTables() {
		r, d, err := prune(dt)
		if err != nil {
			return 0, 0, err
		}
		rolled, deleted = rolled+r, deleted+d
	}
	return rolled, deleted, nil
}

// RolledDay is a row of a table of days (usage, stored bytes) as a store
// reads it to roll its hours up: its day number, the other columns of its
// key, and its stored form.
type RolledDay struct {
	Day  int64
	Key  []string
	Data []byte
}

// NewRolledDay returns a row to scan whose key has n columns after the day.
func NewRolledDay(n int) RolledDay { return RolledDay{Key: make([]string, n)} }

// Dest returns the scan destinations of the row: day, key columns, data.
func (d *RolledDay) Dest() []any {
	out := []any{&d.Day}
	for i := range d.Key {
		out = append(out, &d.Key[i])
	}
	return append(out, &d.Data)
}

// Args returns the arguments of the update that stores data as the row's
// new form: data, day, key columns.
func (d RolledDay) Args(data []byte) []any {
	out := []any{data, d.Day}
	for _, k := range d.Key {
		out = append(out, k)
	}
	return out
}

// String names the row's key after its day, "acme/list".
func (d RolledDay) String() string { return strings.Join(d.Key, "/") }
