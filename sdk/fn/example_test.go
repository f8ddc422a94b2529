//go:build !wasip1

package fn_test

import (
	"errors"
	"fmt"

	"github.com/silo-run/silo/sdk/fn"
)

// A complete function: register the handler in init; main stays empty.
// Outside wasm, fn.Call runs it against an in-memory account.
func Example() {
	fn.LocalReset()
	fn.Handle(func(r *fn.Request) *fn.Response {
		return fn.JSON(200, map[string]string{"hello": r.Param("name")})
	})
	resp := fn.Call(nil, fn.NewRequest("GET", "/hello/ada", nil).WithParam("name", "ada"))
	fmt.Println(resp.Status, resp.Header["Content-Type"][0], string(resp.Body))
	// Output: 200 application/json {"hello":"ada"}
}

// Tables are the account's key-value tables; a missing key is ErrNotFound.
func ExampleTable() {
	fn.LocalReset()
	findings := fn.Table("findings")
	_ = findings.PutJSON("f-1", map[string]string{"severity": "high"})
	_ = findings.Put("f-2", []byte(`{"severity":"low"}`))

	var f struct{ Severity string }
	_ = findings.GetJSON("f-1", &f)
	fmt.Println(f.Severity)

	kvs, _ := findings.Scan("f-", "", 10)
	fmt.Println(len(kvs), kvs[1].Key)

	_, err := findings.Get("f-9")
	fmt.Println(errors.Is(err, fn.ErrNotFound))
	// Output:
	// high
	// 2 f-2
	// true
}

// Buckets hold blobs by key.
// Add counts: one atomic step, so concurrent invocations each count once.
// The value is base-10 text; a missing key counts as 0.
func ExampleTableRef_Add() {
	fn.LocalReset()
	visits := fn.Table("visits")
	n, _ := visits.Add("count", 1)
	n, _ = visits.Add("count", 2)
	v, _ := visits.Get("count")
	fmt.Println(n, string(v))

	_ = visits.Put("name", []byte("ada"))
	_, err := visits.Add("name", 1)
	fmt.Println(errors.Is(err, fn.ErrInvalid))
	// Output:
	// 3 3
	// true
}

func ExampleBucket() {
	fn.LocalReset()
	raw := fn.Bucket("raw")
	_ = raw.Put("2024/scan-1.json", []byte("{}"))
	_ = raw.Put("2024/scan-2.json", []byte("{}"))
	keys, _ := raw.List("2024/", 100)
	fmt.Println(keys)
	// Output: [2024/scan-1.json 2024/scan-2.json]
}

// Config values and secrets belong to the function's account.
func ExampleSecret() {
	fn.LocalReset()
	fn.SetLocalConfig("region", "eu")
	fn.SetLocalSecret("slack-token", []byte("xoxb-123"))
	tok, _ := fn.Secret("slack-token")
	fmt.Println(fn.Config("region"), len(tok))
	// Output: eu 8
}

// Exports are read-only data shared by the production account.
func ExampleExport() {
	fn.LocalReset()
	fn.SetLocalExport("threat-intel", "bad.example", []byte("malicious"))
	v, _ := fn.Export("threat-intel").Get("bad.example")
	fmt.Println(string(v))
	// Output: malicious
}

// Log lines carry the request ID and the account when running in silo.
func ExampleLogger() {
	fn.LocalReset()
	fn.Log.Info("scan finished", "findings", 3)
	fmt.Println(fn.LocalLogs())
	// Output: [INFO scan finished findings=3]
}

// A panic in a handler becomes a 500; the instance lives on.
func ExampleHandle_panic() {
	fn.LocalReset()
	resp := fn.Call(func(*fn.Request) *fn.Response { panic("bug") }, &fn.Request{})
	fmt.Println(resp.Status, string(resp.Body))
	// Output: 500 internal error
}
