// Command constgo answers every request with the same small JSON object,
// for platform's BenchmarkEntry (the bench harness's entry scenario runs the
// same handler).
package main

import "github.com/silo-run/silo/sdk/fn"

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		return fn.JSON(200, map[string]bool{"ok": true})
	})
}

func main() {}
