package abi

import (
	"unsafe"
)

// The decoders in this file are the guest's: Go compiled to wasm pays about
// 150 ns per heap allocation and over a microsecond per map, and tens of
// nanoseconds for every pointer written while the collector marks, so a
// guest checks a request once and reads its key, value pairs in place when
// a handler asks for them, with strings that alias the encoded bytes
// instead of copies. The caller must hand them bytes that nothing writes to
// afterwards (a fresh buffer per request or result).

// FlatRequest is a decoded request without maps. Params, Query and Header
// are read in place (Pairs): in encoding order, a key with several values
// once per value, and a key sent without values absent. All strings and
// Body alias the decoded bytes.
type FlatRequest struct {
	ID, Method, Path      string
	Params, Query, Header Pairs
	Body                  []byte
}

// Pairs is a section of an encoded request, checked, whose key, value
// pairs are read in place with Next. The zero Pairs has none.
type Pairs struct {
	b     []byte // the section's entries (after its count)
	n     int    // its number of keys
	multi bool   // each key has a count of values (query, header)
}

// Len returns the number of keys in p (a key with several values counts
// once; a key without values counts too).
func (p Pairs) Len() int { return p.n }

// PairIter reads the pairs of a Pairs in order.
type PairIter struct {
	p    Pairs
	i    int    // position in p.b
	keys int    // keys not yet started
	key  string // the current key of a multi section
	vals int    // values of key still to read
}

// Iter returns an iterator over p's pairs.
func (p Pairs) Iter() PairIter { return PairIter{p: p, keys: p.n} }

// Next returns the next pair; ok is false after the last.
func (it *PairIter) Next() (k, v string, ok bool) {
	b := it.p.b
	for it.vals == 0 {
		if it.keys == 0 {
			return "", "", false
		}
		it.keys--
		ks, ke := span(b, it.i)
		if !it.p.multi {
			vs, ve := span(b, ke)
			if ve < 0 {
				it.keys = 0
				return "", "", false
			}
			it.i = ve
			return alias(b, ks, ke), alias(b, vs, ve), true
		}
		cs, ce := span(b, ke)
		if ce < 0 {
			it.keys = 0
			return "", "", false
		}
		it.key, it.vals, it.i = alias(b, ks, ke), ce-cs, cs
	}
	it.vals--
	vs, ve := span(b, it.i)
	if ve < 0 {
		it.keys, it.vals = 0, 0
		return "", "", false
	}
	it.i = ve
	return it.key, alias(b, vs, ve), true
}

// DecodeFlat checks the request b and decodes it into r without
// allocating; b must not change afterwards.
//
// It reads b by index with span, which the compiler inlines, rather than
// through the decoder's methods: a Go wasm guest pays tens of nanoseconds for
// every call and a write barrier check for every slice header written
// through a pointer, which made the method form cost several microseconds
// for a request with a few header fields.
func DecodeFlat(b []byte, r *FlatRequest) error {
	if len(b) == 0 || b[0] != Version {
		return ErrMalformed
	}
	// Check the whole message and note where each section starts. A count
	// is read as a span: its value is bounded by the bytes left (each
	// entry takes at least one byte).
	is, ie := span(b, 1)
	ms, me := span(b, ie)
	ps, pe := span(b, me)
	s, e := span(b, pe)
	if e < 0 {
		return ErrMalformed
	}
	np, i := e-s, s
	for k := 0; k < 2*np && i >= 0; k++ {
		_, i = span(b, i)
	}
	queryAt := i
	_, i = skipMulti(b, i)
	headerAt := i
	_, i = skipMulti(b, i)
	bodyAt := i
	bs, be := span(b, i)
	if be != len(b) {
		return ErrMalformed // malformed somewhere, or bytes after the body
	}
	r.ID, r.Method, r.Path = alias(b, is, ie), alias(b, ms, me), alias(b, ps, pe)
	r.Body = b[bs:be:be]
	r.Params = Pairs{b: b[s:queryAt:queryAt], n: np}
	qs, qe := span(b, queryAt) // its count, as the bounds of a span
	r.Query = Pairs{b: b[qs:headerAt:headerAt], n: qe - qs, multi: true}
	hs, he := span(b, headerAt)
	r.Header = Pairs{b: b[hs:bodyAt:bodyAt], n: he - hs, multi: true}
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

// Lookup returns the value of the first pair of p with key k.
func (p Pairs) Lookup(k string) (string, bool) {
	it := p.Iter()
	for {
		key, v, ok := it.Next()
		if !ok {
			return "", false
		}
		if key == k {
			return v, true
		}
	}
}

// AppendTo appends p's pairs to dst as key, value, key, value...
func (p Pairs) AppendTo(dst []string) []string {
	it := p.Iter()
	for {
		k, v, ok := it.Next()
		if !ok {
			return dst
		}
		dst = append(dst, k, v)
	}
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
