package silo_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// pkg is the part of `go list -json` the convention tests read.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
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
	".":                  {},
	"spec":               {"."},
	"store":              {"."},
	"provider":           {"."},
	"logs":               {".", "internal/batch"},
	"internal/fanout":    {},
	"internal/jsonerr":   {},
	"internal/batch":     {},
	"internal/durable":   {},
	"internal/localtest": {},
	"isolation/iam":      {},
	"internal/envelope":  {".", "internal/durable"},
	"internal/wasmfile":  {},
	"internal/build":     {".", "internal/durable", "internal/wasmfile"},
	"internal/apikey":    {".", "store"},
	"usage":              {".", "store"},

	// The SDK functions are built with: never the host's packages.
	"sdk":         {},
	"sdk/fn/abi":  {},
	"sdk/jsonstr": {},
	"sdk/fn":      {"sdk/fn/abi", "sdk/jsonstr"},

	// Implementations behind the store and provider contracts, and the
	// suites every implementation passes: none knows another.
	"store/sqlite":          {".", "store", "internal/durable"},
	"store/postgres":        {".", "store"},
	"store/postgres/pgtest": {},
	"store/storetest":       {".", "store"},
	"provider/local":        {".", "provider", "internal/envelope", "internal/durable"},
	"provider/aws":          {".", "logs", "provider", "isolation/iam"},
	"provider/aws/awstest":  {},
	"provider/providertest": {".", "provider"},

	// The control plane: plans and applies over the contracts, never over
	// an implementation, the runtime or the data plane.
	"engine":           {".", "spec", "store", "provider", "internal/fanout"},
	"isolation":        {".", "engine", "provider", "store", "isolation/iam", "internal/durable"},
	"isolation/report": {".", "isolation", "provider", "internal/durable", "internal/jsonerr"},
	"rollout":          {".", "engine", "spec", "store", "provider", "internal/fanout"},
	"control":          {".", "engine", "spec", "store", "provider", "isolation", "usage", "internal/apikey", "internal/durable", "internal/wasmfile"},

	// The data plane: the sandbox, the HTTP gateway, and the directory
	// between them and the store. The gateway knows neither the runtime
	// nor the control plane.
	"runtime":       {".", "provider", "sdk/fn/abi"},
	"usage/storage": {".", "provider"},
	"gateway":       {".", "store", "internal/apikey", "internal/batch", "sdk/jsonstr"},
	"dataplane":     {".", "gateway", "isolation", "provider", "store"},

	// Serving and wiring: the API over the control plane, the console over
	// the API, and the platform that builds the whole.
	"server":         {".", "control", "engine", "isolation", "isolation/report", "logs", "provider", "rollout", "spec", "store", "usage", "usage/storage", "internal/durable", "internal/jsonerr", "internal/wasmfile"},
	"server/console": {".", "control", "isolation/report", "logs", "server", "rollout", "store", "usage", "usage/storage", "internal/fanout"},
	"platform": {".", "control", "dataplane", "engine", "gateway", "internal/build", "isolation", "isolation/probe",
		"isolation/report", "logs", "provider", "provider/local", "rollout", "runtime", "server", "server/console",
		"spec", "store", "store/sqlite", "usage", "usage/storage", "internal/envelope", "internal/durable", "internal/wasmfile"},
	"isolation/probe": {".", "control", "internal/build", "isolation", "isolation/report", "logs", "provider", "runtime", "store"},
	"silotest":        {".", "control", "gateway", "logs", "platform", "provider/aws", "provider/aws/awstest", "rollout"},

	// Commands and measurement: the only packages that pick
	// implementations.
	"cmd/silo": {".", "control", "engine", "internal/durable", "isolation", "isolation/probe", "isolation/report", "logs", "platform",
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

// messageArgs names the calls whose argument (by index) is the start of a
// message a user reads after "silo: ": an error's text, or a refusal's.
// A method is named ".name"; a function of another package "pkg.Name"; a
// function of the same package its bare name.
var messageArgs = map[string]int{
	"fmt.Errorf":  0,
	"errors.New":  0,
	"silo.Errorf": 1,
	"Errorf":      1, // the root package's own
	"userErr":     2, // store/sqlite, store/postgres
	"failure":     2, // runtime
	"damagedf":    0, // provider/local
	".errorf":     1, // spec's decoder
	".at":         2, // spec's decoder
	"missing":     4, // spec (server's one-argument missing is left alone by its arity)
	".confirm":    1, // cmd/silo: what the refusal says would happen
	".fail":       2, // gateway: the message of an error response
}

// messageFields names the composite literals whose field (by name, or "0"
// for the first positional element) is such a message.
var messageFields = map[string]string{
	"silo.Error":  "Message",
	"Error":       "Message",
	"usageError":  "0",
	"storeDamage": "reason",
	"statusError": "msg",
}

// properNouns may start a message with a capital letter: names that are
// written so wherever they stand. A word in capitals (an acronym such as
// AWS, KMS, TTL, an HTTP method, a SILO_ variable) may always start one.
var properNouns = map[string]bool{
	"PostgreSQL": true, "SQLite": true, "Lambda": true, "Go": true, "DynamoDB": true,
	// The IAM policy language's element names, as a policy document spells them.
	"Effect": true, "Action": true, "Resource": true, "Principal": true, "Condition": true,
}

// capitalisedMessages returns, for the Go source files given by name, each
// message (see messageArgs, messageFields) that starts with a capital
// letter where the first word is neither a proper noun nor an acronym, as
// "file:line: message".
func capitalisedMessages(t *testing.T, fset *token.FileSet, files []*ast.File) []string {
	t.Helper()
	var out []string
	var name func(ast.Expr) string
	check := func(e ast.Expr) {
		for { // the start of "a" + b, of fmt.Sprintf("a", b)
			if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.ADD {
				e = b.X
				continue
			}
			if c, ok := e.(*ast.CallExpr); ok && name(c.Fun) == "fmt.Sprintf" && len(c.Args) > 0 {
				e = c.Args[0]
				continue
			}
			break
		}
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			t.Fatalf("%s: %v", fset.Position(lit.Pos()), err)
		}
		if !capitalised(s) {
			return
		}
		out = append(out, fmt.Sprintf("%s: %q", fset.Position(lit.Pos()), s))
	}
	name = func(e ast.Expr) string {
		switch e := e.(type) {
		case *ast.Ident:
			return e.Name
		case *ast.SelectorExpr:
			if x, ok := e.X.(*ast.Ident); ok && (x.Name == "fmt" || x.Name == "errors" || x.Name == "silo") {
				return x.Name + "." + e.Sel.Name
			}
			return "." + e.Sel.Name
		}
		return ""
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if i, ok := messageArgs[name(n.Fun)]; ok && i < len(n.Args) {
					check(n.Args[i])
				}
			case *ast.CompositeLit:
				field, ok := messageFields[name(n.Type)]
				if !ok {
					return true
				}
				for i, el := range n.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok {
						if k, ok := kv.Key.(*ast.Ident); ok && k.Name == field {
							check(kv.Value)
						}
					} else if field == "0" && i == 0 {
						check(el)
					}
				}
			}
			return true
		})
	}
	return out
}

// capitalised reports whether message s starts with a capital letter that
// is not that of a proper noun or an acronym.
func capitalised(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	if !unicode.IsUpper(r) {
		return false
	}
	end := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' })
	word := s
	if end >= 0 {
		word = s[:end]
	}
	if properNouns[word] {
		return false
	}
	acronym := strings.TrimSuffix(word, "s") // IDs, ARNs
	return len(acronym) < 2 || strings.ToUpper(acronym) != acronym
}

// TestMessagesStartLowerCase: what follows "silo: " starts lower case (Go
// error style), unless it starts with a proper noun or an acronym.
func TestMessagesStartLowerCase(t *testing.T) {
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range listPackages(t) {
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	if len(files) < 100 {
		t.Fatalf("parsed %d files; the tree is bigger than that", len(files))
	}
	for _, m := range capitalisedMessages(t, fset, files) {
		t.Errorf("%s starts with a capital; start it lower case, or add a proper noun to properNouns", m)
	}
}

// TestMessagesStartLowerCaseCatches: the check reports a capitalised
// message in each form it reads (must), and nothing for messages that start
// lower case or with a proper noun or an acronym (must not).
func TestMessagesStartLowerCaseCatches(t *testing.T) {
	const src = `package p

func f() {
	_ = fmt.Errorf("The account %s is gone", id)
	_ = errors.New("Account missing")
	_ = silo.Errorf(silo.CodeInvalid, "Tenant %s: bad", id)
	_ = silo.Errorf(silo.CodeInvalid, "Release " + id + " is bad")
	_ = &silo.Error{Code: c, Message: fmt.Sprintf("Nothing was changed: %s", why)}
	_ = usageError{"Name one account"}
	_ = g.confirm(yes, fmt.Sprintf("Deleting %s destroys it", id), "yes")

	_ = fmt.Errorf("the account %s is gone", id)
	_ = silo.Errorf(silo.CodeUnavailable, "AWS refused to create account %s", id)
	_ = silo.Errorf(silo.CodeUnavailable, "PostgreSQL is unavailable")
	_ = errors.New("SILO_SERVER is not a URL")
	_ = fmt.Errorf("IDs must be unique")
	_ = usageError{"name one account"}
	_ = fmt.Sprintf("Not a message at all")
	_ = t.Errorf("Not a message a user reads")
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := capitalisedMessages(t, fset, []*ast.File{f})
	var lines []int
	for _, m := range got {
		var line int
		if _, err := fmt.Sscanf(m, "p.go:%d:", &line); err != nil {
			t.Fatalf("%q: %v", m, err)
		}
		lines = append(lines, line)
	}
	if want := []int{4, 5, 6, 7, 8, 9, 10}; !slices.Equal(lines, want) {
		t.Fatalf("the check reported lines %v, want %v:\n%s", lines, want, strings.Join(got, "\n"))
	}
}
