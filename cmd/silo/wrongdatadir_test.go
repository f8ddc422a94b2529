package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// TestDataDirWithoutTheRegistrysAccounts: a data dir holding none of the
// registry's live accounts — another data dir on the shared PostgreSQL
// store, or a SQLite data dir whose accounts/ was moved away — is refused by
// every command and by silo server with the one cause and what to do, and
// silo doctor reports that cause alone: never "run silo tenant delete" or
// "silo apply" for each account. The twins: on the installation's own data
// dir the same commands work, and one missing function module is still
// reported with its own fix.
func TestDataDirWithoutTheRegistrysAccounts(t *testing.T) {
	t.Parallel()
	server := []string{"server", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		// wrong returns the CLI on a data dir without the accounts and the
		// flags every command needs; real is the installation's.
		setup func(t *testing.T, real *cli) (wrong *cli, flags []string)
		want  string
	}{
		{"another data dir on the shared store", func(t *testing.T, real *cli) (*cli, []string) {
			dsn := pgtest.Fresh(t)
			real.ok("--store", dsn, "tenant", "create", "acme")
			real.ok("--store", dsn, "tenant", "create", "globex")
			wrong := newCLI(t)
			wrong.file = real.file
			if err := os.MkdirAll(wrong.dataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			return wrong, []string{"--store", dsn}
		}, "is not the one the installation's servers use, or its account files were lost: the PostgreSQL control-plane database holds 3 live account(s) (acme, globex, production)"},
		{"a SQLite data dir without its accounts", func(t *testing.T, real *cli) (*cli, []string) {
			real.ok("tenant", "create", "acme")
			real.ok("tenant", "create", "globex")
			localtest.CopyTree(t, real.dataDir, real.dataDir+"-copy")
			if err := os.RemoveAll(filepath.Join(real.dataDir+"-copy", "accounts")); err != nil {
				t.Fatal(err)
			}
			return &cli{t: t, dataDir: real.dataDir + "-copy", file: real.file}, nil
		}, "the data dir's control-plane state (state.db) holds 3 live account(s) (acme, globex, production)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			real := newCLI(t)
			wrong, flags := tc.setup(t, real)
			with := func(args ...string) []string { return append(append([]string{}, flags...), args...) }

			for _, args := range [][]string{{"tenant", "list"}, {"apply", "--all", "--yes"}, {"tenant", "delete", "acme", "--yes"}, server} {
				wrong.fails(tc.want, with(args...)...)
			}
			code, out, _ := wrong.run(with("doctor")...)
			if code == 0 || !strings.Contains(out, tc.want) || !strings.Contains(out, "restore") {
				t.Errorf("doctor on the data dir without the accounts: exit %d, %s; want the one cause and the restore", code, out)
			}
			for _, bad := range []string{"tenant delete", "silo apply", "acme:", "globex:"} {
				if strings.Contains(out, bad) {
					t.Errorf("doctor on the data dir without the accounts: %s; want no %q", out, bad)
				}
			}

			// The twins: the installation's data dir serves; one missing
			// module is reported with its own fix.
			if out := real.ok(with("tenant", "list")...); !strings.Contains(out, "acme") {
				t.Errorf("tenant list on the installation's data dir: %s", out)
			}
			if out := real.ok(with("doctor")...); !strings.Contains(out, "no problem found in 3 account(s)") {
				t.Errorf("doctor on the installation's data dir: %s", out)
			}
			mods, err := filepath.Glob(filepath.Join(real.dataDir, "artifacts", "*.wasm"))
			if err != nil || len(mods) == 0 {
				t.Fatalf("no function module in %s: %v", real.dataDir, err)
			}
			if err := os.Remove(mods[0]); err != nil {
				t.Fatal(err)
			}
			real.fails("is missing from "+filepath.Join(real.dataDir, "artifacts")+"; run silo apply to rebuild it", with(server...)...)
		})
	}
}
