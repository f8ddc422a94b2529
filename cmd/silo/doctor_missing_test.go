package main

import (
	"os"
	"strings"
	"testing"
)

// TestDoctorAndDriftReportADeletedStore: acme's table store is deleted;
// silo doctor and silo drift acme both name it as missing with the restore
// from a backup and exit non-zero; globex (and acme before the deletion,
// the twin) have nothing to report.
func TestDoctorAndDriftReportADeletedStore(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	if out := c.ok("doctor"); !strings.Contains(out, "no problem found in 3 account(s)") {
		t.Fatalf("doctor before: %s", out)
	}
	if err := os.Remove(c.accountFile("acme", "data.db")); err != nil {
		t.Fatal(err)
	}
	want := "acme: account acme is out of service: its file data.db is damaged (it is missing"
	for _, args := range [][]string{{"doctor"}, {"drift", "acme"}, {"drift", "--all"}} {
		code, out, _ := c.run(args...)
		if code == 0 || !strings.Contains(out, want) || !strings.Contains(out, "restore it from a backup") {
			t.Errorf("%s: exit %d, %s; want acme's missing data.db and the restore", strings.Join(args, " "), code, out)
		}
		if strings.Contains(out, "globex") {
			t.Errorf("%s: %s; want nothing about globex", strings.Join(args, " "), out)
		}
	}
	if out := c.ok("drift", "globex"); !strings.Contains(out, "no drift in 1 account(s)") {
		t.Errorf("drift globex: %s", out)
	}
}

// TestVerifyCountsTheLiveFleet: silo verify's count is the fleet's
// (production and the tenants), not every account ever deleted; a deleted
// tenant does not raise it.
func TestVerifyCountsTheLiveFleet(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	for _, id := range []string{"acme", "globex", "initech"} {
		c.ok("tenant", "create", id)
	}
	if out := c.ok("verify"); !strings.Contains(out, "hold over 4 accounts") {
		t.Fatalf("verify before: %s", out)
	}
	c.ok("tenant", "delete", "initech", "--yes")
	if out := c.ok("verify"); !strings.Contains(out, "hold over 3 accounts") {
		t.Errorf("verify after deleting initech: %s; want 3 accounts", out)
	}
}
