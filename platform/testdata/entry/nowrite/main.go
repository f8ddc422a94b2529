// Command nowrite is the silo init scaffold's function with its table
// write removed (its count always 0), for platform's BenchmarkEntry: the
// request of hello without the write, as the bench harness's GET /nowrite.
package main

import "github.com/silo-run/silo/sdk/fn"

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		n, err := int64(0), error(nil)
		if err != nil {
			fn.Log.Error("count visit", "error", err)
		}
		fn.Log.Info("hello", "visits", n)
		return fn.JSON(200, map[string]any{"message": fn.Config("greeting"), "visits": n})
	})
}

func main() {}
