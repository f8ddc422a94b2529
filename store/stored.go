package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
)

// The kinds of a stored-bytes record.
const (
	StoredTable  = "table"
	StoredBucket = "bucket"
)

// StoredSample is the bytes one account stores in one table or bucket, as
// sampled at some moment of an hour. The hour's sample counts as the bytes
// held for the whole hour: it is that hour's byte-hours.
type StoredSample struct {
	Account silo.AccountID
	// Created is the account's creation time (see UsageDelta.Created);
	// zero means the account registered under the ID when it is stored.
	Created time.Time
	Kind    string // StoredTable or StoredBucket
	Name    string
	Bytes   int64
}

// StoredDay is the stored-bytes history of one table or bucket of one
// account on one UTC day. Hours holds each sampled hour's bytes (Sampled
// says which) while the hourly roll-ups are kept; once they are older than
// the hourly retention only ByteHours and SampledHours, the daily roll-up,
// are.
type StoredDay struct {
	Account silo.AccountID `json:"account"`
	Created time.Time      `json:"created,omitzero"` // see UsageDay.Created
	Kind    string         `json:"kind"`
	Name    string         `json:"name"`
	Day     time.Time      `json:"day"` // midnight UTC
	Hours   *[24]int64     `json:"hours,omitempty"`
	Sampled *[24]bool      `json:"sampled,omitempty"`
	// ByteHours is the sum of the day's hourly samples: bytes × hours.
	ByteHours int64 `json:"byte_hours"`
	// SampledHours is how many hours of the day have a sample (24 for a
	// day the server ran through); an hour without one counts nothing.
	SampledHours int64 `json:"sampled_hours"`
}

// StoredResource is the stored form of a sample's table or bucket, the key
// column of its rows and the Function of a UsageCursor paging Stored:
// kind + "/" + name.
func StoredResource(kind, name string) string { return kind + "/" + name }

// SplitStoredResource is StoredResource's inverse.
func SplitStoredResource(r string) (kind, name string) {
	kind, name, _ = strings.Cut(r, "/")
	return kind, name
}

// CheckStoredSample checks a sample before it is stored.
//
// # Errors
//
// CodeInvalid naming what is wrong.
func CheckStoredSample(s StoredSample) error {
	switch {
	case s.Kind != StoredTable && s.Kind != StoredBucket:
		return silo.Errorf(silo.CodeInvalid, "stored-bytes sample of %s has kind %q; want table or bucket", s.Account, s.Kind)
	case s.Name == "" || len(s.Name) > 128:
		return silo.Errorf(silo.CodeInvalid, "stored-bytes sample of %s names a %s of %d bytes; want 1 to 128", s.Account, s.Kind, len(s.Name))
	case s.Bytes < 0:
		return silo.Errorf(silo.CodeInvalid, "stored-bytes sample of %s %s %q is negative (%d)", s.Account, s.Kind, s.Name, s.Bytes)
	}
	return nil
}

// The stored form of one account's stored-bytes day: one entry per table
// or bucket, in StoredResource order (buckets, then tables, each by name).
// An entry is a head byte (its form, plus storedBucket for a bucket), the
// name's length as an unsigned varint and the name, then its body:
//
//	storedHourly: 3 bytes, a bitmap of the hours sampled (bit h of byte
//	              h/8), then for each sampled hour its bytes less the
//	              previous sampled hour's (the first: less 0), as a
//	              signed (zig-zag) varint: a size that holds still costs
//	              one byte an hour.
//	storedDaily:  the day's byte-hours, then its sampled hours, as
//	              unsigned varints.
//
// One row per account and day, rather than per table or bucket, stores
// the key and index once for all of them.
const (
	storedHourly = 1
	storedDaily  = 2
	storedBucket = 4
)

var errStoredData = errors.New("damaged stored-bytes record")

// EncodeStored returns the stored form of one account's day from its
// tables' and buckets' days (each hourly if Sampled is set, else daily
// with ByteHours and SampledHours), and whether every one is rolled up.
// days must be of one account and day, each table or bucket at most once.
func EncodeStored(days []StoredDay) (b []byte, rolled bool) {
	days = slices.Clone(days)
	slices.SortFunc(days, func(a, b StoredDay) int {
		return strings.Compare(StoredResource(a.Kind, a.Name), StoredResource(b.Kind, b.Name))
	})
	rolled = true
	for _, d := range days {
		head := byte(storedDaily)
		if d.Sampled != nil {
			head, rolled = storedHourly, false
		}
		if d.Kind == StoredBucket {
			head |= storedBucket
		}
		b = append(b, head)
		b = binary.AppendUvarint(b, uint64(len(d.Name)))
		b = append(b, d.Name...)
		if d.Sampled == nil {
			b = binary.AppendUvarint(b, uint64(max(d.ByteHours, 0)))
			b = binary.AppendUvarint(b, uint64(max(d.SampledHours, 0)))
			continue
		}
		mask := len(b)
		b = append(b, 0, 0, 0)
		var prev int64
		for h := range d.Sampled {
			if d.Sampled[h] {
				v := max(d.Hours[h], 0)
				b[mask+h/8] |= 1 << (h % 8)
				b = binary.AppendVarint(b, v-prev)
				prev = v
			}
		}
	}
	return b, rolled
}

// DecodeStored reads the stored form of acct's day into one StoredDay per
// table and bucket, in StoredResource order (Hours and Sampled nil once
// rolled up).
func DecodeStored(b []byte, acct silo.AccountID, day time.Time) ([]StoredDay, error) {
	uvarint := func() (int64, error) {
		x, n := binary.Uvarint(b)
		if n <= 0 || x > 1<<62 {
			return 0, errStoredData
		}
		b = b[n:]
		return int64(x), nil
	}
	var out []StoredDay
	last := ""
	for len(b) > 0 {
		head := b[0]
		b = b[1:]
		d := StoredDay{Account: acct, Kind: StoredTable, Day: day}
		if head&storedBucket != 0 {
			d.Kind = StoredBucket
		}
		n, err := uvarint()
		if err != nil || n == 0 || n > int64(len(b)) {
			return nil, errStoredData
		}
		d.Name, b = string(b[:n]), b[n:]
		r := StoredResource(d.Kind, d.Name)
		if r <= last {
			return nil, errStoredData
		}
		last = r
		switch head &^ storedBucket {
		case storedDaily:
			if d.ByteHours, err = uvarint(); err != nil {
				return nil, err
			}
			if d.SampledHours, err = uvarint(); err != nil || d.SampledHours > 24 {
				return nil, errStoredData
			}
		case storedHourly:
			if len(b) < 3 {
				return nil, errStoredData
			}
			mask := b[:3]
			b = b[3:]
			var hours [24]int64
			var sampled [24]bool
			var prev int64
			for h := range hours {
				if mask[h/8]&(1<<(h%8)) == 0 {
					continue
				}
				delta, n := binary.Varint(b)
				if n <= 0 || prev+delta < 0 || prev+delta > 1<<62 {
					return nil, errStoredData
				}
				b = b[n:]
				prev += delta
				hours[h], sampled[h] = prev, true
				d.ByteHours += prev
				d.SampledHours++
			}
			d.Hours, d.Sampled = &hours, &sampled
		default:
			return nil, errStoredData
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errStoredData
	}
	return out, nil
}

// SetStoredHour returns the stored form of an account's day with the
// given hour's sample of each table or bucket of ss (all of that account)
// set to its bytes (a second sample of an hour replaces the first), and
// whether the day is all rolled up. A table or bucket whose day is already
// rolled up keeps its total: its hours are past the retention and no
// longer take samples.
//
// # Errors
//
// An error wrapping a damaged stored form.
func SetStoredHour(stored []byte, hour int, ss []StoredSample) ([]byte, bool, error) {
	var days []StoredDay
	if stored != nil {
		var err error
		if days, err = DecodeStored(stored, "", time.Time{}); err != nil {
			return nil, false, fmt.Errorf("set stored bytes: %w", err)
		}
	}
	for _, s := range ss {
		i := slices.IndexFunc(days, func(d StoredDay) bool { return d.Kind == s.Kind && d.Name == s.Name })
		if i < 0 {
			days = append(days, StoredDay{Kind: s.Kind, Name: s.Name, Hours: &[24]int64{}, Sampled: &[24]bool{}})
			i = len(days) - 1
		}
		if d := days[i]; d.Sampled != nil {
			d.Hours[hour], d.Sampled[hour] = s.Bytes, true
		}
	}
	b, rolled := EncodeStored(days)
	return b, rolled, nil
}

// RollUpStored returns the daily form of an account's stored day.
func RollUpStored(stored []byte) ([]byte, error) {
	days, err := DecodeStored(stored, "", time.Time{})
	if err != nil {
		return nil, fmt.Errorf("roll up stored bytes: %w", err)
	}
	for i := range days {
		days[i].Hours, days[i].Sampled = nil, nil
	}
	b, _ := EncodeStored(days)
	return b, nil
}

// StoredByAccount groups samples by account (an ID and a creation time),
// in the order each account first appears, keeping their order within it.
// A sample without a creation time takes the one created(id) returns: the
// stores pass CreatedOf.
//
// # Errors
//
// created's error.
func StoredByAccount(ss []StoredSample, created func(silo.AccountID) (int64, error)) ([][]StoredSample, error) {
	type acct struct {
		id      silo.AccountID
		created int64
	}
	var out [][]StoredSample
	at := map[acct]int{}
	for _, s := range ss {
		k := acct{s.Account, CreatedKey(s.Created)}
		if k.created == 0 {
			n, err := created(s.Account)
			if err != nil {
				return nil, err
			}
			k.created, s.Created = n, CreatedTime(n)
		}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], s)
	}
	return out, nil
}

// AppendStored appends to out the days of one stored row (the day of the
// account acct created at created) that come after the cursor after (nil:
// all), while out holds fewer than limit (0: no limit).
func AppendStored(out []StoredDay, data []byte, acct silo.AccountID, created, day time.Time, after *UsageCursor, limit int) ([]StoredDay, error) {
	days, err := DecodeStored(data, acct, day)
	if err != nil {
		return out, err
	}
	for _, d := range days {
		if limit > 0 && len(out) >= limit {
			break
		}
		if after != nil && DayNumber(after.Day) == DayNumber(day) && after.Account == acct && after.Created.Equal(created) && StoredResource(d.Kind, d.Name) <= after.Function {
			continue
		}
		d.Created = created
		out = append(out, d)
	}
	return out, nil
}
