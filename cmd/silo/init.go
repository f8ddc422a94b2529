package main

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/sdk"

	silo "github.com/silo-run/silo"
)

const siloModule = "github.com/silo-run/silo"

const initSpec = `# silo.yaml: the stack every tenant gets. Reference: https://github.com/silo-run/silo/blob/main/docs/spec.md
version: 1
name: %s

params:
  plan: {type: string, default: free, enum: [free, pro]}

functions:
  hello:
    source: ./functions/hello
    tables: {visits: read-write}
    config: [greeting]

tables:
  visits: {}

config:
  greeting: "Hello, ${tenant.id} (plan ${param.plan})"

routes:
  - {method: GET, path: /hello, function: hello}
`

const initFunction = `// Command hello is an example silo function: it greets the tenant and
// counts visits in the tenant's own visits table.
package main

import "github.com/silo-run/silo/sdk/fn"

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		// Add is atomic: concurrent visits are each counted once.
		n, err := fn.Table("visits").Add("count", 1)
		if err != nil {
			fn.Log.Error("count visit", "error", err)
		}
		fn.Log.Info("hello", "visits", n)
		return fn.JSON(200, map[string]any{"message": fn.Config("greeting"), "visits": n})
	})
}

func main() {}
`

func newInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init [DIR]",
		Short: "Scaffold a project: silo.yaml and an example function",
		Long: `Create DIR (default: the current directory) with a silo.yaml declaring one function, one
table, a config value and a route, and the function's Go source. Existing files are never
overwritten. Inside a checkout of silo the function builds against it directly; elsewhere a
go.mod is written that requires silo (with a replace directive pointing at the silo checkout
the command was run from, when one is found).`,
		Example: `  silo init demo && cd demo
  silo tenant create acme --param plan=pro
  silo up`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			name := strings.ToLower(filepath.Base(abs))
			if _, err := silo.ParseID(name); err != nil {
				name = "app"
			}
			files := map[string]string{
				"silo.yaml":               fmt.Sprintf(initSpec, name),
				"functions/hello/main.go": initFunction,
				".gitignore":              ".silo/\n",
			}
			order := []string{"silo.yaml", "functions/hello/main.go", ".gitignore", "go.mod"}
			mod, modPath := enclosingModule(abs)
			switch {
			case mod == siloModule:
				// Builds against this checkout as a package of the silo module.
			case mod != "":
				// Another module: the user adds the silo requirement.
			default:
				gomod := fmt.Sprintf("module example.com/%s\n\ngo %s\n\nrequire %s v0.0.0\n", name, goVersion(), siloModule)
				if root := siloCheckout(); root != "" {
					gomod += fmt.Sprintf("\nreplace %s => %s\n", siloModule, root)
				} else {
					// No checkout at hand: the function SDK this binary carries
					// is written into the project, so it builds offline.
					gomod += fmt.Sprintf("\n// The function SDK, written by silo init from the silo binary.\nreplace %s => ./%s\n", siloModule, sdkDir)
					sdkFiles, err := embeddedSDK()
					if err != nil {
						return err
					}
					for rel, body := range sdkFiles {
						files[rel] = body
						order = append(order, rel)
					}
				}
				files["go.mod"] = gomod
			}
			var made, kept []string
			sort.Strings(order[4:])
			for _, rel := range order {
				body, ok := files[rel]
				if !ok {
					continue
				}
				p := filepath.Join(abs, filepath.FromSlash(rel))
				if _, err := os.Stat(p); err == nil {
					kept = append(kept, rel)
					continue
				}
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return silo.Errorf(silo.CodeInvalid, "cannot create %s: %v", filepath.Dir(p), durable.Cause(err))
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					return silo.Errorf(silo.CodeInvalid, "cannot write %s: %v", p, durable.Cause(err))
				}
				made = append(made, rel)
			}
			_ = modPath
			return g.print(map[string]any{"dir": abs, "created": made, "kept": kept}, func(w io.Writer) {
				for _, f := range made {
					fmt.Fprintf(w, "created %s\n", filepath.Join(dir, f))
				}
				for _, f := range kept {
					fmt.Fprintf(w, "kept    %s (exists)\n", filepath.Join(dir, f))
				}
				fmt.Fprintf(w, "\nNext:\n")
				if dir != "." {
					fmt.Fprintf(w, "  cd %s\n", dir)
				}
				fmt.Fprintf(w, "  silo tenant create acme --param plan=pro   # builds silo.yaml, creates the tenant, prints a key\n")
				fmt.Fprintf(w, "  silo up                                    # serves it: GET http://acme.localhost:8080/hello\n")
			})
		},
	}
}

// sdkDir is where silo init writes the embedded function SDK.
const sdkDir = ".silo-sdk"

// embeddedSDK returns the files of a module holding the function SDK
// (sdk/fn and its ABI, without tests), keyed by their path in the project.
func embeddedSDK() (map[string]string, error) {
	out := map[string]string{
		sdkDir + "/go.mod": fmt.Sprintf("module %s\n\ngo %s\n", siloModule, goVersion()),
	}
	err := fs.WalkDir(sdk.Source, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := fs.ReadFile(sdk.Source, path)
		if err != nil {
			return err
		}
		out[sdkDir+"/sdk/"+path] = string(b)
		return nil
	})
	return out, err
}

// enclosingModule returns the module path and go.mod of the module holding
// dir, or "" outside any module.
func enclosingModule(dir string) (string, string) {
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "go.mod")
		if f, err := os.Open(p); err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return strings.Trim(strings.TrimSpace(m), `"`), p
				}
			}
			return "", p
		}
		if filepath.Dir(d) == d {
			return "", ""
		}
	}
}

// siloCheckout returns the root of the silo checkout holding the working
// directory, or "".
func siloCheckout() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	if mod, p := enclosingModule(wd); mod == siloModule {
		return filepath.Dir(p)
	}
	return ""
}

// goVersion is the go line for a new go.mod: the running toolchain's
// release (silo's own go.mod needs at least that), else 1.26.8.
func goVersion() string {
	v := strings.TrimPrefix(runtime.Version(), "go")
	if v == "" || strings.ContainsAny(v, " -+") || !strings.HasPrefix(v, "1.") {
		return "1.26.8"
	}
	return v
}
