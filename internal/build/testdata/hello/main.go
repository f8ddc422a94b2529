// Command hello is a minimal function for build tests.
package main

import "github.com/silo-run/silo/sdk/fn"

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response { return fn.Text(200, "hello") })
}

func main() {}
