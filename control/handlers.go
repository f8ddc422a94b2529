package control

import (
	"errors"
	"fmt"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/wasmfile"
	"github.com/silo-run/silo/spec"
)

// The handler ABI's type: a handler takes the location of the encoded
// request (pointer, length) and returns the packed location of the
// encoded response. The runtime calls nothing else as a handler.
var (
	handlerParams  = []byte{wasmfile.I32, wasmfile.I32}
	handlerResults = []byte{wasmfile.I64}
)

// CheckHandlers returns nil if the module of every function of st (its
// artifact in arts, keyed as engine.ArtifactKey, read with module) exports
// the function's handler with the handler ABI's type. It is run wherever a
// release is made: by the release build, before anything is stored, and
// by the server on an uploaded release.
//
// # Errors
//
// CodeInvalid naming, for each function whose module does not, the
// handler and the handlers the module does export, and the fix; an error
// from module as it is.
func CheckHandlers(st *spec.Stack, arts map[string]string, module func(digest string) ([]byte, error)) error {
	var findings []string
	check := func(key string, f spec.Function) error {
		d, ok := arts[key]
		if !ok {
			return nil // the caller refuses a function without an artifact
		}
		b, err := module(d)
		if err != nil {
			return err
		}
		if why := missingHandler(key, f.Handler, b); why != "" {
			findings = append(findings, why)
		}
		return nil
	}
	for _, name := range sortedKeys(st.Functions) {
		if err := check(name, st.Functions[name]); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(st.Production.Functions) {
		if err := check(engine.ArtifactKey(true, name), st.Production.Functions[name]); err != nil {
			return err
		}
	}
	if len(findings) > 0 {
		return &silo.Error{Code: silo.CodeInvalid, Message: strings.Join(findings, "\n"), Err: errNoHandler}
	}
	return nil
}

// errNoHandler is the cause of CheckHandlers' refusal.
var errNoHandler = errors.New("a function's module does not export its handler")

// missingHandler returns why the module b of function fn does not serve
// handler, or "" if it does.
func missingHandler(fn, handler string, b []byte) string {
	sig := wasmfile.Signature(handlerParams, handlerResults)
	exports, err := wasmfile.Exports(b)
	if err != nil {
		return fmt.Sprintf("function %q: its module cannot be read (%v); build it again", fn, err)
	}
	var handlers []string
	var named *wasmfile.Func
	for i, e := range exports {
		if e.Is(handlerParams, handlerResults) {
			handlers = append(handlers, e.Name)
		}
		if e.Name == handler {
			named = &exports[i]
		}
	}
	if named != nil && named.Is(handlerParams, handlerResults) {
		return ""
	}
	if len(handlers) == 0 {
		return fmt.Sprintf("function %q exports no handler (no function of type %s, so not %q): a function is a package main that calls fn.Handle from github.com/silo-run/silo/sdk/fn (see docs/spec.md, functions)", fn, sig, handler)
	}
	what := fmt.Sprintf("does not export handler %q", handler)
	if named != nil {
		what = fmt.Sprintf("exports %q as %s, not as a handler %s", handler, named.Signature(), sig)
	}
	its := "the handler " + handlers[0]
	if len(handlers) > 1 {
		its = "the handlers " + strings.Join(handlers, ", ")
	}
	return fmt.Sprintf("function %q %s; its module exports %s: set handler: in silo.yaml to one it exports, or export %s from the code (//go:wasmexport %s on a func that returns fn.Serve's result; fn.Handle's handler is exported as %q)",
		fn, what, its, handler, handler, spec.DefaultHandler)
}
