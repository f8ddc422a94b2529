package silo_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"slices"
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

// allowedImports is the layering of silo's packages, read top to bottom:
// for each package (by path in the module, "." for the root), the project
// packages its non-test files may import. A package that is not in the
// table, or imports a project package its line does not list, fails
// TestImportLayering: a new edge between packages is a design decision,
// made here in review (as tailscale's depaware makes it). A line may allow
// more than the package imports today; a row for a package that no longer
// exists fails too, so the table stays the map of the tree.
var allowedImports = map[string][]string{
	// The domain vocabulary, and leaves that know nothing of silo's
	// layers above them.
	".":                 {},
	"spec":              {"."},
	"store":             {"."},
	"provider":          {"."},
	"logs":              {".", "internal/batch"},
	"internal/fanout":   {},
	"internal/batch":    {},
	"isolation/iam":     {},
	"internal/envelope": {"."},
	"internal/build":    {"."},
	"internal/apikey":   {".", "store"},
	"usage":             {".", "store"},

	// The SDK functions are built with: never the host's packages.
	"sdk":         {},
	"sdk/fn/abi":  {},
	"sdk/jsonstr": {},
	"sdk/fn":      {"sdk/fn/abi", "sdk/jsonstr"},

	// Implementations behind the store and provider contracts, and the
	// suites every implementation passes: none knows another.
	"store/sqlite":          {".", "store"},
	"store/postgres":        {".", "store"},
	"store/postgres/pgtest": {},
	"store/storetest":       {".", "store"},
	"provider/local":        {".", "provider", "internal/envelope"},
	"provider/aws":          {".", "logs", "provider", "isolation/iam"},
	"provider/aws/awstest":  {},
	"provider/providertest": {".", "provider"},

	// The control plane: plans and applies over the contracts, never over
	// an implementation, the runtime or the data plane.
	"engine":           {".", "spec", "store", "provider", "internal/fanout"},
	"isolation":        {".", "engine", "provider", "store", "isolation/iam"},
	"isolation/report": {".", "isolation", "provider"},
	"rollout":          {".", "engine", "spec", "store", "provider", "internal/fanout"},
	"control":          {".", "engine", "spec", "store", "provider", "isolation", "usage", "internal/apikey"},

	// The data plane: the sandbox, the HTTP gateway, and the directory
	// between them and the store. The gateway knows neither the runtime
	// nor the control plane.
	"runtime":       {".", "provider", "sdk/fn/abi"},
	"usage/storage": {".", "provider"},
	"gateway":       {".", "store", "internal/apikey", "internal/batch", "sdk/jsonstr"},
	"dataplane":     {".", "gateway", "isolation", "provider", "store"},

	// Serving and wiring: the API over the control plane, the console over
	// the API, and the platform that builds the whole.
	"server":         {".", "control", "engine", "isolation", "isolation/report", "logs", "provider", "rollout", "spec", "store", "usage", "usage/storage"},
	"server/console": {".", "control", "isolation/report", "logs", "server", "rollout", "store", "usage", "usage/storage", "internal/fanout"},
	"platform": {".", "control", "dataplane", "engine", "gateway", "internal/build", "isolation", "isolation/probe",
		"isolation/report", "logs", "provider", "provider/local", "rollout", "runtime", "server", "server/console",
		"spec", "store", "store/sqlite", "usage", "usage/storage", "internal/envelope"},
	"isolation/probe": {".", "control", "internal/build", "isolation", "isolation/report", "logs", "provider", "runtime", "store"},
	"silotest":        {".", "control", "gateway", "logs", "platform", "provider/aws", "provider/aws/awstest", "rollout"},

	// Commands and measurement: the only packages that pick
	// implementations.
	"cmd/silo": {".", "control", "engine", "isolation", "isolation/probe", "isolation/report", "logs", "platform",
		"provider", "provider/aws", "provider/local", "rollout", "sdk", "server", "spec", "store", "store/postgres",
		"store/sqlite", "usage"},
	"cmd/silo-lambda":       {".", "gateway", "internal/apikey", "isolation", "provider", "provider/aws", "runtime", "store"},
	"cmd/silo-aws-emulator": {"provider/aws/awstest"},
	"bench": {".", "control", "engine", "gateway", "internal/build", "platform", "provider/local", "runtime",
		"sdk/fn/abi", "spec", "store", "store/sqlite"},

	// The example app: functions over the SDK only.
	"examples/findings":                  {},
	"examples/findings/internal/finding": {"sdk/fn"},
	"examples/findings/functions/ingest": {"examples/findings/internal/finding", "sdk/fn"},
	"examples/findings/functions/list":   {"examples/findings/internal/finding", "sdk/fn"},
	"examples/findings/functions/smoke":  {"examples/findings/internal/finding", "sdk/fn"},
}

// layeringErrors checks pkgs against allowed and returns what breaks it.
func layeringErrors(pkgs []pkg, allowed map[string][]string) []string {
	rel := func(path string) (string, bool) {
		if path == module {
			return ".", true
		}
		r, ok := strings.CutPrefix(path, module+"/")
		return r, ok
	}
	var errs []string
	seen := map[string]bool{}
	for _, p := range pkgs {
		name, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		seen[name] = true
		may, listed := allowed[name]
		if !listed {
			errs = append(errs, fmt.Sprintf("package %s is not in allowedImports; add its line (the project packages it may import) to conventions_test.go", name))
			continue
		}
		for _, imp := range p.Imports {
			dep, ok := rel(imp)
			if !ok {
				continue
			}
			if !slices.Contains(may, dep) {
				errs = append(errs, fmt.Sprintf("%s imports %s, which its line in allowedImports does not allow; keep the layering (see the table) or change the line in review", name, dep))
			}
		}
	}
	for name := range allowed {
		if !seen[name] {
			errs = append(errs, fmt.Sprintf("allowedImports has a line for %s, which is no package of the module; remove it", name))
		}
	}
	slices.Sort(errs)
	return errs
}

// TestImportLayering enforces allowedImports on the tree.
func TestImportLayering(t *testing.T) {
	pkgs := listPackages(t)
	for _, e := range layeringErrors(pkgs, allowedImports) {
		t.Error(e)
	}
}

// TestImportLayeringCatches: the check reports a forbidden edge (the
// gateway importing the runtime), a package the table does not know and a
// stale line (must), and nothing for the same tree without them (must
// not).
func TestImportLayeringCatches(t *testing.T) {
	clean := []pkg{
		{ImportPath: module},
		{ImportPath: module + "/gateway", Imports: []string{"net/http", module, module + "/store"}},
		{ImportPath: module + "/store", Imports: []string{module}},
		{ImportPath: module + "/runtime", Imports: []string{module}},
	}
	allowed := map[string][]string{".": {}, "gateway": {".", "store"}, "store": {"."}, "runtime": {"."}}
	if errs := layeringErrors(clean, allowed); len(errs) != 0 {
		t.Fatalf("a tree that keeps the table: %v", errs)
	}
	bad := slices.Clone(clean)
	bad[1].Imports = append(slices.Clone(bad[1].Imports), module+"/runtime")
	bad = append(bad, pkg{ImportPath: module + "/newpkg"})
	stale := maps.Clone(allowed)
	stale["gone"] = []string{"."}
	errs := layeringErrors(bad, stale)
	for _, want := range []string{"gateway imports runtime", "package newpkg is not in allowedImports", "line for gone"} {
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("the check missed %q; it reported %v", want, errs)
		}
	}
}
