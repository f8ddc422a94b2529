package logs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/batch"
)

// TestHandlerWritesInBatches: lines logged through the Handler are written
// with far fewer writes than lines (must), and Read sees every one of them
// at once, in order (must: Read writes what is queued first). Twin: Append
// writes once per line.
func TestHandlerWritesInBatches(t *testing.T) {
	s := openStore(t, Config{})
	log := slog.New(s.Handler(nil))
	const n = 50
	before := s.writes
	var want []string
	for i := range n {
		msg := fmt.Sprintf("line %d", i)
		log.Info(msg, "account", "acme")
		want = append(want, msg)
	}
	if got := msgs(t, s, "acme"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	if w := s.writes - before; w > 2 {
		t.Errorf("%d lines through the Handler made %d writes, want at most 2", n, w)
	}
	before = s.writes
	for i := range 3 {
		if err := s.Append(Entry{Account: "acme", Msg: fmt.Sprint("appended ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if w := s.writes - before; w != 3 {
		t.Errorf("3 Appends made %d writes, want 3", w)
	}
}

// TestHandlerLinesPrecedeLaterBatches: in the file, a function's lines come
// before the access line the gateway writes after them (AppendAll writes
// the queue first), and Remove leaves no file behind a queued line. Twin:
// without a Remove, the queued line is written within the batch interval.
func TestHandlerLinesPrecedeLaterBatches(t *testing.T) {
	s := openStore(t, Config{})
	log := slog.New(s.Handler(nil))
	log.Info("function line", "account", "acme")
	if err := s.AppendAll([]Entry{{Account: "acme", Msg: "GET /x 200"}}); err != nil {
		t.Fatal(err)
	}
	if got := fileMsgs(t, s, "acme"); fmt.Sprint(got) != "[function line GET /x 200]" {
		t.Errorf("acme's file holds %q, want the function's line first", got)
	}

	log.Info("late line", "account", "globex")
	if err := s.Remove("globex"); err != nil {
		t.Fatal(err)
	}
	log.Info("queued line", "account", "initech")
	// The writer writes initech's line on its own (no Read, no Close).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if es, err := ReadWith(s.Dir(), nil, "initech", Query{}); err == nil && len(es) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a queued line was not written within 30 s")
		}
	}
	if fs := s.Files("globex"); len(fs) != 0 {
		t.Errorf("globex has %v after Remove, want no file", fs)
	}
}

// TestHandlerKeepsTheKeyOfWhenLogged: a line logged while an account had
// one key is sealed under that key or dropped, never under the key of an
// account re-created with the same ID before the line is written (must
// not: the new customer would read the old one's line). Twin: a line
// logged after the re-create is written for the new customer.
func TestHandlerKeepsTheKeyOfWhenLogged(t *testing.T) {
	k := keys{}
	k.add(t, "globex")
	var mu sync.Mutex
	s := openStore(t, Config{Keys: func(id silo.AccountID) (Cipher, error) {
		mu.Lock()
		defer mu.Unlock()
		return k.get(id)
	}})
	log := slog.New(s.Handler(nil))
	log.Info("previous customer's line", "account", "globex")
	mu.Lock()
	k.add(t, "globex") // deleted and re-created before the batch is written
	mu.Unlock()
	log.Info("new customer's line", "account", "globex")
	if got := msgs(t, s, "globex"); fmt.Sprint(got) != "[new customer's line]" {
		t.Errorf("globex reads %q, want only the new customer's line", got)
	}
}

// TestHandlerWriteFailureIsReported: a batch that cannot be written is
// reported through Config.Failed (must), and the other accounts' lines of
// the batch are written (must not be lost with it).
func TestHandlerWriteFailureIsReported(t *testing.T) {
	var mu sync.Mutex
	var failed []error
	s := openStore(t, Config{Failed: func(err error) {
		mu.Lock()
		failed = append(failed, err)
		mu.Unlock()
	}})
	if err := os.Mkdir(Path(s.Dir(), "acme"), 0o700); err != nil { // its log file cannot be opened
		t.Fatal(err)
	}
	log := slog.New(s.Handler(nil))
	log.InfoContext(context.Background(), "lost", "account", "acme")
	log.Info("kept", "account", "globex")
	if got := msgs(t, s, "globex"); fmt.Sprint(got) != "[kept]" {
		t.Errorf("globex reads %q, want [kept]", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), "acme") {
		t.Fatalf("Failed told %v, want one error naming acme's log", failed)
	}
}

// TestHandlerDropsNoLine: while the writer cannot write, lines past the
// queue's bound hold the logging goroutine (must not be dropped); once it
// can, every line is written (must).
func TestHandlerDropsNoLine(t *testing.T) {
	k := keys{}
	k.add(t, "acme")
	var lookups atomic.Int64 // one per line logged, while the writer is held
	s := openStore(t, Config{MaxBytes: 64 << 20, Keys: func(id silo.AccountID) (Cipher, error) {
		lookups.Add(1)
		return k.get(id)
	}})
	log := slog.New(s.Handler(nil))
	// More than the writer can hold in its hands (at most the queue's
	// bound) and the queue together.
	n := 2*batch.DefaultMaxPending + 100
	s.mu.Lock() // the writer waits for it
	held := true
	defer func() {
		if held {
			s.mu.Unlock()
		}
	}()
	done := make(chan struct{})
	go func() {
		for i := range n {
			log.Info(fmt.Sprint("line ", i), "account", "acme")
		}
		close(done)
	}()
	for deadline := time.Now().Add(30 * time.Second); lookups.Load() <= int64(batch.DefaultMaxPending); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the queue did not fill within 30 s")
		}
	}
	select {
	case <-done:
		t.Error("every line was logged while the writer could not write: the lines past the bound were dropped")
	default:
	}
	s.mu.Unlock()
	held = false
	<-done
	if got := msgs(t, s, "acme"); len(got) != n || got[n-1] != fmt.Sprint("line ", n-1) {
		t.Errorf("read %d lines, want %d", len(got), n)
	}
}

// fileMsgs returns the messages of acct's plain log file in the order the
// file holds them (readers sort by time).
func fileMsgs(t *testing.T, s *Store, acct silo.AccountID) []string {
	t.Helper()
	b, err := os.ReadFile(Path(s.Dir(), acct))
	if err != nil {
		t.Fatal(err)
	}
	return messages(appendLines(nil, b, Query{}, &decoder{acct: acct}))
}
