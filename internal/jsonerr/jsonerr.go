// Package jsonerr says in a user's words what is wrong with a JSON document
// that encoding/json refused, so that the decoder's own text ("json:
// unknown field", "invalid character") never reaches a user or client.
//
// It imports only the standard library.
package jsonerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// UnknownField returns the quoted name of the field a decoder that
// disallows unknown fields refused ("\"extra\""), and whether err is that
// refusal.
func UnknownField(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	f, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	return f, ok
}

// Describe says what is wrong with a document err refused, as a clause
// about it: "it is not valid JSON: it breaks at byte 12", "it has a field
// "extra" that this format does not have", "format must be a number, not a
// string". It never repeats the decoder's text.
func Describe(err error) string {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	if f, ok := UnknownField(err); ok {
		return fmt.Sprintf("it has a field %s that this format does not have", f)
	}
	switch {
	case errors.Is(err, io.EOF):
		return "it is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends before its JSON value does"
	case errors.As(err, &syntax):
		if syntax.Offset == 0 || strings.Contains(syntax.Error(), "unexpected end") {
			return "it is not valid JSON: it ends before its value does"
		}
		return fmt.Sprintf("it is not valid JSON: it breaks at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("it must be %s, not %s", Type(typ.Type.Kind().String()), Value(typ.Value))
		}
		return fmt.Sprintf("%s must be %s, not %s", typ.Field, Type(typ.Type.Kind().String()), Value(typ.Value))
	}
	return "it is not JSON of the expected shape"
}

// Type names a Go kind as the JSON type that decodes into it.
func Type(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "another JSON type"
}

// Value names a JSON value kind as json.UnmarshalTypeError reports it
// ("string", "number 3", "object") with its article.
func Value(v string) string {
	switch {
	case v == "array" || v == "object":
		return "an " + v
	case strings.HasPrefix(v, "number"):
		return "a number"
	case v == "bool":
		return "true or false"
	case v == "":
		return "this value"
	}
	return "a " + v
}
