package silo

import (
	"math"
	"math/bits"
	"time"
)

// Request latencies are counted in log-linear histograms: four buckets per
// power of two of nanoseconds, so a quantile read from them is known within
// 19%. The runtime, the rollout gates and providers that count their own
// requests (functions on Lambda) share this layout, so their histograms
// add up.
const LatencyBuckets = 64 * 4

// LatencyBucket returns the histogram bucket of a duration.
func LatencyBucket(d time.Duration) int {
	ns := uint64(max(d, 1))
	e := 63 - bits.LeadingZeros64(ns) // floor(log2)
	var frac uint64
	if e >= 2 {
		frac = (ns >> (e - 2)) & 3
	} else {
		frac = (ns << (2 - e)) & 3
	}
	return e*4 + int(frac)
}

// LatencyBucketBound returns the upper bound of bucket i.
func LatencyBucketBound(i int) time.Duration {
	e, f := i/4, i%4
	v := math.Ldexp(1+float64(f+1)/4, e)
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(v)
}
