package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// providerFile, in the data dir, saves the provider the data dir's accounts
// are on, once it is not the default (local): `silo server --provider aws
// ...` once, and every later command on the data dir uses the same.
const providerFile = "provider.json"

// providerChoice is the provider a data dir uses.
type providerChoice struct {
	Name string     `json:"provider"` // "local" or "aws"
	AWS  *awsChoice `json:"aws,omitempty"`
}

// awsChoice is what the AWS provider needs besides the credentials, which
// come from the standard AWS sources and are never saved.
type awsChoice struct {
	Region        string `json:"region"`
	Email         string `json:"email"`
	Principal     string `json:"principal,omitempty"`
	DataPrincipal string `json:"data_principal,omitempty"`
	// PoolSize is how many accounts the warm pool keeps created ahead.
	PoolSize int `json:"pool_size,omitempty"`
	// LambdaHost, if set, is the path of the silo Lambda host built for
	// linux and LambdaArch: functions then run on Lambda (lambdahost.go).
	LambdaHost string `json:"lambda_host,omitempty"`
	LambdaArch string `json:"lambda_arch,omitempty"`
}

// providerFlags are --provider and the --aws-* flags (or their $SILO_*
// variables) as given; empty when not given.
type providerFlags struct {
	name, region, email, principal, dataPrincipal string
	poolSize, lambdaHost, lambdaArch              string
}

// providerFlagNames are the flags of providerFlags.
var providerFlagNames = []string{"provider", "aws-region", "aws-email", "aws-principal", "aws-data-principal", "aws-pool-size", "aws-lambda-host", "aws-lambda-arch"}

func (f providerFlags) awsGiven() bool {
	return f.region != "" || f.email != "" || f.principal != "" || f.dataPrincipal != "" || f.poolSize != "" || f.lambdaHost != "" || f.lambdaArch != ""
}

// awsConfig is the AWS provider's configuration for the choice c of data
// dir dataDir, but for the AWS SDK's, which Load finds.
func awsConfig(c awsChoice, dataDir string) siloaws.Config {
	return siloaws.Config{Email: c.Email, Principal: c.Principal, DataPrincipal: c.DataPrincipal, PoolSize: c.PoolSize, Functions: functionCode(c, dataDir)}
}

// loadAWS builds the AWS provider in region with cfg; tests point it at an
// emulated organization.
var loadAWS = func(ctx context.Context, region string, cfg siloaws.Config) (provider.Provider, error) {
	p, err := siloaws.Load(ctx, region, cfg)
	if err != nil {
		return nil, err
	}
	if err := p.Check(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// readChoice reads the data dir's saved choice; the zero choice if none.
func readChoice(dataDir string) (providerChoice, error) {
	var c providerChoice
	b, err := os.ReadFile(filepath.Join(dataDir, providerFile))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return c, nil // no choice saved; a data dir that is not a directory is refused when opened
	}
	if err != nil {
		return c, silo.Errorf(silo.CodeUnavailable, "cannot read the data dir's provider settings (%s) in %s: %v; run silo as the user that owns the data dir", providerFile, dataDir, durable.Cause(err))
	}
	if err := json.Unmarshal(b, &c); err != nil || (c.Name != "local" && c.Name != "aws") || (c.Name == "aws" && c.AWS == nil) {
		return c, silo.Errorf(silo.CodeInvalid, "the data dir's provider settings (%s) in %s are damaged (want {\"provider\": \"local\"} or {\"provider\": \"aws\", \"aws\": {...}}); fix the file, or pass --provider with its settings", providerFile, dataDir)
	}
	return c, nil
}

// resolveChoice merges the flags into the saved choice: the flags win, and
// the AWS settings not given keep their saved values.
//
// # Errors
//
// CodeInvalid for an unknown provider, --aws-* flags without the AWS
// provider, the AWS provider without a region or an email, or a silo
// Lambda host that is missing or not built for linux and its architecture.
func resolveChoice(saved providerChoice, f providerFlags) (providerChoice, error) {
	c := saved
	if c.Name == "" {
		c.Name = "local"
	}
	if f.name != "" {
		c.Name = f.name
	}
	switch c.Name {
	case "local":
		if f.awsGiven() {
			return c, silo.Errorf(silo.CodeInvalid, "the --aws-* settings apply to the AWS provider; pass --provider aws with them")
		}
		c.AWS = nil
		return c, nil
	case "aws":
	default:
		return c, usageError{fmt.Sprintf("--provider must be local or aws, not %q", c.Name)}
	}
	a := awsChoice{}
	if saved.Name == "aws" && saved.AWS != nil {
		a = *saved.AWS
	}
	for _, s := range []struct{ flag, into *string }{{&f.region, &a.Region}, {&f.email, &a.Email}, {&f.principal, &a.Principal}, {&f.dataPrincipal, &a.DataPrincipal}} {
		if *s.flag != "" {
			*s.into = *s.flag
		}
	}
	if f.poolSize != "" {
		n, err := strconv.Atoi(f.poolSize)
		if err != nil || n < 0 || n > maxPoolSize {
			return c, silo.Errorf(silo.CodeInvalid, "--aws-pool-size must be a whole number from 0 to %d, not %q", maxPoolSize, f.poolSize)
		}
		a.PoolSize = n
	}
	if f.lambdaHost != "" {
		abs, err := filepath.Abs(f.lambdaHost)
		if err != nil {
			return c, silo.Errorf(silo.CodeInvalid, "--aws-lambda-host %s: %v", f.lambdaHost, err)
		}
		a.LambdaHost = abs // later commands may run from another directory
	}
	if f.lambdaArch != "" {
		a.LambdaArch = f.lambdaArch
	}
	if a.LambdaArch == "" && a.LambdaHost != "" {
		a.LambdaArch = elfArch(a.LambdaHost)
	}
	if _, ok := lambdaMachines[a.LambdaArch]; a.LambdaArch != "" && !ok {
		return c, silo.Errorf(silo.CodeInvalid, "--aws-lambda-arch must be arm64 or x86_64, not %q", a.LambdaArch)
	}
	switch {
	case a.Region == "":
		return c, silo.Errorf(silo.CodeInvalid, "the AWS provider needs a region: pass --aws-region (or set SILO_AWS_REGION), e.g. --aws-region eu-west-1")
	case a.Email == "":
		return c, silo.Errorf(silo.CodeInvalid, "the AWS provider needs an email address to register member accounts under: pass --aws-email (or set SILO_AWS_EMAIL), e.g. --aws-email aws-accounts@example.com")
	case a.LambdaArch != "" && a.LambdaHost == "":
		return c, silo.Errorf(silo.CodeInvalid, "--aws-lambda-arch applies to the silo Lambda host: pass --aws-lambda-host with it")
	}
	if a.LambdaHost != "" {
		if _, err := readLambdaHost(a.LambdaHost, a.LambdaArch); err != nil {
			return c, err
		}
	}
	c.AWS = &a
	return c, nil
}

// openProvider returns the provider the data dir uses (nil for local: the
// platform builds it) and a function that saves the choice once the
// platform has opened. st is the control-plane store given with --store,
// nil for SQLite in the data dir.
//
// # Errors
//
// The errors of resolveChoice and of building the provider (no
// credentials, AWS unreachable); CodeConflict when the flags name another
// provider than the one the data dir's accounts are on. Nothing is written
// on error.
func openProvider(ctx context.Context, g *globals, st store.Store) (provider.Provider, func() error, error) {
	noop := func() error { return nil }
	saved, err := readChoice(g.dataDir)
	if err != nil {
		return nil, noop, err
	}
	c, err := resolveChoice(saved, g.prov)
	if err != nil {
		return nil, noop, err
	}
	if err := refuseSwitch(ctx, g, st, saved.Name, c.Name); err != nil {
		return nil, noop, err
	}
	if err := refuseChange(ctx, g, st, saved, c); err != nil {
		return nil, noop, err
	}
	save := func() error {
		if c.Name == "local" && saved.Name == "" {
			return nil // the default needs no file
		}
		b, _ := json.MarshalIndent(c, "", "  ")
		if err := durable.WriteFile(filepath.Join(g.dataDir, providerFile), append(b, '\n'), durable.Options{}); err != nil {
			return silo.Errorf(silo.CodeUnavailable, "cannot save the data dir's provider settings (%s) in %s: %v; make the data dir writable", providerFile, g.dataDir, durable.Cause(err))
		}
		if changed := changedSettings(saved, c); saved.Name != "" && len(changed) > 0 {
			fmt.Fprintf(g.stderr, "note: the data dir now saves %s; every later command on it uses that\n", strings.Join(changed, ", "))
		}
		return nil
	}
	if c.Name == "local" {
		return nil, save, nil
	}
	p, err := loadAWS(ctx, c.AWS.Region, awsConfig(*c.AWS, g.dataDir))
	if err != nil {
		return nil, noop, err
	}
	return p, save, nil
}

// deployCommands are the commands that deploy every account's functions:
// the only ones that may change where they run (the Lambda host) once the
// data dir holds accounts.
var deployCommands = map[string]bool{"silo up": true, "silo server": true, "silo deploy": true, "silo apply": true}

// refuseChange refuses a flag that changes a saved provider setting where
// the change is not the command's to make: any change from a command
// that only reads (readOnly), a changed region or email on a data dir
// whose registry holds accounts (their resources live in the saved region,
// their AWS accounts in the organization registered under the saved
// email), and a changed Lambda host on such a data dir from a command
// that does not deploy every account's functions (deployCommands). A
// first choice, on a data dir with none saved, is no change.
//
// # Errors
//
// CodeInvalid or CodeConflict naming the setting and what to do.
func refuseChange(ctx context.Context, g *globals, st store.Store, saved, c providerChoice) error {
	changed := changedSettings(saved, c)
	if saved.Name == "" || len(changed) == 0 {
		return nil
	}
	if readOnly[g.command] {
		return silo.Errorf(silo.CodeInvalid, "%s only reads, and does not change the data dir's saved provider settings (%s); drop the flag to use the saved settings", g.command, strings.Join(changed, ", "))
	}
	if saved.Name != "aws" || c.Name != "aws" {
		return nil // a switch of provider: refuseSwitch
	}
	a, b := *saved.AWS, *c.AWS
	moved := a.Region != b.Region || a.Email != b.Email
	host := a.LambdaHost != b.LambdaHost || a.LambdaArch != b.LambdaArch
	if !moved && (!host || deployCommands[g.command]) {
		return nil
	}
	n, err := registeredAccounts(ctx, g.dataDir, st)
	if err != nil || n == 0 {
		return err
	}
	switch {
	case a.Region != b.Region:
		return silo.Errorf(silo.CodeConflict, "the %d account(s) of %s keep their resources in AWS region %s; silo does not move them to %s: drop --aws-region, or use another --data-dir (and --store) for %s", n, g.dataDir, a.Region, b.Region, b.Region)
	case a.Email != b.Email:
		return silo.Errorf(silo.CodeConflict, "the %d account(s) of %s are in the AWS organization registered under %s; silo does not move them to %s: drop --aws-email, or use another --data-dir (and --store) for it", n, g.dataDir, a.Email, b.Email)
	}
	var lambda []string
	for _, ch := range changed {
		if strings.HasPrefix(ch, "Lambda ") {
			lambda = append(lambda, ch)
		}
	}
	return silo.Errorf(silo.CodeConflict, "a new Lambda host (%s) changes where the functions of the %d account(s) of %s run, so only a command that deploys them saves it (silo deploy, silo apply, silo up or silo server): give the flag to one of those, or drop it here", strings.Join(lambda, ", "), n, g.dataDir)
}

// changedSettings names the provider settings that differ between the
// saved choice and c ("region eu-west-1 (was us-east-1)").
func changedSettings(saved, c providerChoice) []string {
	var out []string
	diff := func(name, was, now string) {
		if was != now {
			out = append(out, fmt.Sprintf("%s %s (was %s)", name, orNone(now), orNone(was)))
		}
	}
	diff("provider", saved.Name, c.Name)
	var a, b awsChoice
	if saved.AWS != nil {
		a = *saved.AWS
	}
	if c.AWS != nil {
		b = *c.AWS
	}
	diff("region", a.Region, b.Region)
	diff("email", a.Email, b.Email)
	diff("principal", a.Principal, b.Principal)
	diff("data principal", a.DataPrincipal, b.DataPrincipal)
	diff("pool size", strconv.Itoa(a.PoolSize), strconv.Itoa(b.PoolSize))
	diff("Lambda host", a.LambdaHost, b.LambdaHost)
	diff("Lambda architecture", a.LambdaArch, b.LambdaArch)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// refuseSwitch refuses to put a data dir's accounts on another provider
// than the one they are on: the saved one, or, with no saved choice, the
// local provider if its directory holds accounts. A data dir without a
// saved choice whose local directory is empty may take any provider: a
// new one, or a second server's on a shared PostgreSQL store.
//
// # Errors
//
// CodeConflict naming both providers and what to do.
func refuseSwitch(ctx context.Context, g *globals, st store.Store, saved, want string) error {
	n := 0
	switch {
	case saved == want || (saved == "" && want == "local"):
		return nil
	case saved == "":
		saved = "local"
		entries, err := os.ReadDir(filepath.Join(g.dataDir, "accounts", "accounts"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read the local accounts: %w", err)
		}
		n = len(entries)
	default:
		var err error
		if n, err = registeredAccounts(ctx, g.dataDir, st); err != nil {
			return err
		}
	}
	if n == 0 {
		return nil
	}
	return silo.Errorf(silo.CodeConflict, "the %d account(s) of %s are on the %s provider; silo does not move them to the %s provider: use another --data-dir (and --store) for it, or drop --provider", n, g.dataDir, saved, want)
}

// registeredAccounts counts the accounts (deleted ones left out) of the
// data dir's control plane: st if given, else state.db if it exists.
func registeredAccounts(ctx context.Context, dataDir string, st store.Store) (int, error) {
	if st == nil {
		path := filepath.Join(dataDir, "state.db")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return 0, err
		}
		defer db.Close()
		st = db
	}
	var n int
	err := st.View(ctx, func(tx store.Tx) error {
		as, err := tx.Accounts(store.Filter{})
		n = len(as)
		return err
	})
	return n, err
}
