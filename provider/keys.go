package provider

import (
	"fmt"
	"strings"
	"unicode/utf8"

	silo "github.com/silo-run/silo"
)

// MaxKeySize is the longest table or blob key a provider accepts, in bytes
// (the largest DynamoDB sort key and S3 object key).
const MaxKeySize = 1024

// TempPrefix is reserved: no part of a blob key may start with it, so a
// provider may name its temporary files with it.
const TempPrefix = ".silo-tmp-"

// maxKeyPart is the longest part of a blob key between slashes.
const maxKeyPart = 255

// ValidateBlobKey reports whether key may name a blob, on every provider, so
// that a key valid on one is valid on all. A key is 1-MaxKeySize bytes of
// UTF-8 without control characters or backslashes; it is split at '/' into
// parts, each of which must be non-empty, at most 255 bytes, not "." or
// "..", must not end in '.' or ' ', and must not start with TempPrefix. So a
// key is always a relative path that stays inside its bucket.
//
// # Errors
//
// CodeInvalid saying what is wrong with the key.
func ValidateBlobKey(key string) error {
	bad := func(why string) error {
		return silo.Errorf(silo.CodeInvalid, "invalid blob key %q: %s", clip(key), why)
	}
	switch {
	case key == "":
		return bad("it is empty")
	case len(key) > MaxKeySize:
		return bad(fmt.Sprintf("it is longer than %d bytes", MaxKeySize))
	case !utf8.ValidString(key):
		return bad("it is not valid UTF-8")
	case strings.IndexFunc(key, isControl) >= 0:
		return bad("it contains a control character such as NUL")
	case strings.ContainsRune(key, '\\'):
		return bad("it contains a backslash; separate parts with '/'")
	case key[0] == '/':
		return bad("it is an absolute path; keys are relative to their bucket")
	}
	for _, c := range strings.Split(key, "/") {
		switch {
		case c == "":
			return bad("it has an empty part ('//' or a trailing '/')")
		case c == "." || c == "..":
			return bad("it has a '.' or '..' part")
		case len(c) > maxKeyPart:
			return bad(fmt.Sprintf("a part is longer than %d bytes", maxKeyPart))
		case strings.HasSuffix(c, ".") || strings.HasSuffix(c, " "):
			return bad("a part ends with '.' or ' '")
		case strings.HasPrefix(c, TempPrefix):
			return bad("a part starts with the reserved " + TempPrefix)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
