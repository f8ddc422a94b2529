package main

import (
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/usage"
)

// TestLimitsCommands: limits set overrides only the limits given (the
// rest keep the earlier override), show reads them back, clear removes the
// override; bad input is one clear error and changes nothing.
func TestLimitsCommands(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	var l control.AccountLimits
	read := func(args ...string) control.AccountLimits {
		t.Helper()
		var l control.AccountLimits
		if err := json.Unmarshal([]byte(c.ok(append([]string{"-o", "json", "limits"}, args...)...)), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	l = read("set", "acme", "--rate", "50", "--storage", "1GiB")
	if l.Override.Rate != 50 || l.Override.Storage != 1<<30 || l.Effective.Rate != 50 {
		t.Fatalf("after set --rate 50 --storage 1GiB: got %+v", l)
	}
	l = read("set", "acme", "--concurrency", "3")
	if l.Override.Rate != 50 || l.Override.Concurrency != 3 {
		t.Fatalf("after set --concurrency 3: got %+v, want rate 50 kept", l)
	}
	if out := c.ok("limits", "show", "acme"); !strings.Contains(out, "concurrency") || !strings.Contains(out, "50") {
		t.Errorf("limits show:\n%s", out)
	}
	c.fails("limit rate -1 is out of range", "limits", "set", "acme", "--rate", "-1")
	c.fails("needs at least one of --rate", "limits", "set", "acme")
	c.fails(`--storage "1GB" is not a size`, "limits", "set", "acme", "--storage", "1GB")
	c.fails(`no account "nobody"`, "limits", "set", "nobody", "--rate", "5")
	if l = read("show", "acme"); l.Override.Rate != 50 || l.Override.Concurrency != 3 {
		t.Fatalf("after refused changes: got %+v, want the override unchanged", l)
	}
	if l = read("clear", "acme"); !l.Override.IsZero() {
		t.Fatalf("after clear: got %+v, want no override", l)
	}
}

// TestUsageCommand: silo usage exports every tenant, idle ones with their
// floor, as CSV and JSON; bad windows and groupings are one clear error.
func TestUsageCommand(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	rows, err := csv.NewReader(strings.NewReader(c.ok("usage", "--since", "7d", "-o", "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(usageHeader, ",") || rows[1][0] != "acme" || rows[2][0] != "globex" {
		t.Fatalf("usage csv: got %v, want the header, acme and globex", rows)
	}
	if rows[1][3] != "0" || rows[1][10] == "0.000000" {
		t.Errorf("idle acme: got %v, want 0 requests and a floor", rows[1])
	}
	var rep usage.Report
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "usage", "acme", "--since", "2d", "--by", "day")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Lines) != 3 || rep.Lines[0].Account != "acme" || rep.Lines[0].Day == "" {
		t.Errorf("usage acme --by day over 2 days: got %+v, want 3 day lines (whole UTC days)", rep.Lines)
	}
	if out := c.ok("usage"); !strings.Contains(out, "acme") { // --since defaults to 30d
		t.Errorf("usage with the default window:\n%s\nwant acme listed", out)
	}
	c.fails(`--since "yesterday" is not a window`, "usage", "--since", "yesterday")
	c.fails(`cannot be grouped by "week"`, "usage", "--since", "7d", "--by", "week")
	c.fails("--output must be text or json", "tenant", "list", "-o", "csv")
}

func TestUsageThroughAServer(t *testing.T) {
	f := startRemote(t)
	if out := f.same("usage", "--since", "3d"); !strings.Contains(out, "demo-acme") {
		t.Fatalf("usage through a server:\n%s", out)
	}
	f.same("limits", "show", "demo-acme")
}
