package control

import (
	"strings"
	"testing"
)

// module returns a module whose functions, of the types given, are
// exported under the names given.
func module(exports map[string]string) []byte {
	types := map[string][]byte{"handler": {0x60, 2, 0x7f, 0x7f, 1, 0x7e}, "alloc": {0x60, 1, 0x7f, 1, 0x7f}}
	sec := func(id byte, body []byte) []byte { return append([]byte{id, byte(len(body))}, body...) }
	ts := append(append([]byte{2}, types["handler"]...), types["alloc"]...)
	var fs, ex, code []byte
	fs = append(fs, byte(len(exports)))
	ex = append(ex, byte(len(exports)))
	code = append(code, byte(len(exports)))
	i := 0
	for _, name := range sortedKeys(exports) {
		t, body := byte(0), []byte{4, 0, 0x42, 0, 0x0b}
		if exports[name] == "alloc" {
			t, body = 1, []byte{4, 0, 0x41, 0, 0x0b}
		}
		fs = append(fs, t)
		ex = append(append(append(ex, byte(len(name))), name...), 0, byte(i))
		code = append(code, body...)
		i++
	}
	b := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range [][]byte{sec(1, ts), sec(3, fs), sec(7, ex), sec(10, code)} {
		b = append(b, s...)
	}
	return b
}

func TestMissingHandler(t *testing.T) {
	tests := []struct {
		name    string
		handler string
		exports map[string]string
		want    []string // "" for none
	}{
		{"exported", "handle", map[string]string{"handle": "handler", "silo_alloc": "alloc"}, nil},
		{"another name", "run", map[string]string{"handle": "handler", "silo_alloc": "alloc"},
			[]string{`function "api" does not export handler "run"`, "exports the handler handle:", "handler: in silo.yaml", "//go:wasmexport run"}},
		{"two others", "run", map[string]string{"handle": "handler", "list": "handler"},
			[]string{"exports the handlers handle, list:"}},
		{"wrong type", "run", map[string]string{"handle": "handler", "run": "alloc"},
			[]string{`exports "run" as (i32) i32, not as a handler (i32, i32) i64`}},
		{"no handler at all", "handle", map[string]string{"silo_alloc": "alloc"},
			[]string{`function "api" exports no handler`, "a function is a package main that calls fn.Handle", "docs/spec.md"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := missingHandler("api", tc.handler, module(tc.exports))
			if len(tc.want) == 0 {
				if got != "" {
					t.Fatalf("got %q, want the handler accepted", got)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("got %q, want it to say %q", got, w)
				}
			}
			if strings.Contains(got, "silo_alloc") {
				t.Errorf("got %q, which names silo_alloc, not a handler", got)
			}
		})
	}
}
