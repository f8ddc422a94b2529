// Package fn is what silo function authors import. A function is an ordinary
// Go main package built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
//
// (silo builds it for you) that registers a handler in init:
//
//	func init() {
//		fn.Handle(func(r *fn.Request) *fn.Response {
//			v, err := fn.Table("findings").Get(r.Param("id"))
//			if errors.Is(err, fn.ErrNotFound) {
//				return fn.Text(404, "no such finding")
//			}
//			return fn.Bytes(200, "application/json", v)
//		})
//	}
//	func main() {}
//
// Every call reaches only the account the function runs in: there is no way
// to name another account. Production exports are readable through Export.
//
// Outside wasm (GOOS != wasip1) the package runs against an in-memory store
// so handlers can be unit-tested with Serve; see the examples.
//
// It imports only the standard library, sdk/fn/abi and sdk/jsonstr (a
// JSON string encoder it shares with the gateway); it must never import the
// runtime, wazero or any silo server package.
package fn

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/silo-run/silo/sdk/fn/abi"
)

// Request is an HTTP request routed to the function. Path parameters, query
// parameters and header fields are read with Param, QueryValue and
// HeaderValue (no allocation), or as maps with Params, Query and Header.
type Request struct {
	ID     string // request ID, also attached to every log line
	Method string // e.g. "GET"
	Path   string // e.g. "/findings/42"
	Body   []byte

	// Key, value pairs in the order the host sent them; a multi-valued
	// query parameter or header field repeats its key.
	params, query, header pairs
}

// NewRequest returns a request for method and path, to build requests for
// Call in tests: add parameters with WithParam, WithQuery and WithHeader.
func NewRequest(method, path string, body []byte) *Request {
	return &Request{Method: method, Path: path, Body: body}
}

// WithParam adds path parameter k and returns r.
func (r *Request) WithParam(k, v string) *Request { r.params.add(k, v); return r }

// WithQuery adds value v to query parameter k and returns r.
func (r *Request) WithQuery(k, v string) *Request { r.query.add(k, v); return r }

// WithHeader adds value v to header field k (any case) and returns r.
func (r *Request) WithHeader(k, v string) *Request {
	r.header.add(abi.CanonicalHeaderKey(k), v)
	return r
}

// Param returns the path parameter k (from the route, e.g. {id}), or "".
func (r *Request) Param(k string) string { return r.params.lookup(k, false) }

// QueryValue returns the first value of query parameter k, or "".
func (r *Request) QueryValue(k string) string { return r.query.lookup(k, false) }

// QueryValues returns every value of query parameter k.
func (r *Request) QueryValues(k string) []string { return r.query.values(k, false) }

// HeaderValue returns the first value of header field k (any case), or "".
func (r *Request) HeaderValue(k string) string { return r.header.lookup(k, true) }

// HeaderValues returns every value of header field k (any case).
func (r *Request) HeaderValues(k string) []string { return r.header.values(k, true) }

// sameFold reports whether a and b are equal up to ASCII case, which for a
// canonical key a is whether b's canonical form is a; it does not allocate
// (a Go wasm guest pays dearly for the two allocations of canonicalizing b).
func sameFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c, d := a[i], b[i]
		if c == d {
			continue
		}
		if l := c | 0x20; l != d|0x20 || l < 'a' || l > 'z' {
			return false
		}
	}
	return true
}

// Params returns the path parameters as a new map.
func (r *Request) Params() map[string]string {
	m := make(map[string]string, r.params.len())
	for it := r.params.iter(); ; {
		k, v, ok := it.next()
		if !ok {
			return m
		}
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
}

// Query returns the query parameters as a new map.
func (r *Request) Query() map[string][]string { return r.query.multi() }

// Header returns the header fields (canonical keys) as a new map.
func (r *Request) Header() map[string][]string { return r.header.multi() }

// pairs are the key, value pairs of one part of a request: those the host
// sent, read in place where they lie in the request the guest was given
// (nothing is decoded that the handler does not ask for), then those added
// with the With methods.
type pairs struct {
	sent  abi.Pairs
	added []string // key, value, key, value...
}

func (p *pairs) add(k, v string) { p.added = append(p.added, k, v) }

// len is the number of keys, at most (a hint).
func (p *pairs) len() int { return p.sent.Len() + len(p.added)/2 }

func (p *pairs) iter() pairIter { return pairIter{sent: p.sent.Iter(), added: p.added} }

// lookup returns the value of the first pair with key k (equal up to ASCII
// case if fold), or "".
func (p *pairs) lookup(k string, fold bool) string {
	for it := p.iter(); ; {
		key, v, ok := it.next()
		if !ok {
			return ""
		}
		if key == k || fold && sameFold(key, k) {
			return v
		}
	}
}

// values returns the values of every pair with key k.
func (p *pairs) values(k string, fold bool) []string {
	var vs []string
	for it := p.iter(); ; {
		key, v, ok := it.next()
		if !ok {
			return vs
		}
		if key == k || fold && sameFold(key, k) {
			vs = append(vs, v)
		}
	}
}

func (p *pairs) multi() map[string][]string {
	m := make(map[string][]string, p.len())
	for it := p.iter(); ; {
		k, v, ok := it.next()
		if !ok {
			return m
		}
		m[k] = append(m[k], v)
	}
}

// pairIter reads the pairs sent, then those added.
type pairIter struct {
	sent  abi.PairIter
	added []string
}

func (it *pairIter) next() (k, v string, ok bool) {
	if k, v, ok = it.sent.Next(); ok {
		return k, v, true
	}
	if len(it.added) < 2 {
		return "", "", false
	}
	k, v = it.added[0], it.added[1]
	it.added = it.added[2:]
	return k, v, true
}

// Response is the function's answer. ContentType is its Content-Type
// header (a Content-Type in Header wins); Header holds any others.
type Response struct {
	Status      int
	ContentType string
	Header      map[string][]string
	Body        []byte
}

// SetHeader sets header k to v and returns r.
func (r *Response) SetHeader(k, v string) *Response {
	if r.Header == nil {
		r.Header = make(map[string][]string, 1)
	}
	r.Header[abi.CanonicalHeaderKey(k)] = []string{v}
	return r
}

// Bytes returns a response with the given status, content type and body.
func Bytes(status int, contentType string, body []byte) *Response {
	return &Response{Status: status, ContentType: contentType, Body: body}
}

// Text returns a text/plain response.
func Text(status int, s string) *Response {
	return Bytes(status, "text/plain; charset=utf-8", []byte(s))
}

// JSON returns a response whose body is v encoded as JSON. If v cannot be
// encoded it returns a 500 response saying so.
func JSON(status int, v any) *Response {
	b, err := marshalJSON(v)
	if err != nil {
		return Text(500, "encode response: "+err.Error())
	}
	return Bytes(status, "application/json", b)
}

// Handler answers one request.
type Handler func(*Request) *Response

var handler Handler

// Handle registers h as the function's handler (the "handle" export). Call it
// from init. A panic in h becomes a 500 response.
func Handle(h Handler) { handler = h }

// Error is an error returned by a host call. Match it with errors.Is against
// the sentinels (ErrNotFound, ...).
type Error struct {
	Status  abi.Status
	Message string // safe, short, set by the host
}

func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return "silo: " + e.Status.String()
}

// Is matches sentinels by status.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Status == e.Status
}

// The sentinels.
var (
	ErrNotFound     = &Error{Status: abi.NotFound}
	ErrDenied       = &Error{Status: abi.Denied}
	ErrInvalid      = &Error{Status: abi.Invalid}
	ErrInternal     = &Error{Status: abi.Internal}
	ErrUnavailable  = &Error{Status: abi.Unavailable}
	ErrTooLarge     = &Error{Status: abi.TooLarge}
	ErrNotAvailable = &Error{Status: abi.NotAvailable}
)

// TableRef names a key-value table of the function's account.
type TableRef struct{ name string }

// Table returns a handle on the table name. It does no I/O.
func Table(name string) TableRef { return TableRef{name} }

// Get returns the value of key, or an error matching ErrNotFound.
func (t TableRef) Get(key string) ([]byte, error) { return kvGet(t.name, key) }

// Put sets key to v.
func (t TableRef) Put(key string, v []byte) error { return kvPut(t.name, key, v) }

// Delete removes key. Deleting a missing key is not an error.
func (t TableRef) Delete(key string) error { return kvDelete(t.name, key) }

// Add adds delta to the integer stored at key and returns the sum, in one
// step: concurrent invocations adding to one key lose no increment, as a
// Get then a Put would. The value is stored as base-10 text ("42", what Get
// returns); a missing key counts as 0. An error with status Invalid, and
// the value unchanged, when the stored value is not an integer or the sum
// would overflow an int64.
//
//	visits, err := fn.Table("visits").Add("count", 1)
func (t TableRef) Add(key string, delta int64) (int64, error) { return kvAdd(t.name, key, delta) }

// Scan returns up to limit pairs whose keys start with prefix and sort after
// after, in key order. Pass the last key as after to page.
func (t TableRef) Scan(prefix, after string, limit int) ([]KV, error) {
	return kvScan(t.name, prefix, after, limit)
}

// GetJSON reads key and decodes it into v.
func (t TableRef) GetJSON(key string, v any) error {
	b, err := t.Get(key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// PutJSON encodes v as JSON and stores it at key.
func (t TableRef) PutJSON(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.Put(key, b)
}

// KV is one key-value pair.
type KV = abi.KV

// BucketRef names a blob bucket of the function's account.
type BucketRef struct{ name string }

// Bucket returns a handle on the bucket name. It does no I/O.
func Bucket(name string) BucketRef { return BucketRef{name} }

// Get returns the blob key, or an error matching ErrNotFound.
func (b BucketRef) Get(key string) ([]byte, error) { return blobGet(b.name, key) }

// Put stores v as the blob key.
func (b BucketRef) Put(key string, v []byte) error { return blobPut(b.name, key, v) }

// Delete removes the blob key.
func (b BucketRef) Delete(key string) error { return blobDelete(b.name, key) }

// List returns up to limit keys starting with prefix, sorted.
func (b BucketRef) List(prefix string, limit int) ([]string, error) {
	return blobList(b.name, prefix, limit)
}

// Config returns the configuration value key of the function's account, or
// "" if it is not set. Use ConfigValue to tell "unset" from "empty".
func Config(key string) string {
	v, _ := ConfigValue(key)
	return v
}

// ConfigValue returns the configuration value key, or an error matching
// ErrNotFound.
func ConfigValue(key string) (string, error) { return configGet(key) }

// Secret returns the decrypted secret name of the function's account.
func Secret(name string) ([]byte, error) { return secretGet(name) }

// ExportRef names a read-only export of the production account.
type ExportRef struct{ name string }

// Export returns a handle on the production export name. It does no I/O.
func Export(name string) ExportRef { return ExportRef{name} }

// Get returns the value of key in the export.
func (e ExportRef) Get(key string) ([]byte, error) { return exportGet(e.name, key) }

// Scan is TableRef.Scan on the export.
func (e ExportRef) Scan(prefix, after string, limit int) ([]KV, error) {
	return exportScan(e.name, prefix, after, limit)
}

// Logger writes structured log lines to the platform log, tagged with the
// account, function and request ID.
type Logger struct{}

// Log is the function's logger.
var Log Logger

// Debug logs msg with attributes given as key, value, key, value...
func (Logger) Debug(msg string, kv ...any) { logf(abi.LevelDebug, msg, kv) }

// Info logs msg with attributes given as key, value, key, value...
func (Logger) Info(msg string, kv ...any) { logf(abi.LevelInfo, msg, kv) }

// Warn logs msg with attributes given as key, value, key, value...
func (Logger) Warn(msg string, kv ...any) { logf(abi.LevelWarn, msg, kv) }

// Error logs msg with attributes given as key, value, key, value...
func (Logger) Error(msg string, kv ...any) { logf(abi.LevelError, msg, kv) }

func logf(level int32, msg string, kv []any) {
	if !logEnabled(level) {
		return // the platform would drop the line: do not build it
	}
	hostLog(level, msg, kv)
}

// appendLogAttrs appends the attributes kv (key, value, key, value...) as
// abi pairs to b, formatting each value as toString does; val is scratch
// space for one value. It returns both, grown, for reuse.
func appendLogAttrs(b, val []byte, kv []any) ([]byte, []byte) {
	b = binary.AppendUvarint(b, uint64((len(kv)+1)/2))
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			k = "!BADKEY"
		}
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		val = val[:0]
		if i+1 < len(kv) {
			val = appendValue(val, kv[i+1])
		} else {
			val = append(val, "!MISSING"...)
		}
		b = binary.AppendUvarint(b, uint64(len(val)))
		b = append(b, val...)
	}
	return b, val
}

// appendValue appends toString(v) to b, without allocating for the common
// kinds of value.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return append(b, v...)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case bool:
		return strconv.AppendBool(b, v)
	case []byte:
		return append(b, v...)
	}
	return append(b, toString(v)...)
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case error:
		return v.Error()
	case []byte:
		return string(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "!BADVALUE"
	}
	return string(b)
}

// serve runs h on an encoded request and returns the encoded response. The
// request's strings and body alias req, which the caller gives to this
// request alone.
func serve(h Handler, req []byte, out []byte) []byte {
	var f abi.FlatRequest
	if err := abi.DecodeFlat(req, &f); err != nil {
		return abi.AppendResponse(out, &abi.Response{Status: 400, Body: []byte("malformed request")})
	}
	r := &Request{ID: f.ID, Method: f.Method, Path: f.Path, Body: f.Body,
		params: pairs{sent: f.Params}, query: pairs{sent: f.Query}, header: pairs{sent: f.Header}}
	resp := call(h, r)
	return abi.AppendResponse(out, (*abi.Response)(resp))
}

func call(h Handler, r *Request) (resp *Response) {
	if h == nil {
		return Text(500, "no handler registered; call fn.Handle in init")
	}
	defer func() {
		if p := recover(); p != nil {
			Log.Error("handler panicked", "panic", p)
			resp = Text(500, "internal error")
		}
	}()
	resp = h(r)
	if resp == nil {
		resp = &Response{Status: 204}
	}
	if resp.Status == 0 {
		resp.Status = 200
	}
	return resp
}

var errMalformedResult = errors.New("silo: malformed host result")
