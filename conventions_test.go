package silo_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// pkg is the part of `go list -json` the convention tests read.
type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Standard   bool
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; the tree is bigger than that", len(pkgs))
	}
	return pkgs
}

const module = "github.com/silo-run/silo"

// TestDependenciesEnterThroughOnePackage keeps each vendor dependency behind
// the one package that owns it (STYLE.md: dependencies at the edges).
func TestDependenciesEnterThroughOnePackage(t *testing.T) {
	owners := map[string][]string{
		// bench measures a raw wazero call as the baseline of the runtime's overhead.
		"github.com/tetratelabs/wazero": {module + "/runtime", module + "/bench"},
		"modernc.org/sqlite":            {module + "/store/sqlite"},
		"github.com/jackc/pgx":          {module + "/store/postgres"},
		"github.com/aws/aws-sdk-go-v2":  {module + "/provider/aws"},
		"go.etcd.io/bbolt":              {module + "/provider/local"},
		"go.yaml.in/yaml":               {module + "/spec"},
		"github.com/spf13/cobra":        {module + "/cmd/silo"},
		"github.com/aws/aws-lambda-go":  {module + "/cmd/silo-lambda"},
	}
	checked := 0
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			for dep, allowed := range owners {
				if !strings.HasPrefix(imp, dep) {
					continue
				}
				checked++
				ok := false
				for _, a := range allowed {
					ok = ok || p.ImportPath == a || strings.HasPrefix(p.ImportPath, a+"/")
				}
				if !ok {
					t.Errorf("%s imports %s; only %v may", p.ImportPath, imp, allowed)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package imports any owned dependency; the check is not looking at the tree")
	}
}

// TestRootIsStdlibOnly keeps the domain vocabulary free of dependencies.
func TestRootIsStdlibOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	imports := strings.Fields(string(out))
	if len(imports) == 0 {
		t.Fatal("the root package imports nothing; go list output is wrong")
	}
	for _, imp := range imports {
		if strings.Contains(strings.Split(imp, "/")[0], ".") {
			t.Errorf("root package imports %s; it must use the standard library only", imp)
		}
	}
}

// TestEveryPackageHasADocComment checks STYLE.md rule 17.
func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.Doc == "" {
			t.Errorf("%s has no package doc comment saying what it owns", p.ImportPath)
		}
	}
}
