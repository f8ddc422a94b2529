// Command silo is the one binary of the silo platform: the CLI, the
// control-plane server and `silo up`. It is the only package that reads
// flags, environment variables and files for configuration; it builds the
// store, provider, runtime and servers and passes them in.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// globals are the flags every command shares.
type globals struct {
	dataDir string
	output  string
	file    string
	server  string
	token   string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

func (g *globals) json() bool { return g.output == "json" }

// print writes v as JSON with --output json, or calls text otherwise.
func (g *globals) print(v any, text func(w io.Writer)) error {
	if g.json() {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(g.stdout)
	return nil
}

// run executes the CLI and returns the exit code: 0 success, 1 failure,
// 2 usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "silo: %s\n", ue.msg)
		return 2
	}
	fmt.Fprintf(stderr, "silo: %s\n", userMessage(err))
	if os.Getenv("SILO_DEBUG") != "" {
		fmt.Fprintf(stderr, "debug: %+v\n", err)
	}
	return 1
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// userMessage is the one sentence a user sees for err.
func userMessage(err error) string {
	var se *silo.Error
	if errors.As(err, &se) && se.Message != "" {
		return se.Message
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	return err.Error()
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "silo",
		Short: "Account-per-tenant platform for SaaS products",
		Long: `silo gives every customer of a SaaS product its own isolated account holding its own
copy of the stack declared in silo.yaml, keeps the fleet on the current release, and proves
that no tenant can reach another tenant's data.

Every command works on the local data dir (--data-dir, $SILO_DATA_DIR, default ./.silo).
Every command accepts --output json for scripts.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error() + "; see silo --help"} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.dataDir, "data-dir", envOr("SILO_DATA_DIR", ".silo"), "directory holding the control-plane state and the local accounts ($SILO_DATA_DIR)")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	pf.StringVarP(&g.file, "file", "f", "silo.yaml", "the stack spec")
	pf.StringVar(&g.server, "server", "", "control-plane server URL; commands run there instead of on the local data dir ($SILO_SERVER)")
	pf.StringVar(&g.token, "token", "", "operator token for --server ($SILO_TOKEN; default: read from the data dir)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if g.output != "text" && g.output != "json" {
			return usageError{fmt.Sprintf("--output must be text or json, not %q", g.output)}
		}
		return nil
	}
	root.AddCommand(
		newUpCmd(g), newInitCmd(g),
		newTenantCmd(g), newEnvCmd(g),
		newPlanCmd(g), newApplyCmd(g), newDriftCmd(g), newDoctorCmd(g), newBuildCmd(g),
		newKeysCmd(g), newSecretCmd(g), newAuditCmd(g), newRotateCmd(g),
		newVerifyCmd(g), newReportCmd(g),
		newDevCmd(g), newLogsCmd(g),
		newServerCmd(g), newDeployCmd(g), newRolloutCmd(g), newReleaseCmd(g),
	)
	return root
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// exactArgs is cobra.ExactArgs with a usage error that names the arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Sprintf("%s needs %s; see silo %s --help", cmd.CommandPath(), names, cmd.Name())}
		}
		return nil
	}
}
