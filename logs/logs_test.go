package logs_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/logs"
)

func open(t *testing.T, max int64) *logs.Store {
	t.Helper()
	s, err := logs.Open(logs.Config{Dir: t.TempDir(), MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAppendReadFilter(t *testing.T) {
	s := open(t, 0)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i, e := range []logs.Entry{
		{Account: "acme", Function: "ingest", RequestID: "r1", Msg: "stored", Time: t0},
		{Account: "acme", Function: "list", RequestID: "r2", Msg: "listed", Time: t0.Add(time.Minute)},
		{Account: "globex", Function: "ingest", RequestID: "r3", Msg: "other tenant", Time: t0},
	} {
		if err := s.Append(e); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	all, err := s.Read("acme", logs.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Msg != "stored" || all[1].Msg != "listed" {
		t.Fatalf("got %+v, want acme's two entries in order", all)
	}
	for _, e := range all {
		if e.Account != "acme" {
			t.Errorf("acme's log holds an entry of %s", e.Account)
		}
	}
	tests := []struct {
		name string
		q    logs.Query
		want []string
	}{
		{"function", logs.Query{Function: "list"}, []string{"listed"}},
		{"request", logs.Query{RequestID: "r1"}, []string{"stored"}},
		{"since", logs.Query{Since: t0.Add(30 * time.Second)}, []string{"listed"}},
		{"until", logs.Query{Until: t0.Add(30 * time.Second)}, []string{"stored"}},
		{"until excludes its time", logs.Query{Until: t0.Add(time.Minute)}, []string{"stored"}},
		{"since and until", logs.Query{Since: t0, Until: t0.Add(time.Minute + 1)}, []string{"stored", "listed"}},
		{"last", logs.Query{Last: 1}, []string{"listed"}},
		{"none", logs.Query{Function: "nope"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Read("acme", tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var msgs []string
			for _, e := range got {
				msgs = append(msgs, e.Msg)
			}
			if fmt.Sprint(msgs) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", msgs, tc.want)
			}
		})
	}
}

func TestBadAccountRefused(t *testing.T) {
	s := open(t, 0)
	if err := s.Append(logs.Entry{Account: "../etc", Msg: "x"}); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("append with a traversal account: got %v, want CodeInvalid", err)
	}
	if err := s.Append(logs.Entry{Account: "fine", Msg: "x"}); err != nil {
		t.Errorf("append with a valid account: %v", err)
	}
}

func TestRetentionIsBounded(t *testing.T) {
	const max = 4 << 10
	s := open(t, max)
	for i := range 2000 {
		if err := s.Append(logs.Entry{Account: "acme", Msg: fmt.Sprintf("line %d %s", i, strings.Repeat("x", 40))}); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for _, f := range []string{"acme.log", "acme.log.1"} {
		st, err := os.Stat(filepath.Join(s.Dir(), f))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	if total > 2*max {
		t.Errorf("acme holds %d bytes of logs, want at most %d", total, 2*max)
	}
	got, err := s.Read("acme", logs.Query{Last: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.HasPrefix(got[0].Msg, "line 1999 ") {
		t.Errorf("newest entry: got %+v, want line 1999", got)
	}
	if err := s.Remove("acme"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Read("acme", logs.Query{}); len(got) != 0 {
		t.Errorf("after Remove: got %d entries, want 0", len(got))
	}
}

func TestFollowSeesNewLinesAcrossRotation(t *testing.T) {
	s := open(t, 1<<10)
	s.Append(logs.Entry{Account: "acme", Msg: "before"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 1000)
	done := make(chan error)
	go func() {
		done <- logs.Follow(ctx, s.Dir(), "acme", logs.Query{Function: "ingest"}, 5*time.Millisecond, func(e logs.Entry) error {
			got <- e.Msg
			return nil
		})
	}()
	s.Append(logs.Entry{Account: "acme", Function: "ingest", Msg: "m0"})
	want := 0
	deadline := time.After(10 * time.Second)
	for want < 50 {
		select {
		case m := <-got:
			if m != fmt.Sprintf("m%d", want) {
				t.Fatalf("got %q, want m%d", m, want)
			}
			want++
			if want < 50 {
				// Filtered out, then the next match; rotations happen along the way.
				s.Append(logs.Entry{Account: "acme", Function: "list", Msg: strings.Repeat("y", 100)})
				s.Append(logs.Entry{Account: "acme", Function: "ingest", Msg: fmt.Sprintf("m%d", want)})
			}
		case <-deadline:
			t.Fatalf("follow stalled at m%d", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHandlerRoutesByAccountAndLevel(t *testing.T) {
	s := open(t, 0)
	log := slog.New(s.Handler(slog.LevelInfo))
	log.Info("kept", "account", "acme", "function", "ingest", "request_id", "r1", "k", "v")
	log.Debug("below the level", "account", "acme")
	log.Info("no account: dropped")
	log.With("account", "globex").WithGroup("g").Warn("grouped", "x", 1)
	got, _ := s.Read("acme", logs.Query{})
	if len(got) != 1 || got[0].Msg != "kept" || got[0].Function != "ingest" || got[0].RequestID != "r1" || got[0].Attrs["k"] != "v" || got[0].Level != "INFO" {
		t.Errorf("acme: got %+v, want the one INFO line with its fields", got)
	}
	got, _ = s.Read("globex", logs.Query{})
	if len(got) != 1 || got[0].Attrs["g.x"] != "1" || got[0].Level != "WARN" {
		t.Errorf("globex: got %+v, want the grouped WARN line", got)
	}
}
