package abi

import "unsafe"

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
// b must not change afterwards.
func DecodeFlat(b []byte, r *FlatRequest) error {
	d := decoder{b: b}
	if v := d.byte(); v != Version {
		return ErrMalformed
	}
	r.ID, r.Method, r.Path = d.alias(), d.alias(), d.alias()
	// First pass: count the pairs so that one slice holds all three sections.
	probe := d
	np := probe.count()
	for i := 0; i < 2*np && probe.err == nil; i++ {
		probe.bytes()
	}
	nq := probe.multiPairs()
	nh := probe.multiPairs()
	if probe.err != nil {
		return probe.err
	}
	pairs := make([]string, 0, 2*(np+nq+nh))
	d.count()
	for i := 0; i < 2*np; i++ {
		pairs = append(pairs, d.alias())
	}
	r.Params = pairs[: 2*np : 2*np]
	pairs = d.appendMulti(pairs)
	r.Query = pairs[2*np : 2*(np+nq) : 2*(np+nq)]
	pairs = d.appendMulti(pairs)
	r.Header = pairs[2*(np+nq):]
	r.Body = d.bytes()
	return d.done()
}

// multiPairs skips a multi-valued map and returns its number of values.
func (d *decoder) multiPairs() int {
	n, total := d.count(), 0
	for i := 0; i < n && d.err == nil; i++ {
		d.bytes()
		c := d.count()
		for j := 0; j < c && d.err == nil; j++ {
			d.bytes()
		}
		total += c
	}
	return total
}

// appendMulti appends a multi-valued map as key, value pairs.
func (d *decoder) appendMulti(pairs []string) []string {
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		k := d.alias()
		c := d.count()
		for j := 0; j < c && d.err == nil; j++ {
			pairs = append(pairs, k, d.alias())
		}
	}
	return pairs
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
