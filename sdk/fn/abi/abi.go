// Package abi is the wire contract between a silo function (a wasm guest
// built with sdk/fn) and the silo runtime (package runtime): the names of the
// host module and its imports, the guest exports, the status codes and the
// compact binary encoding of requests, responses and host-call payloads.
//
// It is shared by both sides so the encoding cannot drift. It imports only the
// standard library, builds for GOOS=wasip1 and for the host, and must never
// import wazero, the runtime, or anything with I/O.
//
// # Calling convention
//
// All pointers and lengths are i32 offsets into the guest's linear memory.
// The host instantiates the guest, calls its "_initialize" export once, then
// per request calls ExportAlloc(len) to get a buffer, writes the encoded
// Request there and calls the handler export (default ExportHandle) with
// (ptr, len). The handler returns an i64: ptr<<32 | len of the encoded
// Response in guest memory.
//
// Host imports (module HostModule) take string arguments as (ptr, len) pairs.
// Those that return data take a final (out_ptr, out_cap) buffer and return an
// i64 r: r >= 0 is the result length; when r > out_cap nothing was written and
// the result is held by the host until the guest calls ImportTake with a
// buffer of r bytes. r < 0 is -Status; the host then holds a short, safe
// message (never a Go error string) that ImportTake returns.
package abi

import (
	"encoding/binary"
	"errors"
)

// Version is the ABI version. A guest exports ExportABI ("silo_abi_v1").
const Version = 1

// Names of the host module, the guest exports and the host imports.
const (
	HostModule = "silo"

	ExportABI        = "silo_abi_v1"
	ExportAlloc      = "silo_alloc"
	ExportHandle     = "handle"
	ExportInitialize = "_initialize"

	ImportTake       = "take"        // (out_ptr, out_cap) -> i64
	ImportKVGet      = "kv_get"      // (table, key, out) -> i64
	ImportKVPut      = "kv_put"      // (table, key, value) -> i64
	ImportKVDelete   = "kv_delete"   // (table, key) -> i64
	ImportKVAdd      = "kv_add"      // (table, key, delta i64, out) -> i64: the sum, 8 bytes little-endian
	ImportKVScan     = "kv_scan"     // (table, prefix, after, limit i32, out) -> i64 (EncodeKVs)
	ImportBlobGet    = "blob_get"    // (bucket, key, out) -> i64
	ImportBlobPut    = "blob_put"    // (bucket, key, value) -> i64
	ImportBlobDelete = "blob_delete" // (bucket, key) -> i64
	ImportBlobList   = "blob_list"   // (bucket, prefix, limit i32, out) -> i64 (EncodeStrings)
	ImportConfigGet  = "config_get"  // (key, out) -> i64
	ImportSecretGet  = "secret_get"  // (name, out) -> i64
	ImportExportGet  = "export_get"  // (export, key, out) -> i64
	ImportExportScan = "export_scan" // (export, prefix, after, limit i32, out) -> i64 (EncodeKVs)
	ImportLog        = "log"         // (level i32, msg, attrs (EncodePairs)) -> nothing
	ImportLogEnabled = "log_enabled" // (level i32) -> i32: 1 if a line at level would be kept
	ImportCheckpoint = "checkpoint"  // injected by the runtime at deploy; guests never import it themselves
)

// Status is the outcome of a host call as the guest sees it.
type Status int32

// The statuses. A host call returns -Status on failure.
const (
	OK           Status = 0
	NotFound     Status = 1
	Denied       Status = 2
	Invalid      Status = 3
	Internal     Status = 4
	Unavailable  Status = 5
	TooLarge     Status = 6
	NotAvailable Status = 7 // the call is not available here (e.g. outside silo)
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case NotFound:
		return "not found"
	case Denied:
		return "denied"
	case Invalid:
		return "invalid"
	case Unavailable:
		return "unavailable"
	case TooLarge:
		return "too large"
	case NotAvailable:
		return "not available"
	}
	return "internal"
}

// Log levels, equal to slog's.
const (
	LevelDebug = -4
	LevelInfo  = 0
	LevelWarn  = 4
	LevelError = 8
)

// Request is an HTTP-shaped request. Header keys are canonical (see
// CanonicalHeaderKey).
type Request struct {
	ID     string // request ID, for logs
	Method string
	Path   string
	Params map[string]string   // path parameters from the route
	Query  map[string][]string // query parameters
	Header map[string][]string
	Body   []byte
}

// Response is an HTTP-shaped response. ContentType, when set and Header has
// no Content-Type, is encoded as that header (so a guest need not allocate a
// map for it); DecodeResponse always returns it in Header.
type Response struct {
	Status      int
	ContentType string
	Header      map[string][]string
	Body        []byte
}

// ErrMalformed is returned by the decoders for truncated or corrupt input.
var ErrMalformed = errors.New("abi: malformed message")

// Encoding: every string and byte slice is a uvarint length followed by the
// bytes; maps are a uvarint count followed by their entries; a multi-valued
// map entry is key, uvarint count, values.

// AppendRequest appends the encoding of r to b.
func AppendRequest(b []byte, r *Request) []byte {
	b = append(b, Version)
	b = appendString(b, r.ID)
	b = appendString(b, r.Method)
	b = appendString(b, r.Path)
	b = binary.AppendUvarint(b, uint64(len(r.Params)))
	for k, v := range r.Params {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	b = appendMulti(b, r.Query)
	b = appendMulti(b, r.Header)
	return appendBytes(b, r.Body)
}

// RequestSize returns an upper bound on the encoded size of r.
func RequestSize(r *Request) int {
	n := 1 + 3*binary.MaxVarintLen32 + len(r.ID) + len(r.Method) + len(r.Path)
	n += binary.MaxVarintLen32
	for k, v := range r.Params {
		n += 2*binary.MaxVarintLen32 + len(k) + len(v)
	}
	n += multiSize(r.Query) + multiSize(r.Header)
	return n + binary.MaxVarintLen32 + len(r.Body)
}

// DecodeRequest decodes a request. Strings and Body alias b.
func DecodeRequest(b []byte) (*Request, error) {
	d := decoder{b: b}
	if v := d.byte(); v != Version {
		return nil, ErrMalformed
	}
	r := &Request{ID: d.string(), Method: d.string(), Path: d.string()}
	if n := d.count(); n > 0 {
		r.Params = make(map[string]string, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := d.string()
			r.Params[k] = d.string()
		}
	}
	r.Query = d.multi()
	r.Header = d.multi()
	r.Body = d.bytes()
	return r, d.done()
}

// AppendResponse appends the encoding of r to b.
func AppendResponse(b []byte, r *Response) []byte {
	b = binary.AppendUvarint(b, uint64(r.Status))
	_, set := r.Header[contentType]
	if r.ContentType == "" || set {
		b = appendMulti(b, r.Header)
	} else {
		b = binary.AppendUvarint(b, uint64(len(r.Header)+1))
		b = appendString(b, contentType)
		b = binary.AppendUvarint(b, 1)
		b = appendString(b, r.ContentType)
		b = appendEntries(b, r.Header)
	}
	return appendBytes(b, r.Body)
}

const contentType = "Content-Type"

// DecodeResponse decodes a response. Body aliases b; the caller copies it if b
// is reused.
func DecodeResponse(b []byte) (*Response, error) {
	d := decoder{b: b}
	r := &Response{Status: int(d.uvarint())}
	r.Header = d.multi()
	r.Body = d.bytes()
	return r, d.done()
}

// KV is one key-value pair of a scan result.
type KV struct {
	Key   string
	Value []byte
}

// AppendKVs appends the encoding of kvs to b.
func AppendKVs(b []byte, kvs []KV) []byte {
	b = binary.AppendUvarint(b, uint64(len(kvs)))
	for _, kv := range kvs {
		b = appendString(b, kv.Key)
		b = appendBytes(b, kv.Value)
	}
	return b
}

// DecodeKVs decodes a scan result into keys and values of its own (b may
// change afterwards).
func DecodeKVs(b []byte) ([]KV, error) {
	return DecodeKVsInPlace(append([]byte(nil), b...))
}

// AppendStrings appends the encoding of ss to b.
func AppendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// DecodeStrings decodes a list of strings.
func DecodeStrings(b []byte) ([]string, error) {
	d := decoder{b: b}
	n := d.count()
	ss := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		ss = append(ss, d.string())
	}
	return ss, d.done()
}

// AppendPairs appends key/value pairs (kv holds key, value, key, value...).
func AppendPairs(b []byte, kv ...string) []byte {
	b = binary.AppendUvarint(b, uint64(len(kv)/2))
	for i := 0; i+1 < len(kv); i += 2 {
		b = appendString(b, kv[i])
		b = appendString(b, kv[i+1])
	}
	return b
}

// DecodePairs decodes pairs into a map.
func DecodePairs(b []byte) (map[string]string, error) {
	d := decoder{b: b}
	n := d.count()
	m := make(map[string]string, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string()
		m[k] = d.string()
	}
	return m, d.done()
}

// CanonicalHeaderKey returns the canonical form of a header key, as
// net/http does for ASCII keys ("content-type" → "Content-Type").
func CanonicalHeaderKey(s string) string {
	upper := true
	ok := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			ok = false
			break
		}
		upper = c == '-'
	}
	if ok {
		return s
	}
	b := []byte(s)
	upper = true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendMulti(b []byte, m map[string][]string) []byte {
	return appendEntries(binary.AppendUvarint(b, uint64(len(m))), m)
}

func appendEntries(b []byte, m map[string][]string) []byte {
	for k, vs := range m {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	return b
}

func multiSize(m map[string][]string) int {
	n := binary.MaxVarintLen32
	for k, vs := range m {
		n += 2*binary.MaxVarintLen32 + len(k)
		for _, v := range vs {
			n += binary.MaxVarintLen32 + len(v)
		}
	}
	return n
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err = ErrMalformed; d.b = nil }

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count and bounds it by the bytes left (each entry takes at
// least one byte), so a hostile count cannot make us allocate much.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

// multi decodes a map of string lists. Its keys and values are substrings
// of one string, and its lists share one backing array, each capped at its
// own length (an append to one cannot overwrite the next): three
// allocations with the map, however many fields.
func (d *decoder) multi() map[string][]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	// First pass: where the entries end and how many values they hold.
	start, vals := d.b, 0
	for i := 0; i < n && d.err == nil; i++ {
		d.bytes()
		c := d.count()
		vals += c
		for j := 0; j < c && d.err == nil; j++ {
			d.bytes()
		}
	}
	if d.err != nil {
		return nil
	}
	s := string(start[:len(start)-len(d.b)])
	all := make([]string, vals)
	m := make(map[string][]string, n)
	e := decoder{b: start[:len(s)]}
	at := func(b []byte) string { // b's place in s
		off := len(s) - len(e.b) - len(b)
		return s[off : off+len(b)]
	}
	vi := 0
	for i := 0; i < n; i++ {
		k := at(e.bytes())
		c := e.count()
		vs := all[vi : vi+c : vi+c]
		for j := range vs {
			vs[j] = at(e.bytes())
		}
		vi += c
		m[k] = vs
	}
	return m
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrMalformed
	}
	return d.err
}
