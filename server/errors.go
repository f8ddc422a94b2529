package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/jsonerr"
)

// maxJSON bounds a request's JSON body (but an environment's, which carries
// its seed files).
const maxJSON = 4 << 20

// decode reads the request's JSON body into v; see decodeLimit.
func decode(r *http.Request, v any) error {
	return decodeLimit(r, v, maxJSON)
}

// decodeLimit reads the request's JSON body, at most limit bytes, into v.
// A field v does not have is refused.
//
// # Errors
//
// CodeInvalid for a body that is empty, not JSON, holds an unknown field,
// or a value of the wrong JSON type (the message names the field and the
// type it takes, never a Go type); CodeTooLarge over limit.
func decodeLimit(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err, reflect.TypeOf(v))
	}
	return nil
}

// bodyError is the one sentence for a request body that does not decode
// into a value of type into.
func bodyError(err error, into reflect.Type) error {
	var (
		syntax             *json.SyntaxError
		typ                *json.UnmarshalTypeError
		tooBig             *http.MaxBytesError
		unknown, isUnknown = jsonerr.UnknownField(err)
	)
	switch {
	case errors.As(err, &tooBig):
		return silo.Errorf(silo.CodeTooLarge, "the request body is over %d MiB; send less", tooBig.Limit>>20)
	case errors.Is(err, io.EOF):
		return silo.Errorf(silo.CodeInvalid, "the request body is empty; send a JSON object (see docs/api.md)")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return silo.Errorf(silo.CodeInvalid, "the request body is not valid JSON: it ends before the value does")
	case errors.As(err, &syntax):
		// The decoder's own text ("invalid character 'o' in literal
		// null") speaks of its parser, not of the request.
		return silo.Errorf(silo.CodeInvalid, "the request body is not valid JSON: it breaks at byte %d; send a JSON object (see docs/api.md)", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return silo.Errorf(silo.CodeInvalid, "the request body must be %s, not %s (see docs/api.md)", jsonType(typ.Type), article(typ.Value))
		}
		what := typ.Field
		switch field := fieldType(into, typ.Field); {
		case field == nil || field == typ.Type:
		case field.Kind() == reflect.Map:
			what = "each value of " + typ.Field
		case field.Kind() == reflect.Slice, field.Kind() == reflect.Array:
			what = "each item of " + typ.Field
		}
		return silo.Errorf(silo.CodeInvalid, "%s must be %s, not %s (see docs/api.md)", what, jsonType(typ.Type), article(typ.Value))
	case isUnknown:
		return silo.Errorf(silo.CodeInvalid, "the request body has the unknown field %s; docs/api.md lists the endpoint's fields", unknown)
	}
	return silo.Errorf(silo.CodeInvalid, "the request body is not valid JSON for this endpoint: %s (see docs/api.md)", jsonerr.Describe(err))
}

// fieldType is the type of the field at path (JSON names joined by dots,
// as json.UnmarshalTypeError gives it) in t, pointers followed; nil if
// there is none. Maps, slices and arrays on the way are looked through,
// as the decoder does not name their keys or indexes.
func fieldType(t reflect.Type, path string) reflect.Type {
	for _, name := range strings.Split(path, ".") {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := jsonField(t, name)
		if !ok {
			return nil
		}
		t = f.Type
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// jsonField finds the field of struct type t that JSON calls name.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name || (tag == "" && strings.EqualFold(f.Name, name)) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonType names the JSON type a Go type decodes from, with its article.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another JSON type"
}

// article is a JSON value kind as json.UnmarshalTypeError reports it
// ("string", "number 1.5", "bool") with its article.
func article(value string) string {
	kind, _, _ := strings.Cut(value, " ")
	switch kind {
	case "bool":
		return "a boolean"
	case "object", "array":
		return "an " + kind
	case "number", "string":
		return "a " + kind
	}
	return value
}

// noRoute answers a request no route serves with the documented error
// object: 405 with the Allow header when the path is served with other
// methods, else 404. It is the mux's catch-all ("/"), so that no request
// gets the mux's plain-text answers.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	allow := s.methods(r)
	if len(allow) == 0 {
		writeErr(w, silo.Errorf(silo.CodeNotFound, "no such endpoint: %s %s; see docs/api.md", r.Method, clip(r.URL.Path)))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeErr(w, silo.Errorf(silo.CodeNotAllowed, "%s is not allowed on %s; use %s (see docs/api.md)", r.Method, clip(r.URL.Path), orList(allow)))
}

// methods returns the methods some route serves r's path with: none for
// a path no route serves. A request whose own method has a route is
// answered without probing the others.
func (s *Server) methods(r *http.Request) []string {
	if _, pattern := s.mux.Handler(r); pattern != "" && pattern != "/" {
		return []string{r.Method}
	}
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			out = append(out, m)
		}
	}
	return out
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return fmt.Sprintf("%s or %s", strings.Join(words[:len(words)-1], ", "), words[len(words)-1])
}
