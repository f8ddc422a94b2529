//go:build !wasip1

package fn

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/silo-run/silo/sdk/fn/abi"
)

// Outside wasm the host calls go to an in-memory account so handlers can be
// unit-tested with Call and the Local* setters. None of this exists in the
// wasm build.

var local = struct {
	sync.Mutex
	tables  map[string]map[string][]byte
	buckets map[string]map[string][]byte
	config  map[string]string
	secrets map[string][]byte
	exports map[string]map[string][]byte
	logs    []string
}{}

// Call runs the registered handler (or h, if not nil) on r as the runtime
// would: r is encoded as the host encodes requests and the response is
// decoded as the host decodes it (so its Content-Type is in Header), with
// host calls served by the in-memory account. Only outside wasm.
func Call(h Handler, r *Request) *Response {
	if h == nil {
		h = handler
	}
	req := abi.AppendRequest(nil, &abi.Request{ID: r.ID, Method: r.Method, Path: r.Path,
		Params: r.Params(), Query: r.Query(), Header: r.Header(), Body: r.Body})
	ar, err := abi.DecodeResponse(serve(h, req, nil))
	if err != nil {
		return Text(500, "malformed response: "+err.Error())
	}
	return (*Response)(ar)
}

// LocalReset empties the in-memory account. Only outside wasm.
func LocalReset() {
	local.Lock()
	defer local.Unlock()
	local.tables, local.buckets, local.exports = nil, nil, nil
	local.config, local.secrets, local.logs = nil, nil, nil
}

// SetLocalConfig sets a configuration value of the in-memory account.
func SetLocalConfig(key, value string) {
	local.Lock()
	defer local.Unlock()
	if local.config == nil {
		local.config = map[string]string{}
	}
	local.config[key] = value
}

// SetLocalSecret sets a secret of the in-memory account.
func SetLocalSecret(name string, value []byte) {
	local.Lock()
	defer local.Unlock()
	if local.secrets == nil {
		local.secrets = map[string][]byte{}
	}
	local.secrets[name] = value
}

// SetLocalExport sets key of a production export as seen by the in-memory
// account.
func SetLocalExport(export, key string, value []byte) {
	local.Lock()
	defer local.Unlock()
	put(&local.exports, export, key, value)
}

// LocalLogs returns the log lines written so far, as "LEVEL msg k=v ...".
func LocalLogs() []string {
	local.Lock()
	defer local.Unlock()
	return append([]string(nil), local.logs...)
}

func put(m *map[string]map[string][]byte, space, key string, v []byte) {
	if *m == nil {
		*m = map[string]map[string][]byte{}
	}
	if (*m)[space] == nil {
		(*m)[space] = map[string][]byte{}
	}
	(*m)[space][key] = append([]byte(nil), v...)
}

func get(m map[string]map[string][]byte, space, key string) ([]byte, error) {
	v, ok := m[space][key]
	if !ok {
		return nil, &Error{Status: abi.NotFound, Message: "not found"}
	}
	return append([]byte(nil), v...), nil
}

func scan(m map[string][]byte, prefix, after string, limit int) []KV {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	kvs := make([]KV, len(keys))
	for i, k := range keys {
		kvs[i] = KV{Key: k, Value: append([]byte(nil), m[k]...)}
	}
	return kvs
}

func kvGet(table, key string) ([]byte, error) {
	local.Lock()
	defer local.Unlock()
	return get(local.tables, table, key)
}

func kvPut(table, key string, v []byte) error {
	local.Lock()
	defer local.Unlock()
	put(&local.tables, table, key, v)
	return nil
}

func kvAdd(table, key string, delta int64) (int64, error) {
	local.Lock()
	defer local.Unlock()
	var n int64
	if v, ok := local.tables[table][key]; ok {
		var err error
		if n, err = strconv.ParseInt(string(v), 10, 64); err != nil {
			return 0, &Error{Status: abi.Invalid, Message: "the value of key " + strconv.Quote(key) + " is not a base-10 integer"}
		}
	}
	if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
		return 0, &Error{Status: abi.Invalid, Message: "the sum is outside the 64-bit integer range"}
	}
	n += delta
	put(&local.tables, table, key, strconv.AppendInt(nil, n, 10))
	return n, nil
}

func kvDelete(table, key string) error {
	local.Lock()
	defer local.Unlock()
	delete(local.tables[table], key)
	return nil
}

func kvScan(table, prefix, after string, limit int) ([]KV, error) {
	local.Lock()
	defer local.Unlock()
	return scan(local.tables[table], prefix, after, limit), nil
}

func blobGet(bucket, key string) ([]byte, error) {
	local.Lock()
	defer local.Unlock()
	return get(local.buckets, bucket, key)
}

func blobPut(bucket, key string, v []byte) error {
	local.Lock()
	defer local.Unlock()
	put(&local.buckets, bucket, key, v)
	return nil
}

func blobDelete(bucket, key string) error {
	local.Lock()
	defer local.Unlock()
	delete(local.buckets[bucket], key)
	return nil
}

func blobList(bucket, prefix string, limit int) ([]string, error) {
	local.Lock()
	defer local.Unlock()
	kvs := scan(local.buckets[bucket], prefix, "", limit)
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return keys, nil
}

func configGet(key string) (string, error) {
	local.Lock()
	defer local.Unlock()
	v, ok := local.config[key]
	if !ok {
		return "", &Error{Status: abi.NotFound, Message: "config value not found"}
	}
	return v, nil
}

func secretGet(name string) ([]byte, error) {
	local.Lock()
	defer local.Unlock()
	v, ok := local.secrets[name]
	if !ok {
		return nil, &Error{Status: abi.NotFound, Message: "secret not found"}
	}
	return append([]byte(nil), v...), nil
}

func exportGet(export, key string) ([]byte, error) {
	local.Lock()
	defer local.Unlock()
	return get(local.exports, export, key)
}

func exportScan(export, prefix, after string, limit int) ([]KV, error) {
	local.Lock()
	defer local.Unlock()
	return scan(local.exports[export], prefix, after, limit), nil
}

func logEnabled(int32) bool { return true }

func hostLog(level int32, msg string, kv []any) {
	names := map[int32]string{abi.LevelDebug: "DEBUG", abi.LevelInfo: "INFO", abi.LevelWarn: "WARN", abi.LevelError: "ERROR"}
	line := names[level] + " " + msg
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			k = "!BADKEY"
		}
		v := "!MISSING"
		if i+1 < len(kv) {
			v = toString(kv[i+1])
		}
		line += " " + k + "=" + v
	}
	local.Lock()
	defer local.Unlock()
	local.logs = append(local.logs, line)
}

// Serve exists outside wasm only so that code exporting extra handlers
// compiles on the host; it does nothing there and returns 0. Use Call in
// tests.
func Serve(ptr, n uint32, h Handler) uint64 { return 0 }
