package store

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
)

// ReleaseMetrics are the cumulative request metrics one server process (an
// incarnation: a random ID per process start) counted for one account under
// one release, as it last published them for the servers that share the
// store. Package rollout sums them over the incarnations so that a health
// gate judges the requests of every server, not only its own.
//
// The row of an incarnation with an empty Account and Release is its
// heartbeat: Published is when it was last heard from (PublishMetrics).
type ReleaseMetrics struct {
	Incarnation string         `json:"incarnation"`
	Account     silo.AccountID `json:"account"`
	Release     string         `json:"release"`
	Requests    uint64         `json:"requests"`
	Errors      uint64         `json:"errors"`
	// Latency counts requests by latency bucket (silo.LatencyBucket);
	// sparse.
	Latency   map[int]uint64 `json:"latency,omitempty"`
	Published time.Time      `json:"published"`
}

// CheckMetrics refuses a publication that a store must not keep: an empty
// incarnation, or a row without an account or a release (those name the
// heartbeat), or with a counter over math.MaxInt64 or a latency bucket out
// of range (silo.CodeInvalid).
func CheckMetrics(incarnation string, ms []ReleaseMetrics) error {
	if incarnation == "" {
		return silo.Errorf(silo.CodeInvalid, "published metrics need the incarnation of the server that counted them")
	}
	for _, m := range ms {
		if m.Account == "" || m.Release == "" {
			return silo.Errorf(silo.CodeInvalid, "published metrics need an account and a release (got %q, %q)", m.Account, m.Release)
		}
		if m.Requests > math.MaxInt64 || m.Errors > math.MaxInt64 {
			return silo.Errorf(silo.CodeInvalid, "published metrics of %s under %s: a counter is over %d", m.Account, m.Release, int64(math.MaxInt64))
		}
		for b := range m.Latency {
			if b < 0 || b >= silo.LatencyBuckets {
				return silo.Errorf(silo.CodeInvalid, "published metrics of %s under %s: latency bucket %d is out of range", m.Account, m.Release, b)
			}
		}
	}
	return nil
}

// EncodeLatency is the stored form of a sparse latency histogram: JSON,
// "" when empty.
func EncodeLatency(l map[int]uint64) string {
	if len(l) == 0 {
		return ""
	}
	b, _ := json.Marshal(l) // a map of ints cannot fail
	return string(b)
}

// DecodeLatency reads EncodeLatency's form.
func DecodeLatency(s string) (map[int]uint64, error) {
	if s == "" {
		return nil, nil
	}
	var l map[int]uint64
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("decode latency histogram: %w", err)
	}
	return l, nil
}

// copyMetrics writes published metrics as listed (MetricsLister) into tx:
// each incarnation's rows in the order it published them, its heartbeat
// last, so that every row keeps its Published time.
func copyMetrics(tx Tx, ms []ReleaseMetrics) (int, error) {
	ms = slices.Clone(ms)
	slices.SortStableFunc(ms, func(a, b ReleaseMetrics) int {
		if c := strings.Compare(a.Incarnation, b.Incarnation); c != 0 {
			return c
		}
		ah, bh := a.Account == "" && a.Release == "", b.Account == "" && b.Release == ""
		if ah != bh {
			if ah {
				return 1
			}
			return -1
		}
		return a.Published.Compare(b.Published)
	})
	n := 0
	for i := 0; i < len(ms); {
		j := i
		for j < len(ms) && ms[j].Incarnation == ms[i].Incarnation && ms[j].Published.Equal(ms[i].Published) && (ms[j].Account == "") == (ms[i].Account == "") {
			j++
		}
		group := ms[i:j]
		if group[0].Account == "" && group[0].Release == "" {
			group = nil // the heartbeat alone
		}
		if err := tx.PublishMetrics(ms[i].Incarnation, ms[i].Published, group); err != nil {
			return n, fmt.Errorf("copy the metrics published by %s: %w", ms[i].Incarnation, err)
		}
		n += j - i
		i = j
	}
	return n, nil
}
