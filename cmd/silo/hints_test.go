package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// commandPaths returns every command path of the CLI ("silo rollout pause").
func commandPaths(root *cobra.Command) map[string]*cobra.Command {
	out := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		out[c.CommandPath()] = c
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return out
}

var helpHint = regexp.MustCompile(`see (silo(?: [a-z][a-z-]*)*) --help`)

// The usage error of every command with positional arguments names a help
// command that exists: its own.
func TestArgHintsNameRealCommands(t *testing.T) {
	t.Parallel()
	root := newRoot(&globals{})
	paths := commandPaths(root)
	checked := 0
	for path, c := range paths {
		if c.Args == nil {
			continue
		}
		err := c.Args(c, []string{"a", "b", "c", "d", "e"})
		var ue usageError
		if err == nil || !errorsAs(err, &ue) {
			continue
		}
		m := helpHint.FindStringSubmatch(ue.msg)
		if m == nil {
			t.Errorf("%s: usage error %q names no help command", path, ue.msg)
			continue
		}
		if m[1] != path {
			t.Errorf("%s: usage error says see %s --help, want its own path", path, m[1])
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("checked %d commands' usage errors, want at least 20", checked)
	}
}

func errorsAs(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	if ok {
		*ue = u
	}
	return ok
}

var cmdMention = regexp.MustCompile(`\bsilo ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?`)

// Every "silo X --help" and every "silo GROUP SUB" that the sources print
// (messages, help texts) names a command that exists.
func TestMessagesNameRealCommands(t *testing.T) {
	t.Parallel()
	root := newRoot(&globals{})
	paths := commandPaths(root)
	var lits []string
	modRoot := filepath.Join("..", "..")
	err := filepath.WalkDir(modRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != modRoot {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if bl, ok := n.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				if s, err := strconv.Unquote(bl.Value); err == nil {
					lits = append(lits, s)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	groups := 0
	for _, s := range lits {
		for _, m := range helpHint.FindAllStringSubmatch(s, -1) {
			if paths[m[1]] == nil {
				t.Errorf("message %q: %s is not a command", s, m[1])
			}
		}
		for _, m := range cmdMention.FindAllStringSubmatch(s, -1) {
			group := paths["silo "+m[1]]
			if group == nil || group.Annotations[annotationGroup] == "" || m[2] == "" {
				continue // not a command group
			}
			groups++
			if paths["silo "+m[1]+" "+m[2]] == nil {
				t.Errorf("message %q: silo %s has no subcommand %s", s, m[1], m[2])
			}
		}
	}
	if groups < 10 {
		t.Fatalf("checked %d mentions of subcommands, want at least 10", groups)
	}
}
