// Command guest is the runtime's test function. The path picks a behaviour,
// well-behaved or hostile.
package main

import (
	"errors"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/silo-run/silo/sdk/fn"
)

// marker is residue: it survives between invocations on a warm instance.
var marker string

var sink [][]byte

// Read once, at init: the account's greeting (a host call made by
// _initialize) and a draw from the Go runtime's random state, which init
// seeds from the host's random source.
var (
	initGreeting = fn.Config("greeting")
	initRand     = mrand.Uint64()
)

// errorResponse answers a host call's error with the HTTP status of its
// kind, so tests see which kind the guest got.
func errorResponse(err error) *fn.Response {
	status := 500
	switch {
	case errors.Is(err, fn.ErrNotFound):
		status = 404
	case errors.Is(err, fn.ErrInvalid):
		status = 400
	case errors.Is(err, fn.ErrDenied):
		status = 403
	case errors.Is(err, fn.ErrUnavailable):
		status = 503
	}
	return fn.Text(status, err.Error())
}

func recurse(n int) int {
	if n == 0 {
		return 0
	}
	return recurse(n-1) + 1
}

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		switch r.Path {
		case "/now":
			return fn.Text(200, strconv.Itoa(time.Now().Year()))
		case "/ping":
			return fn.Text(200, "pong")
		case "/const":
			return fn.JSON(200, map[string]bool{"ok": true})
		case "/scaffold", "/scaffold-nowrite":
			// The silo init scaffold's hello (its table is items here);
			// /scaffold-nowrite is the same without its table call.
			var n int64
			var err error
			if r.Path == "/scaffold" {
				n, err = fn.Table("items").Add("count", 1)
			}
			if err != nil {
				fn.Log.Error("count visit", "error", err)
			}
			fn.Log.Info("hello", "visits", n)
			return fn.JSON(200, map[string]any{"message": fn.Config("greeting"), "visits": n})
		case "/echo":
			return fn.JSON(200, map[string]any{
				"method": r.Method, "path": r.Path, "id": r.Param("id"),
				"q": r.QueryValue("q"), "h": r.HeaderValue("x-test"), "body": string(r.Body),
			})
		case "/kv":
			t := fn.Table("items")
			if err := t.Put(r.Param("key"), r.Body); err != nil {
				return fn.Text(500, "put: "+err.Error())
			}
			v, err := t.Get(r.Param("key"))
			if err != nil {
				return fn.Text(500, "get: "+err.Error())
			}
			kvs, err := t.Scan("", "", 10)
			if err != nil {
				return fn.Text(500, "scan: "+err.Error())
			}
			return fn.JSON(200, map[string]any{"value": string(v), "n": len(kvs)})
		case "/kv/add":
			d, _ := strconv.ParseInt(r.QueryValue("d"), 10, 64)
			key := r.Param("key")
			if key == "" {
				key = r.QueryValue("key") // under a catch-all route
			}
			n, err := fn.Table("items").Add(key, d)
			if err != nil {
				return errorResponse(err)
			}
			return fn.Text(200, strconv.FormatInt(n, 10))
		case "/kv/get":
			v, err := fn.Table(r.QueryValue("table")).Get(r.Param("key"))
			if err != nil {
				return errorResponse(err)
			}
			return fn.Bytes(200, "application/octet-stream", v)
		case "/blob":
			b := fn.Bucket("raw")
			if err := b.Put("a/"+r.Param("key"), r.Body); err != nil {
				return fn.Text(500, err.Error())
			}
			v, err := b.Get("a/" + r.Param("key"))
			if err != nil {
				return fn.Text(500, err.Error())
			}
			keys, err := b.List("a/", 10)
			if err != nil {
				return fn.Text(500, err.Error())
			}
			return fn.JSON(200, map[string]any{"value": string(v), "keys": keys})
		case "/config":
			return fn.Text(200, fn.Config(r.QueryValue("k")))
		case "/config-loop", "/empty-loop":
			// n config reads, or the same loop without them: the
			// difference divided by n is one fn.Config round trip.
			n, _ := strconv.Atoi(r.QueryValue("n"))
			k, read := r.QueryValue("k"), r.Path == "/config-loop"
			var last string
			for i := 0; i < n; i++ {
				last = step(read, k)
			}
			return fn.Text(200, last)
		case "/secret":
			v, err := fn.Secret(r.QueryValue("n"))
			if err != nil {
				return fn.Text(404, err.Error())
			}
			return fn.Text(200, string(v))
		case "/export":
			v, err := fn.Export(r.QueryValue("e")).Get(r.QueryValue("k"))
			if err != nil {
				return fn.Text(404, err.Error())
			}
			return fn.Text(200, string(v))
		case "/logflood":
			for i := 0; i < 5000; i++ {
				fn.Log.Info("flood")
				println("stdout flood")
			}
			return fn.Text(200, "flooded")
		case "/log":
			fn.Log.Info("hello from guest", "n", 42)
			return fn.Text(200, "logged")
		case "/big":
			n, _ := strconv.Atoi(r.QueryValue("n"))
			return fn.Bytes(200, "application/octet-stream", make([]byte, n))
		case "/panic":
			panic("boom")
		case "/trap":
			var m map[string]int
			m["x"] = 1 // nil map write: a Go panic, recovered by the SDK
			return nil
		case "/exit":
			os.Exit(3)
		case "/loop":
			for {
			}
		case "/membomb":
			for {
				sink = append(sink, make([]byte, 1<<20))
			}
		case "/recurse":
			n, _ := strconv.Atoi(r.QueryValue("n"))
			return fn.Text(200, strconv.Itoa(recurse(n)))
		case "/sleep":
			time.Sleep(time.Hour)
			return fn.Text(200, "woke")
		case "/sleepmark":
			// Tells the host before and after a sleep (config reads of
			// "mark-start" and "mark-end"), so a test can see sleeps overlap.
			ms, _ := strconv.Atoi(r.QueryValue("ms"))
			fn.Config("mark-start")
			time.Sleep(time.Duration(ms) * time.Millisecond)
			fn.Config("mark-end")
			return fn.Text(200, "woke")
		case "/sleepms":
			ms, _ := strconv.Atoi(r.QueryValue("ms"))
			time.Sleep(time.Duration(ms) * time.Millisecond)
			return fn.Text(200, "woke")
		case "/residue/set":
			marker = r.QueryValue("m")
			return fn.Text(200, "set")
		case "/residue/get":
			return fn.Text(200, marker)
		case "/init/greeting":
			return fn.Text(200, initGreeting)
		case "/init/rand":
			return fn.Text(200, strconv.FormatUint(initRand, 10))
		}
		return fn.Text(404, "no such path")
	})
}

//go:noinline
func step(read bool, k string) string {
	if read {
		return fn.Config(k)
	}
	return k
}

//go:wasmexport nop
func nop() {}

//go:wasmexport config1
func config1() { fn.Config("greeting") }

// slow is a handler a function may name instead of handle (silo.yaml
// handler: slow): it answers 200 a second late, whatever the request, so a
// release that names it is slow.
//
//go:wasmexport slow
func slow(ptr, n uint32) uint64 {
	return fn.Serve(ptr, n, func(r *fn.Request) *fn.Response {
		time.Sleep(time.Second)
		return fn.Text(200, "slow")
	})
}

func main() {}
