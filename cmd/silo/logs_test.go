package main

import (
	"strings"
	"testing"
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
		{[]string{"logs", "acme", "--function", "nosuch", "--since", "10m"}, "no log line of acme matches --function nosuch --since 10m0s\n"},
	} {
		code, out, errOut := c.run(tc.args...)
		if code != 0 || out != "" || errOut != tc.want {
			t.Errorf("silo %s: exit %d, stdout %q, stderr %q; want 0, nothing, %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
}
