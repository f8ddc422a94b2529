// Command hello is the silo init scaffold's function (cmd/silo/init.go),
// for platform's BenchmarkEntry: it greets the tenant and counts the visit
// with one atomic Add to the tenant's visits table, a durable write per
// request.
package main

import "github.com/silo-run/silo/sdk/fn"

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		// Add is atomic: concurrent visits are each counted once.
		n, err := fn.Table("visits").Add("count", 1)
		if err != nil {
			fn.Log.Error("count visit", "error", err)
		}
		fn.Log.Info("hello", "visits", n)
		return fn.JSON(200, map[string]any{"message": fn.Config("greeting"), "visits": n})
	})
}

func main() {}
