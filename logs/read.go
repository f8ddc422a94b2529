package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"

	silo "github.com/silo-run/silo"
)

// Query selects entries. Zero fields match everything.
type Query struct {
	Function  string
	RequestID string
	Since     time.Time // entries at or after (zero: from the oldest retained)
	Until     time.Time // entries before (zero: up to the newest)
	// Last keeps only the latest Last matching entries by time (0: all
	// retained).
	Last int
}

func (q Query) match(e Entry) bool {
	return (q.Function == "" || e.Function == q.Function) &&
		(q.RequestID == "" || e.RequestID == q.RequestID) &&
		(q.Since.IsZero() || !e.Time.Before(q.Since)) &&
		(q.Until.IsZero() || e.Time.Before(q.Until))
}

// Match reports whether e is one of the entries q selects, apart from
// Last (which depends on the other entries).
func (q Query) Match(e Entry) bool { return q.match(e) }

// Read returns the retained plain (unsealed) entries of an account that
// match q, oldest first: ReadWith without Keys.
func Read(dir string, acct silo.AccountID, q Query) ([]Entry, error) {
	return ReadWith(dir, nil, acct, q)
}

// ReadWith returns the retained entries of an account that match q, oldest
// first (byTime). It reads the files directly, so it works while another
// process writes them. With keys, only records sealed under the account's current
// key are returned (plain lines too without keys); an account without logs,
// or that does not exist, has none (no error).
func ReadWith(dir string, keys Keys, acct silo.AccountID, q Query) ([]Entry, error) {
	if _, err := silo.ParseID(string(acct)); err != nil {
		return nil, err
	}
	dec, err := decoderOf(keys, acct)
	if err != nil || dec == nil {
		return nil, err
	}
	var out []Entry
	p := Path(dir, acct)
	for _, f := range []string{p + ".1", p} {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read log of %s: %w", acct, err)
		}
		out = appendLines(out, b, q, dec)
	}
	return last(byTime(out), q.Last), nil
}

// byTime sorts es by time, keeping the file's order among equal times.
// The file holds the lines in the order they were written: concurrent
// requests' lines interleave by batch, and an access line, stamped when
// its request arrived, follows the lines its function logged.
func byTime(es []Entry) []Entry {
	slices.SortStableFunc(es, func(a, b Entry) int { return a.Time.Compare(b.Time) })
	return es
}

// last returns the last n entries of es (all of them if n is 0).
func last(es []Entry, n int) []Entry {
	if n > 0 && len(es) > n {
		return es[len(es)-n:]
	}
	return es
}

// Read is ReadWith on the store's directory and Keys, after the
// Handler's queued lines are written.
func (s *Store) Read(acct silo.AccountID, q Query) ([]Entry, error) {
	s.queue.Flush()
	return ReadWith(s.cfg.Dir, s.cfg.Keys, acct, q)
}

// Follow is FollowWith on the store's directory and Keys, after the
// Handler's queued lines are written (later ones come with the next batch).
func (s *Store) Follow(ctx context.Context, acct silo.AccountID, q Query, poll time.Duration, fn func(Entry) error) error {
	s.queue.Flush()
	return FollowWith(ctx, s.cfg.Dir, s.cfg.Keys, acct, q, poll, fn)
}

func appendLines(out []Entry, b []byte, q Query, dec *decoder) []Entry {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break // a partial last line: not written completely yet
		}
		line := b[:i]
		b = b[i+1:]
		if e, ok := dec.decode(line); ok && q.match(e) {
			out = append(out, e)
		}
	}
	return out
}

// Follow is FollowWith without Keys: plain records only.
func Follow(ctx context.Context, dir string, acct silo.AccountID, q Query, poll time.Duration, fn func(Entry) error) error {
	return FollowWith(ctx, dir, nil, acct, q, poll, fn)
}

// FollowWith calls fn for every retained entry of acct matching q, oldest
// first, then for the new ones as they are written, until ctx is done (then
// it returns nil) or fn returns an error. It polls the file every poll
// (250ms if zero) and follows rotation; the lines one poll finds are given
// in time order, after those of the polls before. keys selects records as in ReadWith, with the account's
// key as it was when FollowWith began.
func FollowWith(ctx context.Context, dir string, keys Keys, acct silo.AccountID, q Query, poll time.Duration, fn func(Entry) error) error {
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	if _, err := silo.ParseID(string(acct)); err != nil {
		return err
	}
	dec, err := decoderOf(keys, acct)
	if err != nil {
		return err
	}
	if dec == nil { // the account does not exist: nothing to follow
		<-ctx.Done()
		return nil
	}
	p := Path(dir, acct)
	var pending []Entry // read, not yet given to fn
	collect := func(e Entry) error { pending = append(pending, e); return nil }
	if b, err := os.ReadFile(p + ".1"); err == nil {
		pending = appendLines(pending, b, q, dec)
	}
	var ino os.FileInfo
	if st, err := os.Stat(p); err == nil {
		ino = st
	}
	offset, err := readFrom(p, 0, q, dec, collect)
	if err != nil {
		return fmt.Errorf("follow log of %s: %w", acct, err)
	}
	pending = last(byTime(pending), q.Last)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		// What one poll read, in time order.
		for _, e := range byTime(pending) {
			if err := fn(e); err != nil {
				return err
			}
		}
		pending = pending[:0]
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			offset, ino = 0, nil
		case err != nil:
			return fmt.Errorf("follow log of %s: %w", acct, err)
		default:
			if ino != nil && !os.SameFile(ino, st) || st.Size() < offset {
				// Rotated: finish the old file (now .1) first, then start over.
				if prev, err := os.Stat(p + ".1"); err == nil && ino != nil && os.SameFile(ino, prev) {
					if _, err := readFrom(p+".1", offset, q, dec, collect); err != nil {
						return fmt.Errorf("follow log of %s: %w", acct, err)
					}
				}
				offset = 0
			}
			ino = st
			if st.Size() > offset {
				n, err := readFrom(p, offset, q, dec, collect)
				offset += n
				if err != nil {
					return fmt.Errorf("follow log of %s: %w", acct, err)
				}
			}
		}
	}
}

// readFrom calls fn for each complete line of file p after offset and
// returns how many bytes it consumed.
func readFrom(p string, offset int64, q Query, dec *decoder, fn func(Entry) error) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	r := bufio.NewReader(f)
	var n int64
	for {
		line, err := r.ReadBytes('\n')
		if err != nil { // EOF: an incomplete line stays for the next poll
			return n, nil
		}
		n += int64(len(line))
		if e, ok := dec.decode(bytes.TrimSuffix(line, []byte("\n"))); ok && q.match(e) {
			if err := fn(e); err != nil {
				return n, err
			}
		}
	}
}
