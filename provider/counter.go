package provider

import (
	"math"
	"strconv"

	silo "github.com/silo-run/silo"
)

// Sum is what Data.Add stores at key in table, as base-10 text: the integer
// old holds plus delta. exists is false for a missing key, which counts as
// 0. Every provider's Add computes its sum here.
//
// # Errors
//
// CodeInvalid, saying what to do, when old is not a base-10 int64 (as
// strconv.ParseInt reads it) or the sum overflows an int64.
func Sum(table, key string, old []byte, exists bool, delta int64) (int64, error) {
	var n int64
	if exists {
		var err error
		if n, err = strconv.ParseInt(string(old), 10, 64); err != nil {
			return 0, silo.Errorf(silo.CodeInvalid, "the value of key %q in table %q is not a base-10 integer, so Add cannot add to it; Put an integer such as \"0\" there first, or count under another key", clip(key), table)
		}
	}
	if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
		return 0, silo.Errorf(silo.CodeInvalid, "adding %d to %d, the value of key %q in table %q, would overflow a 64-bit integer", delta, n, clip(key), table)
	}
	return n + delta, nil
}
