// Command hello answers every request with its body echoed back, for the
// platform's limit and metering tests.
package main

import "github.com/silo-run/silo/sdk/fn"

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		return fn.Text(200, "hello "+string(r.Body))
	})
}

func main() {}
