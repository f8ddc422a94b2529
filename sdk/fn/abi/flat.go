package abi

import (
	"unsafe"
)

// The decoders in this file are the guest's: Go compiled to wasm pays about
// 150 ns per heap allocation and over a microsecond per map, so a guest
// decodes a request into flat key/value pairs in one slice, with strings that
// alias the encoded bytes instead of copies. The caller must hand them bytes
// that nothing writes to afterwards (a fresh buffer per request or result).

// FlatRequest is a decoded request without maps. Params, Query and Header
// hold key, value pairs in encoding order; a key with several values appears
// once per value, and a key sent without values is absent. All strings and
// Body alias the decoded bytes.
type FlatRequest struct {
	ID, Method, Path      string
	Params, Query, Header []string
	Body                  []byte
}

// DecodeFlat decodes the request b into r with one allocation (the pairs);
// b must not change afterwards. When space has room for all the pairs they
// go there instead, without allocating: the caller gives space that lives
// as long as r's slices (a guest's request and its pairs are then one
// allocation).
//
// It reads b by index with span, which the compiler inlines, rather than
// through the decoder's methods: a Go wasm guest pays tens of nanoseconds for
// every call and a write barrier check for every slice header written
// through a pointer, which made the method form cost several microseconds
// for a request with a few header fields.
func DecodeFlat(b []byte, r *FlatRequest, space []string) error {
	if len(b) == 0 || b[0] != Version {
		return ErrMalformed
	}
	// First pass: check the whole message and count the pairs, so that one
	// slice holds all three sections. A count is read as a span: its value
	// is bounded by the bytes left (each entry takes at least one byte, so
	// a hostile count cannot make us allocate much).
	is, ie := span(b, 1)
	ms, me := span(b, ie)
	ps, pe := span(b, me)
	pairsAt := pe
	s, e := span(b, pe)
	if e < 0 {
		return ErrMalformed
	}
	np, i := e-s, s
	for k := 0; k < 2*np && i >= 0; k++ {
		_, i = span(b, i)
	}
	nq, i := skipMulti(b, i)
	nh, i := skipMulti(b, i)
	bs, be := span(b, i)
	if be != len(b) {
		return ErrMalformed // malformed somewhere, or bytes after the body
	}
	r.ID, r.Method, r.Path = alias(b, is, ie), alias(b, ms, me), alias(b, ps, pe)
	r.Body = b[bs:be:be]
	// Second pass over the checked bytes: the pairs.
	pairs := space[:0]
	if n := 2 * (np + nq + nh); cap(pairs) < n {
		pairs = make([]string, 0, n)
	}
	i, _ = span(b, pairsAt)
	for k := 0; k < 2*np; k++ {
		s, e := span(b, i)
		pairs, i = append(pairs, alias(b, s, e)), e
	}
	r.Params = pairs[: 2*np : 2*np]
	pairs, i = appendMultiPairs(b, i, pairs)
	r.Query = pairs[2*np : 2*(np+nq) : 2*(np+nq)]
	pairs, _ = appendMultiPairs(b, i, pairs)
	r.Header = pairs[2*(np+nq) : len(pairs) : len(pairs)]
	return nil
}

// span reads the length-prefixed bytes at b[i:] and returns their bounds
// [start, end); end is -1 when they do not fit in b or the length is
// malformed (as binary.Uvarint reads it), or when i already is -1. It is
// written to be inlined: a call costs a Go wasm guest tens of nanoseconds.
func span(b []byte, i int) (start, end int) {
	var n uint64
	for shift := uint(0); uint(i) < uint(len(b)) && shift < 64; shift += 7 {
		c := b[i]
		i++
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if shift == 63 && c > 1 || n > uint64(len(b)-i) {
				break // overflows 64 bits, or longer than what is left
			}
			return i, i + int(n)
		}
	}
	return 0, -1
}

// skipMulti skips a multi-valued map at b[i:] and returns its number of
// values and the position after it (-1 when malformed).
func skipMulti(b []byte, i int) (values, next int) {
	s, e := span(b, i) // the count of keys
	if e < 0 {
		return 0, -1
	}
	n := e - s
	i = s
	for k := 0; k < n; k++ {
		_, i = span(b, i) // the key
		s, e = span(b, i) // the count of its values
		if e < 0 {
			return 0, -1
		}
		c := e - s
		i = s
		for v := 0; v < c && i >= 0; v++ {
			_, i = span(b, i)
		}
		if i < 0 {
			return 0, -1
		}
		values += c
	}
	return values, i
}

// appendMultiPairs appends the multi-valued map at b[i:], already checked,
// as key, value pairs, and returns the position after it.
func appendMultiPairs(b []byte, i int, pairs []string) ([]string, int) {
	s, e := span(b, i)
	n := e - s
	i = s
	for k := 0; k < n; k++ {
		ks, ke := span(b, i)
		s, e := span(b, ke)
		c := e - s
		i = s
		for j := 0; j < c; j++ {
			vs, ve := span(b, i)
			pairs, i = append(pairs, alias(b, ks, ke), alias(b, vs, ve)), ve
		}
	}
	return pairs, i
}

// alias returns b[s:e] as a string that shares the bytes.
func alias(b []byte, s, e int) string {
	if e <= s {
		return ""
	}
	return unsafe.String(&b[s], e-s)
}

// alias reads a string that shares the decoder's bytes.
func (d *decoder) alias() string {
	b := d.bytes()
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Lookup returns the value of the first pair with key k in pairs.
func Lookup(pairs []string, k string) (string, bool) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == k {
			return pairs[i+1], true
		}
	}
	return "", false
}

// DecodeKVsInPlace is DecodeKVs for a buffer the caller owns: keys and
// values alias b (values are capped, so appending to one copies it), which
// must not change afterwards. It allocates only the slice.
func DecodeKVsInPlace(b []byte) ([]KV, error) {
	d := decoder{b: b}
	n := d.count()
	kvs := make([]KV, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.alias()
		kvs = append(kvs, KV{Key: k, Value: d.bytes()})
	}
	return kvs, d.done()
}
