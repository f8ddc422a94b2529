package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	silo "github.com/silo-run/silo"
)

// confirm asks before an operation that destroys data. With --yes it goes
// ahead; on a terminal it asks for the word want to be typed; otherwise
// (a script, a pipe) it refuses with what to rerun, so that nothing is
// destroyed by a command that was never meant to.
func (g *globals) confirm(yes bool, what, want string) error {
	if yes {
		return nil
	}
	if !g.interactive() {
		return silo.Errorf(silo.CodeFailedCheck, "%s, which cannot be undone; nothing was changed. Rerun with --yes to confirm", what)
	}
	fmt.Fprintf(g.stdout, "%s, which cannot be undone.\nType %q to go ahead: ", what, want)
	line, _ := bufio.NewReader(g.stdin).ReadString('\n')
	if strings.TrimSpace(line) != want {
		return silo.Errorf(silo.CodeFailedCheck, "not confirmed; nothing was changed")
	}
	return nil
}

// interactive reports whether stdin is a terminal (not a pipe, a file or
// /dev/null).
func (g *globals) interactive() bool {
	f, ok := g.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// destroyed describes the data-destroying changes of plans, e.g.
// "deletes table/notes in acme, globex", or "" when there are none.
func destroyed(plans []silo.Plan) string {
	where := map[string][]string{}
	var order []string
	for _, p := range plans {
		for _, c := range p.Changes {
			if !destroysData(c) {
				continue
			}
			k := string(c.Op) + "s " + c.Key()
			if where[k] == nil {
				order = append(order, k)
			}
			where[k] = append(where[k], string(p.Account))
		}
	}
	if len(order) == 0 {
		return ""
	}
	parts := make([]string, len(order))
	for i, k := range order {
		accts := where[k]
		if len(accts) > 3 {
			accts = append(accts[:3:3], fmt.Sprintf("%d more", len(where[k])-3))
		}
		parts[i] = fmt.Sprintf("%s in %s", k, strings.Join(accts, ", "))
	}
	return strings.Join(parts, "; ")
}
