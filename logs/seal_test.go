package logs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
	"github.com/silo-run/silo/logs"
)

// keyring is a test stand-in for the provider's accounts: each account that
// exists has a log key; Recreate gives it a new one, Delete removes it.
type keyring struct {
	mu   sync.Mutex
	keys map[silo.AccountID]*envelope.Sealer
}

func newKeyring(t *testing.T, ids ...silo.AccountID) *keyring {
	k := &keyring{keys: map[silo.AccountID]*envelope.Sealer{}}
	for _, id := range ids {
		k.recreate(t, id)
	}
	return k
}

func (k *keyring) recreate(t *testing.T, id silo.AccountID) {
	t.Helper()
	s, err := envelope.Derive(envelope.NewStorageKey(), id, envelope.PurposeLog)
	if err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	k.keys[id] = s
	k.mu.Unlock()
}

func (k *keyring) delete(id silo.AccountID) {
	k.mu.Lock()
	delete(k.keys, id)
	k.mu.Unlock()
}

func (k *keyring) Keys(id silo.AccountID) (logs.Cipher, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.keys[id]
	if !ok {
		return nil, silo.Errorf(silo.CodeNotFound, "account %s does not exist", id)
	}
	return s, nil
}

func openSealed(t *testing.T, dir string, k *keyring, max int64) *logs.Store {
	t.Helper()
	s, err := logs.Open(logs.Config{Dir: dir, MaxBytes: max, Keys: k.Keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func grep(t *testing.T, dir, s string) []string {
	t.Helper()
	var hits []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if b, _ := os.ReadFile(filepath.Join(dir, e.Name())); bytes.Contains(b, []byte(s)) {
			hits = append(hits, e.Name())
		}
	}
	return hits
}

// TestRecordsSealed: with Keys, no record is in plaintext on disk; readers
// with the keys see them, readers without do not.
func TestRecordsSealed(t *testing.T) {
	dir := t.TempDir()
	k := newKeyring(t, "acme")
	s := openSealed(t, dir, k, 0)
	if err := s.Append(logs.Entry{Account: "acme", Function: "ingest", Msg: "CANARY-msg", Attrs: map[string]string{"a": "CANARY-attr"}}); err != nil {
		t.Fatal(err)
	}
	if hits := grep(t, dir, "CANARY"); len(hits) != 0 {
		t.Errorf("plaintext record on disk: %v", hits)
	}
	// Twin: the store's own reader opens it, and Follow too.
	es, err := s.Read("acme", logs.Query{})
	if err != nil || len(es) != 1 || es[0].Msg != "CANARY-msg" || es[0].Attrs["a"] != "CANARY-attr" {
		t.Fatalf("Read with keys = %+v, %v; want the record", es, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var followed []logs.Entry
	s.Follow(ctx, "acme", logs.Query{}, 10*time.Millisecond, func(e logs.Entry) error {
		followed = append(followed, e)
		cancel()
		return nil
	})
	if len(followed) != 1 || followed[0].Msg != "CANARY-msg" {
		t.Errorf("Follow with keys = %+v; want the record", followed)
	}
	if es, err := logs.Read(dir, "acme", logs.Query{}); err != nil || len(es) != 0 {
		t.Errorf("Read without keys = %+v, %v; want nothing", es, err)
	}
}

// TestRecreatedAccountStartsEmpty: an account deleted and created again
// under the same ID has a new key; its readers see nothing of the previous
// account, and its first append removes the previous account's files.
// Twin: the same account (same key) keeps its history across a reopen.
func TestRecreatedAccountStartsEmpty(t *testing.T) {
	dir := t.TempDir()
	k := newKeyring(t, "globex")
	s := openSealed(t, dir, k, 300) // small: the old account fills .log and .log.1
	for i := range 10 {
		if err := s.Append(logs.Entry{Account: "globex", Msg: "previous customer's line " + strings.Repeat("x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for _, f := range []string{"globex.log", "globex.log.1"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("control: %s not written: %v", f, err)
		}
	}
	// Twin: same key, reopened: the history is there. (Larger now, so no
	// rotation below removes files on its own.)
	s = openSealed(t, dir, k, 1<<20)
	if es, _ := s.Read("globex", logs.Query{}); len(es) == 0 {
		t.Fatal("control: the account's own history is not readable after a reopen")
	}
	// The old account's file is open for appending when it is re-created.
	if err := s.Append(logs.Entry{Account: "globex", Msg: "previous customer's last line"}); err != nil {
		t.Fatal(err)
	}
	k.recreate(t, "globex")
	if es, err := s.Read("globex", logs.Query{}); err != nil || len(es) != 0 {
		t.Errorf("re-created globex reads %d entries (%v); want none of the previous account's", len(es), err)
	}
	if err := s.Append(logs.Entry{Account: "globex", Msg: "new customer's line"}); err != nil {
		t.Fatal(err)
	}
	es, err := s.Read("globex", logs.Query{})
	if err != nil || len(es) != 1 || es[0].Msg != "new customer's line" {
		t.Errorf("re-created globex reads %+v, %v; want only its own line", es, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "globex.log.1")); !os.IsNotExist(err) {
		t.Errorf("the previous account's rotated file survived the new account's first append: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "globex.log")); bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("globex.log holds %d lines, want the new account's one", bytes.Count(b, []byte("\n")))
	}
}

// TestLegacyPlainFiles: plain files of an older silo are sealed when a
// store with Keys opens them (same entries afterwards, no plaintext), and
// those of an account that no longer exists are removed.
func TestLegacyPlainFiles(t *testing.T) {
	dir := t.TempDir()
	plain, err := logs.Open(logs.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []silo.AccountID{"acme", "gone"} {
		for _, m := range []string{"PLAIN-one", "PLAIN-two"} {
			if err := plain.Append(logs.Entry{Account: id, Msg: m + "-" + string(id)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	plain.Close()
	before, _ := logs.Read(dir, "acme", logs.Query{})
	if len(before) != 2 {
		t.Fatalf("control: %d plain entries written, want 2", len(before))
	}
	k := newKeyring(t, "acme")
	s := openSealed(t, dir, k, 0)
	if hits := grep(t, dir, "PLAIN"); len(hits) != 0 {
		t.Errorf("plaintext left after open: %v", hits)
	}
	if _, err := os.Stat(filepath.Join(dir, "gone.log")); !os.IsNotExist(err) {
		t.Errorf("the log of an account that does not exist was kept: %v", err)
	}
	after, err := s.Read("acme", logs.Query{})
	if err != nil || len(after) != 2 || after[0].Msg != before[0].Msg || after[1].Msg != before[1].Msg {
		t.Errorf("after sealing: %+v, %v; want %+v", after, err, before)
	}
}

// TestRecordCapCoversAttributes: a record with huge attributes is stored
// within the cap, so it cannot push older records out of retention; the
// message and attributes that fit are kept, and the dropped ones counted.
// Twin: an ordinary record is stored whole.
func TestRecordCapCoversAttributes(t *testing.T) {
	dir := t.TempDir()
	s := open(t, 1<<20)
	s2, err := logs.Open(logs.Config{Dir: dir, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, st := range []*logs.Store{s, s2} {
		if err := st.Append(logs.Entry{Account: "acme", Msg: "history"}); err != nil {
			t.Fatal(err)
		}
	}
	huge := map[string]string{}
	for i := range 16 {
		huge[strings.Repeat("k", 1<<10)+string(rune('a'+i))] = strings.Repeat("v", 1<<20)
	}
	huge["small"] = "kept"
	if err := s.Append(logs.Entry{Account: "acme", Msg: strings.Repeat("m", 64<<10), Attrs: huge}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(logs.Entry{Account: "acme", Msg: "control\x00\x01" + strings.Repeat("\x02", 40<<10)}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(), "acme.log"))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) > 16<<10 {
			t.Errorf("line %d is %d bytes, over the 16 KiB cap", i, len(line))
		}
	}
	es, err := s.Read("acme", logs.Query{})
	if err != nil || len(es) != 3 {
		t.Fatalf("Read = %d entries, %v; want 3 (the history kept)", len(es), err)
	}
	if es[0].Msg != "history" {
		t.Errorf("oldest entry = %q, want the history line", es[0].Msg)
	}
	if es[1].Attrs["small"] != "kept" || es[1].Attrs["silo.dropped_attrs"] == "" || !strings.HasPrefix(es[1].Msg, "mmm") {
		t.Errorf("clipped record: msg %d bytes, small=%q, dropped=%q; want the message start, small kept, a count of dropped ones",
			len(es[1].Msg), es[1].Attrs["small"], es[1].Attrs["silo.dropped_attrs"])
	}
	// Twin: an ordinary record with attributes is stored as it was.
	want := logs.Entry{Account: "acme", Level: "INFO", Function: "f", Msg: "ordinary", Attrs: map[string]string{"user": "u1", "n": "2"}}
	if err := s2.Append(want); err != nil {
		t.Fatal(err)
	}
	got, _ := s2.Read("acme", logs.Query{Last: 1})
	gb, _ := json.Marshal(got)
	if len(got) != 1 || got[0].Msg != want.Msg || got[0].Attrs["user"] != "u1" || got[0].Attrs["n"] != "2" || len(got[0].Attrs) != 2 {
		t.Errorf("ordinary record read back as %s", gb)
	}
}

// TestLogDirAndFilesPrivate: a log directory open to group or others is
// closed at Open, and log files are 0600. Twin: a private one stays so.
func TestLogDirAndFilesPrivate(t *testing.T) {
	for _, mode := range []os.FileMode{0o755, 0o700} {
		dir := filepath.Join(t.TempDir(), "logs")
		if err := os.Mkdir(dir, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, mode)
		s, err := logs.Open(logs.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append(logs.Entry{Account: "acme", Msg: "x"}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "acme.log"): 0o600} {
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
				t.Errorf("from %04o: %s has mode %v, %v; want %04o", mode, filepath.Base(path), st.Mode().Perm(), err, want)
			}
		}
	}
}

// TestLateLineOfDeletedAccount: a line whose key was taken before the
// account was re-created (a deleted account's function still running)
// is dropped, and the new account's log stays. Twin: a line under the
// current key is written.
func TestLateLineOfDeletedAccount(t *testing.T) {
	dir := t.TempDir()
	k := newKeyring(t, "globex")
	old, _ := k.Keys("globex")
	k.recreate(t, "globex")
	stale := true
	keys := func(id silo.AccountID) (logs.Cipher, error) {
		if stale {
			stale = false
			return old, nil // taken before the re-create
		}
		return k.Keys(id)
	}
	s, err := logs.Open(logs.Config{Dir: dir, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stale = false
	if err := s.Append(logs.Entry{Account: "globex", Msg: "new customer's line"}); err != nil {
		t.Fatal(err)
	}
	stale = true
	if err := s.Append(logs.Entry{Account: "globex", Msg: "previous customer's late line"}); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("late line: Append = %v, want CodeNotFound", err)
	}
	es, err := s.Read("globex", logs.Query{})
	if err != nil || len(es) != 1 || es[0].Msg != "new customer's line" {
		t.Errorf("globex reads %+v, %v; want only the new customer's line", es, err)
	}
}
