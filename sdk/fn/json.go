package fn

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"

	"github.com/silo-run/silo/sdk/jsonstr"
)

// marshalJSON is json.Marshal with a direct path for the values handlers
// return most: strings, booleans, ints, float64s, nil, and maps with string
// keys and slices of those (map[string]any, map[string]string, []any,
// []map[string]any, ...), nested. Go compiled to wasm pays dearly for
// encoding/json's reflection, pooled state and sorted reflect.Values: the
// direct path writes the same bytes (TestMarshalJSONSameAsEncodingJSON) in
// well under half the time. Anything else (structs, pointers, named types,
// values with their own MarshalJSON, NaN) goes to json.Marshal whole, so its
// errors are encoding/json's.
func marshalJSON(v any) ([]byte, error) {
	if b, ok := appendJSON(make([]byte, 0, 64), v, 0); ok {
		return b, nil
	}
	return json.Marshal(v)
}

// maxJSONDepth bounds the direct path's recursion: deeper values (or a map
// that contains itself) go to json.Marshal, which reports cycles.
const maxJSONDepth = 32

// appendJSON appends the JSON encoding of v to b; ok is false when v is not
// a value the direct path handles, and b is then garbage.
func appendJSON(b []byte, v any, depth int) (_ []byte, ok bool) {
	if depth > maxJSONDepth {
		return b, false
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return jsonstr.Append(b, v), true
	case bool:
		return strconv.AppendBool(b, v), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case float64:
		return appendJSONFloat(b, v)
	case map[string]any:
		if v == nil {
			return append(b, "null"...), true
		}
		return appendJSONObject(b, v, depth, appendJSON)
	case map[string]string:
		if v == nil {
			return append(b, "null"...), true
		}
		return appendJSONObject(b, v, depth, appendJSONStringValue)
	case map[string]bool:
		if v == nil {
			return append(b, "null"...), true
		}
		return appendJSONObject(b, v, depth, appendJSONBool)
	case map[string]int:
		if v == nil {
			return append(b, "null"...), true
		}
		return appendJSONObject(b, v, depth, appendJSONInt)
	case []any:
		if v == nil {
			return append(b, "null"...), true
		}
		return appendJSONArray(b, v, depth, appendJSON)
	case []string:
		if v == nil {
			return append(b, "null"...), true
		}
		return appendJSONArray(b, v, depth, appendJSONStringValue)
	case []int:
		if v == nil {
			return append(b, "null"...), true
		}
		return appendJSONArray(b, v, depth, appendJSONInt)
	case []map[string]any:
		if v == nil {
			return append(b, "null"...), true
		}
		return appendJSONArray(b, v, depth, appendJSONMap)
	}
	return b, false
}

// The element encoders of the typed maps and slices (no boxing of each
// value into an interface, which would allocate).
func appendJSONStringValue(b []byte, s string, _ int) ([]byte, bool) {
	return jsonstr.Append(b, s), true
}

func appendJSONBool(b []byte, v bool, _ int) ([]byte, bool) { return strconv.AppendBool(b, v), true }

func appendJSONInt(b []byte, v int, _ int) ([]byte, bool) {
	return strconv.AppendInt(b, int64(v), 10), true
}

// appendJSONMap is appendJSON for the elements of a []map[string]any (a map
// converts to an interface without allocating).
func appendJSONMap(b []byte, m map[string]any, depth int) ([]byte, bool) {
	return appendJSON(b, m, depth)
}

// appendJSONObject writes m with its keys sorted, as encoding/json does. A
// map of up to 8 entries is read once, keys with their values, and sorted
// in place: looking each key up again costs a Go wasm guest a string hash
// (in software) per key.
func appendJSONObject[V any](b []byte, m map[string]V, depth int, value func([]byte, V, int) ([]byte, bool)) ([]byte, bool) {
	if len(m) > 8 {
		return appendJSONObjectLarge(b, m, depth, value)
	}
	var keys [8]string
	var vals [8]V
	n := 0
	for k, v := range m {
		if n == len(keys) {
			return appendJSONObjectLarge(b, m, depth, value) // changed under us
		}
		// Insertion sort: at most 8 entries.
		j := n
		for ; j > 0 && keys[j-1] > k; j-- {
			keys[j], vals[j] = keys[j-1], vals[j-1]
		}
		keys[j], vals[j] = k, v
		n++
	}
	b = append(b, '{')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonstr.Append(b, keys[i])
		b = append(b, ':')
		var ok bool
		if b, ok = value(b, vals[i], depth+1); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendJSONObjectLarge is appendJSONObject for a map of any size.
func appendJSONObjectLarge[V any](b []byte, m map[string]V, depth int, value func([]byte, V, int) ([]byte, bool)) ([]byte, bool) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonstr.Append(b, k)
		b = append(b, ':')
		var ok bool
		if b, ok = value(b, m[k], depth+1); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func appendJSONArray[V any](b []byte, s []V, depth int, value func([]byte, V, int) ([]byte, bool)) ([]byte, bool) {
	b = append(b, '[')
	for i := range s {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = value(b, s[i], depth+1); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

// appendJSONFloat is encoding/json's float64 encoding; NaN and infinities
// are not JSON and go to json.Marshal for its error.
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}
