package store

import (
	"encoding/binary"
	"errors"
	"fmt"
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

// The stored forms of a stored-bytes day. Both begin with a format byte;
// every number is an unsigned varint.
//
//	storedHourly: 3 bytes, a bitmap of the hours sampled (bit h of byte
//	              h/8), then for each sampled hour its bytes less the
//	              previous sampled hour's (the first: less 0), as a
//	              signed (zig-zag) varint: a size that holds still costs
//	              one byte an hour.
//	storedDaily:  the day's byte-hours, then its sampled hours.
const (
	storedHourly = 1
	storedDaily  = 2
)

var errStoredData = errors.New("damaged stored-bytes record")

// EncodeStored returns the stored form of a day: hourly if sampled is
// given, else daily with byteHours and sampledHours.
func EncodeStored(hours *[24]int64, sampled *[24]bool, byteHours, sampledHours int64) []byte {
	if sampled == nil {
		b := []byte{storedDaily}
		b = binary.AppendUvarint(b, uint64(max(byteHours, 0)))
		return binary.AppendUvarint(b, uint64(max(sampledHours, 0)))
	}
	b := []byte{storedHourly, 0, 0, 0}
	var prev int64
	for h := range sampled {
		if sampled[h] {
			v := max(hours[h], 0)
			b[1+h/8] |= 1 << (h % 8)
			b = binary.AppendVarint(b, v-prev)
			prev = v
		}
	}
	return b
}

// DecodeStored reads a stored day into d's Hours, Sampled, ByteHours and
// SampledHours (Hours and Sampled nil once rolled up).
func DecodeStored(b []byte, d *StoredDay) error {
	get := func() (int64, error) {
		x, n := binary.Uvarint(b)
		if n <= 0 || x > 1<<62 {
			return 0, errStoredData
		}
		b = b[n:]
		return int64(x), nil
	}
	if len(b) == 0 {
		return errStoredData
	}
	d.Hours, d.Sampled, d.ByteHours, d.SampledHours = nil, nil, 0, 0
	switch b[0] {
	case storedDaily:
		b = b[1:]
		var err error
		if d.ByteHours, err = get(); err != nil {
			return err
		}
		if d.SampledHours, err = get(); err != nil || d.SampledHours > 24 || len(b) != 0 {
			return errStoredData
		}
		return nil
	case storedHourly:
		if len(b) < 4 {
			return errStoredData
		}
		mask := b[1:4]
		b = b[4:]
		var hours [24]int64
		var sampled [24]bool
		var prev int64
		for h := range hours {
			if mask[h/8]&(1<<(h%8)) == 0 {
				continue
			}
			delta, n := binary.Varint(b)
			if n <= 0 || prev+delta < 0 || prev+delta > 1<<62 {
				return errStoredData
			}
			b = b[n:]
			v := prev + delta
			prev = v
			hours[h], sampled[h] = v, true
			d.ByteHours += v
			d.SampledHours++
		}
		if len(b) != 0 {
			return errStoredData
		}
		d.Hours, d.Sampled = &hours, &sampled
		return nil
	}
	return errStoredData
}

// SetStoredHour returns the stored form of a day with the given hour's
// sample set to bytes (a second sample of an hour replaces the first). A
// day already rolled up keeps its total: its hours are past the retention
// and no longer take samples.
//
// # Errors
//
// An error wrapping a damaged stored form.
func SetStoredHour(stored []byte, hour int, bytes int64) ([]byte, error) {
	var d StoredDay
	if stored == nil {
		d.Hours, d.Sampled = &[24]int64{}, &[24]bool{}
	} else if err := DecodeStored(stored, &d); err != nil {
		return nil, fmt.Errorf("set stored bytes: %w", err)
	}
	if d.Sampled == nil {
		return stored, nil
	}
	d.Hours[hour], d.Sampled[hour] = bytes, true
	return EncodeStored(d.Hours, d.Sampled, 0, 0), nil
}

// RollUpStored returns the daily form of a stored day.
func RollUpStored(stored []byte) ([]byte, error) {
	var d StoredDay
	if err := DecodeStored(stored, &d); err != nil {
		return nil, fmt.Errorf("roll up stored bytes: %w", err)
	}
	return EncodeStored(nil, nil, d.ByteHours, d.SampledHours), nil
}
