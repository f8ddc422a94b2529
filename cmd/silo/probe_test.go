package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/isolation/probe"
	"github.com/silo-run/silo/isolation/report"
)

// TestProbeOnAFreshScaffold: the app silo init writes has no production
// account resources, so the controls that read production cannot run; they
// are reported as not applicable, and the run passes. The isolation report
// then says the probes passed.
func TestProbeOnAFreshScaffold(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	app := filepath.Join(t.TempDir(), "demo")
	c.ok("init", app)
	c.file = filepath.Join(app, "silo.yaml")
	c.ok("tenant", "create", "acme")
	code, out, errOut := c.run("verify", "--probe")
	if code != 0 {
		t.Fatalf("silo verify --probe on the scaffold: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"PASS:", "0 succeeded", "controls, all succeeded; 2 not applicable to this app",
		"tenant-to-production: not applicable: A reads a production export", "production-to-tenants: not applicable: production reads its own tables"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Every surface has its row in the table: attempts, none succeeded,
	// and no control failed.
	for _, name := range probe.Surfaces {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` +[1-9][0-9]* +0 +[0-9]+ +0 `).MatchString(out) {
			t.Errorf("no table row for surface %s with attempts, none succeeded, and no control failed:\n%s", name, out)
		}
	}
	var signed report.Signed
	if err := json.Unmarshal([]byte(c.ok("report", "acme", "--format", "json")), &signed); err != nil {
		t.Fatal(err)
	}
	if p := signed.Report.Probe; p.Status != report.ProbePassed || p.NotApplicable != 2 || p.Breaches != 0 || p.ControlsFailed != 0 {
		t.Errorf("report's probe record: %+v, want passed with 2 not applicable", p)
	}
}

// TestProbeAgainstARunningUp: silo verify --probe beside a running silo up
// runs the probes in silo up, against its gateway, and passes; the outcome
// is recorded where silo up's reports read it.
func TestProbeAgainstARunningUp(t *testing.T) {
	t.Setenv("USER", "tester")
	dir := t.TempDir()
	_, stop := startUp(t, dir)
	defer stop()
	for i := 0; ; i++ {
		if _, ok := runningServer(dir); ok {
			break
		}
		if i == 500 {
			t.Fatal("silo up announced no server")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var out, errOut syncBuffer
	err := runCmd(context.Background(), []string{"verify", "--probe", "--data-dir", dir}, &out, &errOut)
	if err != nil {
		t.Fatalf("silo verify --probe beside silo up: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "PASS:") || !strings.Contains(out.String(), "0 succeeded") {
		t.Errorf("output: %s", out.String())
	}
	out, errOut = syncBuffer{}, syncBuffer{}
	if err := runCmd(context.Background(), []string{"report", "acme", "--format", "json", "--data-dir", dir}, &out, &errOut); err != nil {
		t.Fatalf("report: %v %s", err, errOut.String())
	}
	var signed report.Signed
	if err := json.Unmarshal([]byte(out.String()), &signed); err != nil {
		t.Fatal(err)
	}
	if p := signed.Report.Probe; p.Status != report.ProbePassed || p.Attempts == 0 {
		t.Errorf("report's probe record: %+v, want passed", p)
	}
}
