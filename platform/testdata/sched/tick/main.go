// Command tick counts each scheduled run it gets in its table "runs" (key:
// schedule name and due time); GET /runs lists them, a key run n > 1
// times as "KEY×n".
package main

import (
	"strings"

	"github.com/silo-run/silo/sdk/fn"
)

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		runs := fn.Table("runs")
		if name := r.HeaderValue("X-Silo-Schedule"); name != "" {
			if _, err := runs.Add(name+"@"+r.HeaderValue("X-Silo-Scheduled-For"), 1); err != nil {
				return fn.Text(503, err.Error())
			}
			return fn.Text(200, "ran")
		}
		kvs, err := runs.Scan("", "", 1000)
		if err != nil {
			return fn.Text(503, err.Error())
		}
		keys := make([]string, len(kvs))
		for i, kv := range kvs {
			keys[i] = kv.Key
			if n := string(kv.Value); n != "1" {
				keys[i] += "×" + n
			}
		}
		return fn.Text(200, strings.Join(keys, "\n"))
	})
}

func main() {}
