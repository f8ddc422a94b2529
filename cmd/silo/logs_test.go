package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/logs"
)

// TestLogsSayWhatMatchedNothing: with no line to show, silo logs says
// whether the account has none yet or the filters given matched none.
func TestLogsSayWhatMatchedNothing(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme", "--no-key")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"logs", "acme"}, "no logs for acme yet\n"},
		{[]string{"logs", "acme", "--function", "nosuch", "--since", "10m"}, "no log line of acme matches --function nosuch --since 10m\n"},
	} {
		code, out, errOut := c.run(tc.args...)
		if code != 0 || out != "" || errOut != tc.want {
			t.Errorf("silo %s: exit %d, stdout %q, stderr %q; want 0, nothing, %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
}

// appendLogs writes lines to the account logs of c's data dir, as the
// platform does, one a minute from t0: "line 0", "line 1", ...
func appendLogs(t *testing.T, c *cli, acct silo.AccountID, t0 time.Time, from, to int) {
	t.Helper()
	ls, err := logs.Open(logs.Config{Dir: filepath.Join(c.dataDir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	for i := from; i < to; i++ {
		if err := ls.Append(logs.Entry{Time: t0.Add(time.Duration(i) * time.Minute), Level: "INFO", Account: acct, Function: "ingest", Msg: fmt.Sprintf("line %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogsTimeRange: --since and --until take absolute times and dates as
// well as how far back, and select the lines between them.
func TestLogsTimeRange(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme", "--no-key")
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	appendLogs(t, c, "acme", t0, 0, 4) // 09:00 .. 09:03
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"line 0", "line 1", "line 2", "line 3"}},
		{[]string{"--since", "2026-03-01T09:01:00Z"}, []string{"line 1", "line 2", "line 3"}},
		{[]string{"--until", "2026-03-01T09:02:00Z"}, []string{"line 0", "line 1"}},
		{[]string{"--since", "2026-03-01T10:01:00+01:00", "--until", "2026-03-01T09:03:00Z"}, []string{"line 1", "line 2"}},
		{[]string{"--since", "2026-03-01", "--until", "2026-03-02"}, []string{"line 0", "line 1", "line 2", "line 3"}},
		{[]string{"--until", "2026-03-01"}, nil},
		{[]string{"--since", "2026-03-01T09:01:00Z", "-n", "1"}, []string{"line 3"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := c.ok(append([]string{"logs", "acme"}, tc.args...)...)
			if got := msgs(out); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("silo logs acme %s: %q, want %q\n%s", strings.Join(tc.args, " "), got, tc.want, out)
			}
		})
	}
}

// msgs are the "line N" messages of silo logs' text output, in order.
func msgs(out string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "line "); i >= 0 {
			got = append(got, l[i:])
		}
	}
	return got
}

// TestLogsFollowStartsFromTheLastLines: silo logs -f shows the last 10
// retained lines, then each new one, as tail -f; -n sets how many (0: all).
// The lines are written by the serving platform (sealed under each
// account's key), and read through its API.
func TestLogsFollowStartsFromTheLastLines(t *testing.T) {
	t.Parallel()
	accts := []silo.AccountID{"a1", "a2", "a3"}
	f := startRemote(t)
	for _, id := range accts {
		f.remote("tenant", "create", string(id), "--no-key")
	}
	t0 := time.Now().UTC().Add(-time.Hour)
	line := func(id silo.AccountID, i int) {
		f.appendL(logs.Entry{Time: t0.Add(time.Duration(i) * time.Minute), Level: "INFO", Account: id, Function: "ingest", Msg: fmt.Sprintf("line %d", i)})
	}
	for _, tc := range []struct {
		acct  silo.AccountID
		flags []string
		first int // the first retained line shown
	}{
		{accts[0], nil, 5},
		{accts[1], []string{"-n", "3"}, 12},
		{accts[2], []string{"-n", "0"}, 0},
	} {
		for i := range 15 {
			line(tc.acct, i)
		}
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out syncBuffer
			done := make(chan int, 1)
			go func() {
				args := append([]string{"logs", string(tc.acct), "-f", "--data-dir", f.client, "--server", f.url, "--token", f.token}, tc.flags...)
				done <- run(ctx, args, strings.NewReader(""), &out, io.Discard)
			}()
			deadline := time.After(time.Minute) // a hang fails, never a slow machine
			wait := func(n int) {
				t.Helper()
				for len(msgs(out.String())) < n {
					select {
					case code := <-done:
						t.Fatalf("silo logs -f ended (exit %d) before %d lines:\n%s", code, n, out.String())
					case <-time.After(10 * time.Millisecond):
					case <-deadline:
						t.Fatalf("silo logs -f: %d lines, want %d:\n%s", len(msgs(out.String())), n, out.String())
					}
				}
			}
			wait(15 - tc.first)
			line(tc.acct, 100) // a new line
			wait(15 - tc.first + 1)
			cancel()
			<-done
			var want []string
			for i := tc.first; i < 15; i++ {
				want = append(want, fmt.Sprintf("line %d", i))
			}
			want = append(want, "line 100")
			if got := msgs(out.String()); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("silo logs %s -f %s: %q, want %q", tc.acct, strings.Join(tc.flags, " "), got, want)
			}
		})
	}
}
