package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/durable"
)

// TokenFile is the name of the operator token file in the data dir.
const TokenFile = "operator.token"

// LoadOrCreateToken returns the operator token stored in dir/operator.token,
// generating a random one (256 bits, hex) on first run. The file is written
// 0600 as temp + fsync + link + dir fsync (internal/durable, exclusive: a
// token another process wrote meanwhile is kept and returned).
//
// # Errors
//
// CodeUnavailable when the file cannot be read or written; CodeInvalid when
// it exists but is readable by others (fix its mode with chmod 600).
func LoadOrCreateToken(dir string) (string, error) {
	p := filepath.Join(dir, TokenFile)
	if fi, err := os.Stat(p); err == nil {
		if fi.Mode().Perm()&0o077 != 0 {
			return "", silo.Errorf(silo.CodeInvalid, "operator token file %s is readable by others (mode %v); run chmod 600 %s", p, fi.Mode().Perm(), p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", silo.Errorf(silo.CodeUnavailable, "cannot read operator token %s: %v", p, err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", silo.Errorf(silo.CodeInvalid, "operator token file %s is empty; delete it to generate a new token", p)
		}
		return tok, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", silo.Errorf(silo.CodeUnavailable, "cannot read operator token %s: %v", p, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate operator token: %w", err)
	}
	tok := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", silo.Errorf(silo.CodeUnavailable, "cannot create data dir %s: %v", dir, err)
	}
	err := durable.WriteFile(p, []byte(tok+"\n"), durable.Options{Exclusive: true}) // never replaces a token written meanwhile
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateToken(dir)
	}
	if err != nil {
		return "", silo.Errorf(silo.CodeUnavailable, "cannot write the operator token in %s: %v", dir, durable.Cause(err))
	}
	return tok, nil
}

// bearerToken returns the token of the one Authorization field, whose
// scheme must be Bearer in any letter case (RFC 7235 §2.1), followed by
// one or more spaces and the token.
func bearerToken(fields []string) (string, bool) {
	if len(fields) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(fields[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimLeft(tok, " ")
	return tok, tok != "" && !strings.ContainsAny(tok, " \t")
}
