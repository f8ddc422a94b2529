package logs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
)

func openStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func msgs(t *testing.T, s *Store, acct silo.AccountID) []string {
	t.Helper()
	es, err := s.Read(acct, Query{})
	if err != nil {
		t.Fatal(err)
	}
	return messages(es)
}

// TestAppendAllWritesEveryLineInOrder: a batch interleaving accounts
// reaches each account's log complete and in order, with one write per
// account; an entry without a valid account is refused and the others are
// still written. Twin: Append writes once per line.
func TestAppendAllWritesEveryLineInOrder(t *testing.T) {
	accts := []silo.AccountID{"acme", "globex", "initech"}
	var es []Entry
	want := map[silo.AccountID][]string{}
	for i := range 30 {
		a := accts[i%len(accts)]
		msg := fmt.Sprintf("%s line %d", a, i)
		es = append(es, Entry{Account: a, Msg: msg})
		want[a] = append(want[a], msg)
		if i == 10 {
			es = append(es, Entry{Account: "Not An ID!", Msg: "refused"})
		}
	}

	batch := openStore(t, Config{})
	if err := batch.AppendAll(es); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("AppendAll with a bad account = %v, want CodeInvalid", err)
	}
	for _, a := range accts {
		if got := msgs(t, batch, a); fmt.Sprint(got) != fmt.Sprint(want[a]) {
			t.Errorf("%s: got %q, want %q", a, got, want[a])
		}
	}
	if batch.writes != len(accts) {
		t.Errorf("AppendAll made %d writes for %d accounts, want one per account", batch.writes, len(accts))
	}

	single := openStore(t, Config{})
	for _, e := range es {
		single.Append(e)
	}
	if single.writes != len(es)-1 {
		t.Errorf("Append made %d writes for %d lines, want one per line", single.writes, len(es)-1)
	}
	for _, a := range accts {
		if got := msgs(t, single, a); fmt.Sprint(got) != fmt.Sprint(want[a]) {
			t.Errorf("Append, %s: got %q, want %q", a, got, want[a])
		}
	}
}

// TestAppendAllRotatesAsAppend: a batch larger than MaxBytes rotates at the
// same lines as Append one line at a time would, leaving the same bytes in
// the current and the rotated file, with one write per rotated segment.
func TestAppendAllRotatesAsAppend(t *testing.T) {
	const max = 1000
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var es []Entry
	for i := range 100 {
		es = append(es, Entry{Account: "acme", Time: t0.Add(time.Duration(i) * time.Millisecond), Msg: fmt.Sprintf("line %d %s", i, strings.Repeat("x", i%37))})
	}
	single := openStore(t, Config{MaxBytes: max})
	// Some lines before the batch, so that the batch starts mid-file.
	for _, e := range es[:7] {
		if err := single.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	batch := openStore(t, Config{MaxBytes: max})
	for _, e := range es[:7] {
		if err := batch.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range es[7:] {
		if err := single.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	before := batch.writes
	if err := batch.AppendAll(es[7:]); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"acme.log", "acme.log.1"} {
		got, err := os.ReadFile(filepath.Join(batch.Dir(), name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(single.Dir(), name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s after AppendAll differs from Append's:\n got %q\nwant %q", name, got, want)
		}
		if len(got) > max {
			t.Errorf("%s holds %d bytes, over MaxBytes %d", name, len(got), max)
		}
	}
	// One write per segment: count the rotations Append's rule makes.
	size, segments := int64(0), 1
	for _, e := range es[:7] {
		line, _, _ := batch.record(&e, nil, nil)
		size += int64(len(line))
	}
	for _, e := range es[7:] {
		line, _, _ := batch.record(&e, nil, nil)
		if size > 0 && size+int64(len(line)) > max {
			size, segments = 0, segments+1
		}
		size += int64(len(line))
	}
	if segments < 3 {
		t.Fatalf("%d segments: the test does not rotate enough", segments)
	}
	if n := batch.writes - before; n != segments {
		t.Errorf("AppendAll of %d lines over %d-byte files made %d writes, want %d (one per segment)", len(es)-7, max, n, segments)
	}
}

type keys map[silo.AccountID]Cipher

func (k keys) add(t testing.TB, id silo.AccountID) Cipher {
	t.Helper()
	c, err := envelope.Derive(envelope.NewStorageKey(), id, envelope.PurposeLog)
	if err != nil {
		t.Fatal(err)
	}
	k[id] = c
	return c
}

func (k keys) get(id silo.AccountID) (Cipher, error) {
	if c, ok := k[id]; ok {
		return c, nil
	}
	return nil, silo.Errorf(silo.CodeNotFound, "account %s does not exist", id)
}

// TestAppendAllDropsDeletedAccounts: the lines of an account that no longer
// exists are dropped without error and leave no file; the lines of an
// account re-created while they were sealed (another key) are dropped and
// leave the new account's log as it was. Twin: the other account's lines
// in the same batch are written.
func TestAppendAllDropsDeletedAccounts(t *testing.T) {
	k := keys{}
	k.add(t, "acme")
	k.add(t, "globex")
	k.add(t, "initech")
	old := k["initech"]
	stale := false
	s := openStore(t, Config{Keys: func(id silo.AccountID) (Cipher, error) {
		if id == "initech" && stale {
			stale = false
			return old, nil // taken before the re-create
		}
		return k.get(id)
	}})
	if err := s.Append(Entry{Account: "globex", Msg: "before"}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(Path(s.Dir(), "globex"))
	delete(k, "globex")
	k.add(t, "initech")
	if err := s.Append(Entry{Account: "initech", Msg: "new customer's line"}); err != nil {
		t.Fatal(err)
	}
	stale = true
	err := s.AppendAll([]Entry{
		{Account: "acme", Msg: "a1"},
		{Account: "globex", Msg: "deleted account's line"},
		{Account: "initech", Msg: "previous customer's late line"},
		{Account: "acme", Msg: "a2"},
	})
	if err != nil {
		t.Fatalf("AppendAll = %v, want nil (deleted accounts' lines dropped)", err)
	}
	if got := msgs(t, s, "acme"); fmt.Sprint(got) != "[a1 a2]" {
		t.Errorf("acme: got %q, want [a1 a2]", got)
	}
	if got := msgs(t, s, "initech"); fmt.Sprint(got) != "[new customer's line]" {
		t.Errorf("initech: got %q, want only the new customer's line", got)
	}
	if b, err := os.ReadFile(Path(s.Dir(), "globex")); err != nil || len(before) == 0 || !bytes.Equal(b, before) {
		t.Errorf("globex's file changed after its account was deleted (%v)", err)
	}
}
