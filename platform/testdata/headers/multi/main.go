// Command multi answers with header fields of several values, for the
// platform's response header test.
package main

import "github.com/silo-run/silo/sdk/fn"

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		resp := fn.Text(200, "ok")
		resp.Header = map[string][]string{
			"Vary":       {"Accept", "Origin"},
			"X-Multi":    {"one", "two", "three"},
			"Set-Cookie": {"a=1", "b=2"}, // not the function's to set
		}
		return resp
	})
}

func main() {}
