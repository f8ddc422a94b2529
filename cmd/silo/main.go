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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/server"
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
	store   string        // --store / $SILO_STORE: the control-plane store ("" is SQLite in the data dir)
	prov    providerFlags // --provider, --aws-* / $SILO_PROVIDER, $SILO_AWS_*: see provider.go
	// provFlag is the first of --provider and --aws-* given on the command
	// line ("" if none; their $SILO_* variables do not count).
	provFlag string
	// command is the path of the command that runs ("silo tenant list").
	command string
	stdin   io.Reader
	stdout  io.Writer
	// newDataDir is the data dir when it did not exist before the command
	// ran (noteNewDataDir), else "".
	newDataDir string
	stderr     io.Writer
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
// 2 usage error (an unknown command, subcommand or flag, or missing
// arguments), or a status a command documents (statusError). With --output
// json an error is one JSON object on stderr:
// {"error": {"code": ..., "message": ..., "exit": ...}}.
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
	g.forgetNewDataDir()
	code, exit, msg := errorCode(err), 1, userMessage(err)
	if ctx.Err() != nil {
		// Interrupted (Ctrl-C, SIGTERM): whatever failed on the way out (a
		// request, a build) failed because of it.
		code, msg = silo.CodeUnavailable, "interrupted"
		var fi followInterrupted
		if errors.As(err, &fi) {
			msg = fi.Error()
		}
	}
	var ie interruptedError
	if errors.As(err, &ie) {
		code, msg = silo.CodeUnavailable, ie.Error()
	}
	var se statusError
	if errors.As(err, &se) {
		if se.outcome {
			return se.code // the command printed its result; it is not an error
		}
		code, exit, msg = "status", se.code, se.msg
	}
	var ue usageError
	if errors.As(err, &ue) {
		code, exit = "usage", 2
	} else if name, ok := unknownRootCommand(err); ok {
		code, exit, msg = "usage", 2, unknownCommand(root, name).msg
	}
	if !g.json() && outputFlag(args) == "json" {
		// The call failed before --output was parsed (an unknown command
		// or flag, a flag value that does not parse): it still asked for
		// JSON.
		g.output = "json"
	}
	if g.json() {
		// Scripts that asked for JSON get the error as JSON too, on stderr so
		// that stdout stays empty on failure.
		enc := json.NewEncoder(stderr)
		enc.Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "exit": exit}})
	} else {
		fmt.Fprintf(stderr, "silo: %s\n", msg)
	}
	if exit == 1 && os.Getenv("SILO_DEBUG") != "" {
		fmt.Fprintf(stderr, "debug: %s\n", silo.ForLog(err))
	}
	return exit
}

// errorCode is the machine-readable code of err for --output json.
func errorCode(err error) silo.Code {
	var se *silo.Error
	if errors.As(err, &se) {
		return se.Code
	}
	if errors.Is(err, context.Canceled) {
		return silo.CodeUnavailable
	}
	return silo.CodeInternal
}

type usageError struct{ msg string }

// flagError is what a user reads for an error of the flag parser: for a
// value that does not parse, what the flag takes, in place of the parser's
// own text (a strconv or time error).
func flagError(err error) string {
	var iv *pflag.InvalidValueError
	if !errors.As(err, &iv) {
		return err.Error()
	}
	want := map[string]string{
		"int":      "a whole number",
		"int64":    "a whole number",
		"uint":     "a whole number, 0 or more",
		"uint64":   "a whole number, 0 or more",
		"float64":  "a number",
		"bool":     "true or false",
		"duration": "a duration; write a number and a unit, e.g. 90s, 30m or 2h",
	}[iv.GetFlag().Value.Type()]
	if want == "" {
		return err.Error()
	}
	return fmt.Sprintf("--%s %q is not %s", iv.GetFlag().Name, iv.GetValue(), want)
}

// statusError ends a command with a documented exit status other than 1
// or 2 (see the command's help), after printing msg. An outcome is not an
// error: the command printed its result on stdout, and nothing more is
// printed.
type statusError struct {
	code    int
	msg     string
	outcome bool
}

// outputFlag returns the value the last --output (-o) in args gives, ""
// if none: what the call asked for, read without the flag parser, for an
// error that comes before the flags are parsed.
func outputFlag(args []string) string {
	out := ""
	for i, a := range args {
		switch {
		case a == "--":
			return out
		case (a == "--output" || a == "-o") && i+1 < len(args):
			out = args[i+1]
		case strings.HasPrefix(a, "--output="):
			out = strings.TrimPrefix(a, "--output=")
		case strings.HasPrefix(a, "-o") && !strings.HasPrefix(a, "--"):
			out = strings.TrimPrefix(strings.TrimPrefix(a, "-o"), "=")
		}
	}
	return out
}

func (s statusError) Error() string { return s.msg }

func (u usageError) Error() string { return u.msg }

// userMessage is the one sentence a user sees for err.
func userMessage(err error) string {
	var ue *server.UnreachableError
	if errors.As(err, &ue) && !errors.Is(err, context.Canceled) {
		// A request to the server that got no answer: say where and why.
		return fmt.Sprintf("cannot reach the silo server at %s (%s); check that silo server runs there and that --server (or $SILO_SERVER) is right", ue.Server, rootCause(ue.Err))
	}
	var se *silo.Error
	if errors.As(err, &se) && se.Message != "" {
		return se.Message
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	return err.Error()
}

// followInterrupted is the error of a command interrupted (Ctrl-C) while
// it followed a rollout a server runs, which goes on there: its message
// says so and what to do, where other interrupted commands say only
// "interrupted".
type followInterrupted struct {
	id  string
	of  string // the rollout a rollback undoes; "" for a rollout
	err error
}

func (e followInterrupted) Error() string {
	if e.of == "" {
		return "interrupted; " + server.GoesOn(e.id)
	}
	// A rollback is not rolled back: the advice names no rollback.
	return fmt.Sprintf("interrupted; rollout %s, the rollback of %s, goes on in the server; run silo rollout status %s --follow to reattach, or silo rollout abort %s to stop it (accounts stay where they are then)", e.id, e.of, e.id, e.id)
}
func (e followInterrupted) Unwrap() error { return e.err }

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
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Sprintf("%s; see %s --help", flagError(err), cmd.CommandPath())}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.dataDir, "data-dir", envOr("SILO_DATA_DIR", ".silo"), "directory holding the control-plane state and the local accounts ($SILO_DATA_DIR)")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	pf.StringVarP(&g.file, "file", "f", "silo.yaml", "the stack spec")
	pf.StringVar(&g.server, "server", "", "control-plane server URL; commands run there instead of on the local data dir ($SILO_SERVER)")
	pf.StringVar(&g.store, "store", os.Getenv("SILO_STORE"), "control-plane store: empty for SQLite in the data dir, or postgres://user@host:5432/db?sslmode=... for PostgreSQL shared by several servers ($SILO_STORE)")
	// Help shows the default $SILO_STORE gives without its password.
	pf.Lookup("store").DefValue = redact(g.store)
	pf.StringVar(&g.token, "token", "", "operator token for --server ($SILO_TOKEN; default: read from the data dir)")
	pf.StringVar(&g.prov.name, "provider", os.Getenv("SILO_PROVIDER"), "where accounts live: local (default, in the data dir) or aws (an AWS Organizations member account each); saved in the data dir, later commands follow ($SILO_PROVIDER)")
	pf.StringVar(&g.prov.region, "aws-region", os.Getenv("SILO_AWS_REGION"), "AWS provider: the organization's region, e.g. eu-west-1 ($SILO_AWS_REGION)")
	pf.StringVar(&g.prov.email, "aws-email", os.Getenv("SILO_AWS_EMAIL"), "AWS provider: the mailbox member accounts are registered under, plus-addressed per account ($SILO_AWS_EMAIL)")
	pf.StringVar(&g.prov.principal, "aws-principal", os.Getenv("SILO_AWS_PRINCIPAL"), "AWS provider: ARN of silo's principal in the management account; each account then gets a deployer role trusted by it alone ($SILO_AWS_PRINCIPAL)")
	pf.StringVar(&g.prov.dataPrincipal, "aws-data-principal", os.Getenv("SILO_AWS_DATA_PRINCIPAL"), "AWS provider: ARN of the data plane's principal, trusted by each account's data role ($SILO_AWS_DATA_PRINCIPAL)")
	pf.StringVar(&g.prov.poolSize, "aws-pool-size", os.Getenv("SILO_AWS_POOL_SIZE"), "AWS provider: accounts the warm pool keeps created ahead for onboarding, refilled by silo server (default 0: none) ($SILO_AWS_POOL_SIZE)")
	pf.StringVar(&g.prov.lambdaHost, "aws-lambda-host", os.Getenv("SILO_AWS_LAMBDA_HOST"), "AWS provider: the silo Lambda host (cmd/silo-lambda) built for linux; functions then run on Lambda behind each tenant's HTTP API, not in the server (default: in the server) ($SILO_AWS_LAMBDA_HOST)")
	pf.StringVar(&g.prov.lambdaArch, "aws-lambda-arch", os.Getenv("SILO_AWS_LAMBDA_ARCH"), "AWS provider: the Lambda architecture, arm64 or x86_64 (default: the one the host is built for, read from the file) ($SILO_AWS_LAMBDA_ARCH)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		g.noteNewDataDir(cmd)
		g.command = cmd.CommandPath()
		for _, name := range providerFlagNames {
			if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
				g.provFlag = "--" + name
				break
			}
		}
		if g.output != "text" && g.output != "json" && (g.output != "csv" || cmd.Name() != "usage") {
			return usageError{fmt.Sprintf("--output must be text or json (csv for silo usage), not %q", g.output)}
		}
		return g.mustExistForReading(cmd)
	}
	root.AddCommand(
		newUpCmd(g), newInitCmd(g), newStoreCmd(g),
		newTenantCmd(g), newEnvCmd(g),
		newPlanCmd(g), newApplyCmd(g), newDriftCmd(g), newDoctorCmd(g), newOrphanCmd(g), newBuildCmd(g),
		newKeysCmd(g), newSecretCmd(g), newAuditCmd(g), newRotateCmd(g),
		newVerifyCmd(g), newReportCmd(g), newPoolCmd(g),
		newDevCmd(g), newLogsCmd(g),
		newServerCmd(g), newDeployCmd(g), newRolloutCmd(g), newReleaseCmd(g),
		newVersionCmd(g), newUsageCmd(g), newLimitsCmd(g),
	)
	usageErrors(root)
	return root
}

// annotationGroup marks a command that only holds subcommands.
const annotationGroup = "silo.group"

// usageErrors makes every wrong call a usage error (exit 2) that names the
// command's help: an argument check's error gets the hint, and a command group
// (a command that only holds subcommands) refuses an unknown or missing
// subcommand instead of printing its help and exiting 0.
func usageErrors(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		usageErrors(c)
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			err := check(c, args)
			var ue usageError
			if err == nil || errors.As(err, &ue) {
				return err
			}
			return usageError{fmt.Sprintf("%s: %s; see %s --help", c.CommandPath(), err, c.CommandPath())}
		}
	}
	if cmd.HasParent() && cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Annotations = map[string]string{annotationGroup: "true"}
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Sprintf("%s needs a subcommand; see %s --help", cmd.CommandPath(), cmd.CommandPath())}
			}
			return unknownCommand(cmd, args[0])
		}
	}
}

// unknownCommand is the one-line usage error for name, which is not a
// subcommand of cmd, naming the subcommands it is close to.
func unknownCommand(cmd *cobra.Command, name string) usageError {
	msg := fmt.Sprintf("unknown command %q for %s", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which only its own message sets
	}
	if near := cmd.SuggestionsFor(name); len(near) > 0 {
		for i, n := range near {
			near[i] = cmd.CommandPath() + " " + n
		}
		return usageError{fmt.Sprintf("%s; did you mean %s? see %s --help", msg, strings.Join(near, " or "), cmd.CommandPath())}
	}
	return usageError{fmt.Sprintf("%s; see %s --help", msg, cmd.CommandPath())}
}

// unknownRootCommand returns the name in cobra's error for a first word
// that is no command of silo's.
func unknownRootCommand(err error) (string, bool) {
	var name string
	if _, scanErr := fmt.Sscanf(err.Error(), "unknown command %q", &name); scanErr != nil {
		return "", false
	}
	return name, true
}

// needsInstallation lists the commands that work on an installation that
// exists: those that only read it, and those that change only what it
// already holds (an account, a key, a rollout). Run outside an installation
// they say so instead of creating an empty data dir to read from or to fail
// in. (silo logs parses its own flags and checks after parsing them.) The
// commands not listed create an installation (silo up, silo tenant create,
// silo apply, ...) or need no data dir (silo report verify, silo version).
var needsInstallation = union(readOnly, changesHeld)

// readOnly lists the commands that only read an installation: they never
// change it, nor its saved provider settings (openProvider).
var readOnly = map[string]bool{
	"silo tenant list": true, "silo tenant show": true, "silo keys list": true,
	"silo plan": true, "silo drift": true, "silo verify": true, "silo doctor": true,
	"silo audit list": true, "silo audit verify": true, "silo audit checkpoint": true,
	"silo release list": true, "silo release show": true,
	"silo rollout list": true, "silo rollout status": true,
	"silo report": true, "silo report key": true,
	"silo env list": true, "silo usage": true, "silo limits show": true, "silo secret list": true,
}

// changesHeld lists the commands that change only what an installation
// already holds (an account, a key, a rollout).
var changesHeld = map[string]bool{
	"silo tenant update": true, "silo tenant suspend": true, "silo tenant resume": true, "silo tenant delete": true,
	"silo keys create": true, "silo keys revoke": true, "silo keys rotate": true, "silo keys remove": true, "silo secret set": true,
	"silo secret delete": true, "silo limits set": true, "silo limits clear": true,
	"silo env delete": true, "silo env reap": true, "silo orphan destroy": true,
	"silo rotate data-key": true, "silo rotate master-key": true, "silo report key rotate": true,
	"silo audit witness": true,
	"silo rollout pause": true, "silo rollout resume": true, "silo rollout abort": true, "silo rollout rollback": true,
}

func union(sets ...map[string]bool) map[string]bool {
	out := map[string]bool{}
	for _, s := range sets {
		for k := range s {
			out[k] = true
		}
	}
	return out
}

// mustExistForReading refuses a command of needsInstallation on a data dir
// that does not exist (unless it goes to a server).
func (g *globals) mustExistForReading(cmd *cobra.Command) error {
	if !needsInstallation[cmd.CommandPath()] {
		return nil
	}
	return g.requireInstallation()
}

// requireInstallation returns an error unless the command goes to a server
// or the data dir exists. With --store too the data dir must exist: it holds
// the installation's keys, witness, provider choice and local accounts, so a
// command on a data dir that does not exist would read (or make) another
// installation beside the one the store serves.
func (g *globals) requireInstallation() error {
	if g.server != "" || os.Getenv("SILO_SERVER") != "" {
		return nil
	}
	if _, err := os.Stat(g.dataDir); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return silo.Errorf(silo.CodeNotFound, "no silo installation in %s (the directory does not exist); run this in your project's directory, pass --data-dir or --server, or start one with silo tenant create or silo up", g.dataDir)
}

// noteNewDataDir remembers that the data dir does not exist before cmd
// runs, so that forgetNewDataDir can take back what a failed cmd created.
// (A command that parses its own flags is left out: its data dir is not
// known yet.)
func (g *globals) noteNewDataDir(cmd *cobra.Command) {
	if cmd.DisableFlagParsing || g.server != "" || os.Getenv("SILO_SERVER") != "" {
		return
	}
	if _, err := os.Lstat(g.dataDir); errors.Is(err, os.ErrNotExist) {
		g.newDataDir = g.dataDir
	}
}

// forgetNewDataDir removes the data dir a failed command created, so that
// the failure changes nothing, as long as it holds no account: no account
// in its registry (state.db, or the --store database) or its local
// provider, and no running server. A saved provider choice goes with it:
// an AWS account silo creates is registered before it is asked for, so an
// empty registry means none was (the warm pool's accounts, which hold
// nothing, are found by any data dir with the same settings). A registry
// that cannot be read keeps the data dir.
func (g *globals) forgetNewDataDir() {
	dir := g.newDataDir
	if dir == "" || dir != g.dataDir {
		return
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return
	}
	if _, err := os.Lstat(filepath.Join(dir, platform.ServerFile)); !errors.Is(err, os.ErrNotExist) {
		return
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "accounts", "accounts")); len(entries) > 0 || (err != nil && !errors.Is(err, os.ErrNotExist)) {
		return
	}
	if n, err := g.registryAccounts(dir); n > 0 || err != nil {
		return
	}
	os.RemoveAll(dir)
}

// registryAccounts counts the accounts in the registry of the data dir
// dir: the --store database when one is given, else its state.db.
func (g *globals) registryAccounts(dir string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := openStore(ctx, g.store)
	if err != nil {
		return 0, err
	}
	if st != nil {
		defer st.Close()
	}
	return registeredAccounts(ctx, dir, st)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// exactArgs is cobra.ExactArgs with a usage error that names the arguments
// and the command's own help.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Sprintf("%s needs %s; see %s --help", cmd.CommandPath(), names, cmd.CommandPath())}
		}
		return nil
	}
}

// accountArgs is exactArgs for a command whose first argument is an account
// ID: one that is not an ID is a wrong call (exit 2, idArg) before the
// command runs.
func accountArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := exactArgs(n, names)(cmd, args); err != nil {
			return err
		}
		_, err := idArg(args[0])
		return err
	}
}

// maxArgs is cobra.MaximumNArgs with a usage error like exactArgs'.
func maxArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageError{fmt.Sprintf("%s takes %s; see %s --help", cmd.CommandPath(), names, cmd.CommandPath())}
		}
		return nil
	}
}

// idArg parses an account ID given as an argument. An argument that is not
// an ID is a wrong call (exit 2), as a flag value that does not parse is;
// an ID that names no account is the command's failure (exit 1).
func idArg(s string) (silo.AccountID, error) {
	id, err := silo.ParseID(s)
	if err != nil {
		return "", usageError{silo.UserMessage(err)}
	}
	return id, nil
}

// tenantIDArg is idArg for the ID of a new account: reserved names such as
// production are refused too.
func tenantIDArg(s string) (silo.TenantID, error) {
	id, err := silo.ParseTenantID(s)
	if err != nil {
		return "", usageError{silo.UserMessage(err)}
	}
	return id, nil
}
