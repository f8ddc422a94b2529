package logs

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	silo "github.com/silo-run/silo"
)

// sealedPrefix starts a sealed line; a plain line is a JSON object ('{').
const sealedPrefix = "~1 "

// labelAD starts the additional data of a sealed record; the account ID
// follows, so a line copied into another account's file does not open.
const labelAD = "silo/logs/v1\x00"

func recordAD(acct silo.AccountID) []byte {
	return append(append(make([]byte, 0, len(labelAD)+len(acct)), labelAD...), acct...)
}

// sealLine returns the sealed form of one JSON record (without newline):
// "~1 <key ID> <base64 envelope>". ad is the account's recordAD.
func sealLine(c Cipher, ad, record []byte) ([]byte, error) {
	env, err := c.Seal(record, ad)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(sealedPrefix)+len(c.ID())+1+base64.RawStdEncoding.EncodedLen(len(env))+1) // +1: the newline Append adds
	out = append(out, sealedPrefix...)
	out = append(out, c.ID()...)
	out = append(out, ' ')
	return base64.RawStdEncoding.AppendEncode(out, env), nil
}

// decoder turns stored lines of one account into entries: sealed lines under
// its key with c, plain lines without. It is for one goroutine (env is
// reused from line to line).
type decoder struct {
	c    Cipher
	acct silo.AccountID
	tag  []byte // sealedPrefix + key ID + " "
	ad   []byte // recordAD(acct)
	env  []byte
}

// decoderOf returns the decoder of acct under keys; nil (and no error) if
// the account does not exist.
func decoderOf(keys Keys, acct silo.AccountID) (*decoder, error) {
	if keys == nil {
		return &decoder{acct: acct}, nil
	}
	c, err := keys(acct)
	if silo.ErrorCode(err) == silo.CodeNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("log key of %s: %w", acct, err)
	}
	return &decoder{c: c, acct: acct, tag: []byte(sealedPrefix + c.ID() + " "), ad: recordAD(acct)}, nil
}

func (d *decoder) decode(line []byte) (Entry, bool) {
	var e Entry
	if d.c == nil {
		return e, len(line) > 0 && line[0] == '{' && unmarshalEntry(line, &e) == nil
	}
	rest, ok := bytes.CutPrefix(line, d.tag)
	if !ok {
		return e, false // plain, or sealed under another key: not this account's
	}
	env, err := base64.RawStdEncoding.AppendDecode(d.env[:0], rest)
	d.env = env
	if err != nil {
		return e, false
	}
	pt, err := d.c.Open(env, d.ad)
	if err != nil {
		return e, false
	}
	return e, unmarshalEntry(pt, &e) == nil
}

// firstLine returns the start of the first line of the file at path (nil if
// it is missing or empty).
func firstLine(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 128)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

// dropForeignLocked removes acct's files whose records are not sealed under
// the key id: what a previous account with the same ID left, which opens
// under no key that still exists. A file holds records of one key only, as
// it is opened for appending under one key and removed when another comes.
func (s *Store) dropForeignLocked(acct silo.AccountID, id string) error {
	tag := []byte(sealedPrefix + id + " ")
	p := Path(s.cfg.Dir, acct)
	for _, f := range []string{p, p + ".1"} {
		b, err := firstLine(f)
		if err != nil {
			return fmt.Errorf("open log of %s: %w", acct, err)
		}
		if len(b) == 0 || bytes.HasPrefix(b, tag) {
			continue
		}
		if err := s.removeLocked(acct); err != nil {
			return fmt.Errorf("remove the previous log of %s: %w", acct, err)
		}
		return nil
	}
	return nil
}

// sealLegacy seals the plain files an older silo wrote: each plain line of
// an account that exists is sealed under its key (the file replaced by temp +
// fsync + rename); the files of an account that does not exist are removed.
func (s *Store) sealLegacy() error {
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("read log dir %s: %w", s.cfg.Dir, err)
	}
	for _, e := range ents {
		name := strings.TrimSuffix(e.Name(), ".1")
		acct := silo.AccountID(strings.TrimSuffix(name, ".log"))
		if !e.Type().IsRegular() || !strings.HasSuffix(name, ".log") || parseErr(acct) != nil {
			continue
		}
		path := filepath.Join(s.cfg.Dir, e.Name())
		b, err := firstLine(path)
		if err != nil {
			return fmt.Errorf("read log of %s: %w", acct, err)
		}
		if len(b) == 0 || b[0] != '{' {
			continue
		}
		c, err := s.cfg.Keys(acct)
		if silo.ErrorCode(err) == silo.CodeNotFound {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove log of deleted account %s: %w", acct, err)
			}
			continue
		}
		if err != nil {
			continue // a damaged account: its logs stay as they are, unread
		}
		if err := sealFile(path, c, acct); err != nil {
			return fmt.Errorf("seal log of %s: %w", acct, err)
		}
	}
	return nil
}

func sealFile(path string, c Cipher, acct silo.AccountID) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".seal-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	w := bufio.NewWriter(tmp)
	ad := recordAD(acct)
	r := bufio.NewReader(in)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // EOF; a partial last line was never a record
		}
		line = line[:len(line)-1]
		if len(line) > 0 && line[0] == '{' {
			if line, err = sealLine(c, ad, line); err != nil {
				return err
			}
		}
		w.Write(line)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Limits of clipRecord on a record over maxRecord.
const (
	maxClippedMsg   = 8 << 10
	maxClippedField = 256  // function, request ID, attribute key
	maxClippedValue = 1024 // attribute value
	// attrDropped names the attribute that counts the attributes left out.
	attrDropped = "silo.dropped_attrs"
)

// clipRecord returns e as JSON of at most maxRecord bytes. A record over it
// has its message, fields and attribute values clipped (each marked with
// "…"), then keeps the attributes that fit in key order and counts the
// others in attrDropped; if it is still too long its message is halved until
// it fits. e is modified accordingly.
func clipRecord(e *Entry) ([]byte, error) {
	line, err := marshalEntry(e)
	if err != nil || len(line) <= maxRecord {
		return line, err
	}
	e.Msg = clipString(e.Msg, maxClippedMsg)
	e.Function = clipString(e.Function, maxClippedField)
	e.RequestID = clipString(e.RequestID, maxClippedField)
	attrs := e.Attrs
	e.Attrs = nil
	base, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	if len(attrs) > 0 {
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		budget := maxRecord - len(base) - len(`,"attrs":{}`) - len(`"`+attrDropped+`":"`) - 24
		kept, dropped := map[string]string{}, 0
		for _, k := range keys {
			ck, cv := clipString(k, maxClippedField), clipString(attrs[k], maxClippedValue)
			kb, _ := json.Marshal(ck)
			vb, _ := json.Marshal(cv)
			if cost := len(kb) + len(vb) + 2; cost <= budget {
				kept[ck] = cv
				budget -= cost
			} else {
				dropped++
			}
		}
		if dropped > 0 {
			kept[attrDropped] = strconv.Itoa(dropped)
		}
		e.Attrs = kept
	}
	for {
		if line, err = json.Marshal(e); err != nil || len(line) <= maxRecord {
			return line, err
		}
		if e.Msg == "" {
			e.Attrs = map[string]string{attrDropped: strconv.Itoa(len(attrs))}
			continue
		}
		e.Msg = clipString(e.Msg, len(e.Msg)/2) // escapes made it longer than its bytes
	}
}

// clipString cuts s to at most n bytes on a rune boundary, marked with "…".
func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func parseErr(acct silo.AccountID) error {
	_, err := silo.ParseID(string(acct))
	return err
}
