// Command spin is a slow function: it reads the blob "note" of its
// account's bucket files (a quick data call) and then computes until it is
// stopped, past any timeout.
package main

import "github.com/silo-run/silo/sdk/fn"

var sink uint64

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		_, _ = fn.Bucket("files").Get("note")
		for i := uint64(0); ; i++ {
			sink += i * i
		}
	})
}

func main() {}
