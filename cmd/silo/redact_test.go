package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpAndErrorsHideTheStorePassword: with $SILO_STORE holding a
// password, the --help of every command shows the default store with the
// password replaced, and errors that name a store given with a password
// (one that is not a PostgreSQL URL, one that does not parse, one that
// cannot be reached) never show it. The twin: the help does show the rest
// of the default (user, host, database), so that the default is visible.
func TestHelpAndErrorsHideTheStorePassword(t *testing.T) {
	const secret = "hunter2"
	t.Setenv("SILO_STORE", "postgres://silo:"+secret+"@127.0.0.1:1/x?sslmode=disable")
	c := newCLI(t)

	var paths [][]string
	var walk func(cmd *cobra.Command, path []string)
	walk = func(cmd *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range cmd.Commands() {
			walk(sub, append(append([]string{}, path...), sub.Name()))
		}
	}
	walk(newRoot(&globals{}), nil)
	if len(paths) < 30 {
		t.Fatalf("walked %d commands, want every command of silo", len(paths))
	}
	for _, path := range paths {
		code, out, errOut := c.run(append(path, "--help")...)
		if code != 0 {
			t.Errorf("silo %s --help: exit %d: %s", strings.Join(path, " "), code, errOut)
		}
		if strings.Contains(out+errOut, secret) {
			t.Errorf("silo %s --help shows the store's password:\n%s%s", strings.Join(path, " "), out, errOut)
		}
		if path == nil && !strings.Contains(out, `(default "postgres://silo:xxxxx@127.0.0.1:1/x?sslmode=disable")`) {
			t.Errorf("silo --help: %s; want the default store with its password replaced", out)
		}
	}

	for _, store := range []string{
		"postgres://silo:" + secret + "@127.0.0.1:1/x?sslmode=disable&connect_timeout=2",
		"mysql://silo:" + secret + "@db/silo",
		"host=db user=silo password=" + secret + " dbname=silo",
		"postgres://silo@db:5432/silo?password=" + secret + "&sslmode=bogus",
		"postgres://silo:" + secret + "@db:port/silo",
	} {
		code, out, errOut := c.run("--store", store, "tenant", "create", "acme")
		if code == 0 || strings.Contains(out+errOut, secret) || !strings.Contains(errOut, "silo: ") {
			t.Errorf("silo --store %q tenant create: exit %d, %s%s; want an error without the password", store, code, out, errOut)
		}
	}
}

// TestRedact: the password of a store URL is hidden, whatever its form;
// the rest is kept where it can be told apart.
func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"postgres://silo@db:5432/silo?sslmode=require", "postgres://silo@db:5432/silo?sslmode=require"},
		{"postgres://silo:pw@db:5432/silo", "postgres://silo:xxxxx@db:5432/silo"},
		{"postgresql://silo:p@ss@db/silo", "postgresql://silo:xxxxx@db/silo"},
		{"postgres://silo@db/silo?password=pw&sslmode=disable", "postgres://silo@db/silo?password=xxxxx&sslmode=disable"},
		{"postgres://silo:pw/x@db/silo", "…@db/silo"},
		{"postgres://silo:1234?x@db/silo", "…@db/silo"},
		{"host=db password=pw user=silo", "host=db password=xxxxx user=silo"},
		{"host=db password='p w' user=silo", "host=db password=xxxxx user=silo"},
	} {
		if got := redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
