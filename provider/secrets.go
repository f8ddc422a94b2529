package provider

import (
	"unicode/utf8"

	silo "github.com/silo-run/silo"
)

// The size of a secret value, the same on every provider so that a value
// set on a developer's local tenant also fits on AWS, where a secret is an
// SSM SecureString parameter of the standard tier (4 KB of text).
const (
	// MaxSecretSize is the largest secret value of text (SecretText), in
	// bytes. AWS counts characters; bytes are never fewer.
	MaxSecretSize = 4096
	// SecretBinaryMark begins the stored form of a value that is not text
	// where a provider stores text only (AWS): the mark, then the value's
	// base64.
	SecretBinaryMark = "base64:"
	// MaxBinarySecretSize is the largest secret value that is not text:
	// as SecretBinaryMark and its base64 it is at most MaxSecretSize.
	MaxBinarySecretSize = (MaxSecretSize - len(SecretBinaryMark)) / 4 * 3
)

// SecretText reports whether a secret value is text: non-empty UTF-8 with
// no control character but tab, newline and carriage return.
func SecretText(v []byte) bool {
	if len(v) == 0 || !utf8.Valid(v) {
		return false
	}
	for _, r := range string(v) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}

// CheckSecretSize refuses a value of secret name that is larger than every
// provider holds: text over MaxSecretSize bytes, other data over
// MaxBinarySecretSize. Providers call it in PutSecret before anything else
// is touched; the value never appears in the error.
//
// # Errors
//
// CodeInvalid naming the secret, its size, the limit and what to do.
func CheckSecretSize(name string, v []byte) error {
	const fix = "shorten it, or keep large data in a bucket and in the secret only what opens it"
	switch text := SecretText(v); {
	case text && len(v) > MaxSecretSize:
		return silo.Errorf(silo.CodeInvalid, "secret %s is %d bytes; a secret holds at most %d bytes of text on every provider (an AWS SSM SecureString parameter); %s", name, len(v), MaxSecretSize, fix)
	case !text && len(v) > MaxBinarySecretSize:
		return silo.Errorf(silo.CodeInvalid, "secret %s is %d bytes that are not text; a secret holds at most %d bytes of such data on every provider (stored as base64 in an AWS SSM SecureString parameter of %d bytes); %s", name, len(v), MaxBinarySecretSize, MaxSecretSize, fix)
	}
	return nil
}
