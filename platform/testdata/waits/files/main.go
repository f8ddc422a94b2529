// Command files reads (GET /files) and writes (POST /files) the blob
// "note" of its account's bucket files, and reads its config value mode
// (GET /mode): each request makes one data call.
package main

import (
	"errors"

	"github.com/silo-run/silo/sdk/fn"
)

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		if r.Path == "/mode" {
			v, err := fn.ConfigValue("mode")
			if err != nil {
				return fn.Text(500, "read mode: "+err.Error())
			}
			return fn.Text(200, v)
		}
		b := fn.Bucket("files")
		if r.Method == "POST" {
			if err := b.Put("note", r.Body); err != nil {
				return fn.Text(500, "write note: "+err.Error())
			}
			return fn.Text(201, "stored")
		}
		v, err := b.Get("note")
		if errors.Is(err, fn.ErrNotFound) {
			return fn.Text(404, "no note")
		}
		if err != nil {
			return fn.Text(500, "read note: "+err.Error())
		}
		return fn.Text(200, string(v))
	})
}

func main() {}
