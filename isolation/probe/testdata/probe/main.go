// Command probe is the live probe suite's guest function (see package
// isolation/probe). It runs a batch of host calls named in the request body
// and reports, for each, the status the host gave and what came back, so the
// suite outside can decide whether anything crossed an account boundary. It
// also keeps residue markers in a global and on the heap so the suite can
// check that no other account's instance ever sees them.
//
// GET returns {"account": <config probe-whoami>}. POST takes a JSON array of
// ops and returns a JSON array of results, one per op, in order.
package main

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/silo-run/silo/sdk/fn"
)

// op is one host call to make.
type op struct {
	Op     string `json:"op"`
	Name   string `json:"name,omitempty"`
	Key    string `json:"key,omitempty"`
	Value  []byte `json:"value,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// result is what one op returned. Values holds every value or key that came
// back (a get's value, a scan's keys and values, a list's keys).
type result struct {
	Status string   `json:"status"` // "ok" or the host's status, e.g. "denied"
	Values [][]byte `json:"values,omitempty"`
	// Residue findings (op residue.get).
	Global   string `json:"global,omitempty"`
	HeapHas  bool   `json:"heap_has,omitempty"`
	FreshHas bool   `json:"fresh_has,omitempty"`
}

// The residue: a marker in a global and, shifted, all over a heap buffer the
// global keeps alive.
var (
	marker string
	heap   []byte
)

// shift returns m with every byte incremented, so the needle a probe
// searches for is never the marker bytes it received in its own request.
func shift(m string) []byte {
	b := make([]byte, len(m))
	for i := 0; i < len(m); i++ {
		b[i] = m[i] + 1
	}
	return b
}

func contains(hay, needle []byte) bool {
	if len(needle) == 0 {
		return false
	}
outer:
	for i := 0; i+len(needle) <= len(hay); i++ {
		for j := range needle {
			if hay[i+j] != needle[j] {
				continue outer
			}
		}
		return true
	}
	return false
}

func status(err error) string {
	var e *fn.Error
	if errors.As(err, &e) {
		return e.Status.String()
	}
	return "error"
}

func kvValues(kvs []fn.KV) [][]byte {
	out := make([][]byte, 0, 2*len(kvs))
	for _, kv := range kvs {
		out = append(out, []byte(kv.Key), kv.Value)
	}
	return out
}

func run(o op) result {
	var (
		vals [][]byte
		err  error
	)
	one := func(v []byte, e error) {
		if e == nil {
			vals = [][]byte{v}
		}
		err = e
	}
	lim := o.Limit
	if lim <= 0 {
		lim = 1000
	}
	switch o.Op {
	case "kv.get":
		one(fn.Table(o.Name).Get(o.Key))
	case "kv.put":
		err = fn.Table(o.Name).Put(o.Key, o.Value)
	case "kv.delete":
		err = fn.Table(o.Name).Delete(o.Key)
	case "kv.add": // answers the value before the add
		var n int64
		if n, err = fn.Table(o.Name).Add(o.Key, 1); err == nil {
			vals = [][]byte{strconv.AppendInt(nil, n-1, 10)}
		}
	case "kv.scan":
		var kvs []fn.KV
		kvs, err = fn.Table(o.Name).Scan(o.Prefix, "", lim)
		vals = kvValues(kvs)
	case "blob.get":
		one(fn.Bucket(o.Name).Get(o.Key))
	case "blob.put":
		err = fn.Bucket(o.Name).Put(o.Key, o.Value)
	case "blob.delete":
		err = fn.Bucket(o.Name).Delete(o.Key)
	case "blob.list":
		var keys []string
		keys, err = fn.Bucket(o.Name).List(o.Prefix, lim)
		for _, k := range keys {
			vals = append(vals, []byte(k))
		}
	case "blob.dump": // every blob of the bucket, key then value
		var keys []string
		keys, err = fn.Bucket(o.Name).List(o.Prefix, lim)
		for _, k := range keys {
			v, gerr := fn.Bucket(o.Name).Get(k)
			if gerr != nil {
				err = gerr
				break
			}
			vals = append(vals, []byte(k), v)
		}
	case "config":
		var v string
		v, err = fn.ConfigValue(o.Name)
		if err == nil {
			vals = [][]byte{[]byte(v)}
		}
	case "secret":
		one(fn.Secret(o.Name))
	case "export.get":
		one(fn.Export(o.Name).Get(o.Key))
	case "export.scan":
		var kvs []fn.KV
		kvs, err = fn.Export(o.Name).Scan(o.Prefix, "", lim)
		vals = kvValues(kvs)
	case "log": // a log line of the account, at warning level so any level setting keeps it
		fn.Log.Warn(o.Key)
	case "residue.set":
		marker = o.Key
		needle := shift(o.Key)
		heap = make([]byte, 0, 1<<20)
		for len(heap)+len(needle) <= cap(heap) {
			heap = append(heap, needle...)
		}
		return result{Status: "ok"}
	case "residue.get":
		needle := shift(o.Key)
		fresh := make([]byte, 8<<20) // memory the Go runtime takes as zeroed
		return result{Status: "ok", Global: marker, HeapHas: contains(heap, needle), FreshHas: contains(fresh, needle)}
	default:
		return result{Status: "unknown op"}
	}
	if err != nil {
		return result{Status: status(err)}
	}
	return result{Status: "ok", Values: vals}
}

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		who, _ := fn.ConfigValue("probe-whoami")
		if r.Method != "POST" {
			return fn.JSON(200, map[string]string{"account": who})
		}
		var ops []op
		if err := json.Unmarshal(r.Body, &ops); err != nil {
			return fn.Text(400, "body is not a JSON array of ops")
		}
		out := make([]result, len(ops))
		for i, o := range ops {
			out[i] = run(o)
		}
		return fn.JSON(200, map[string]any{"account": who, "results": out})
	})
}

func main() {}
