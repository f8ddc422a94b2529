package main

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

func newEnvCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Create, list and delete environments: throwaway accounts for tests and demos",
		Long: `An environment is an account of kind environment, created from the current release, optionally
seeded with fixture data, that lives for a TTL: the server (silo up, silo server) tears it down
when it expires, and checks that nothing of it is left in the provider. silo env delete also
deletes a developer account (dev-NAME, made by silo dev and silo up).`,
	}
	cmd.AddCommand(newEnvCreate(g), newEnvList(g), newEnvDelete(g), newEnvReap(g))
	return cmd
}

func newEnvCreate(g *globals) *cobra.Command {
	var (
		kind   string
		ttlArg typedDuration
		params []string
		seed   string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --kind test|demo --ttl DURATION",
		Short: "Create an environment from the current release, with a TTL and an API key",
		Long: `Create an environment account NAME on the current release (the first time: the release built
from silo.yaml). --seed DIR loads fixture data: DIR/tables/<table>.json holds a JSON object of
key → value for each table, DIR/buckets/<bucket>/ the files of each bucket; a DIR that holds
neither, or names a table or bucket silo.yaml does not declare, is refused before anything is
created, and other files in DIR are named and ignored. With
--server the environment is created on the server, and the seed files (at most 32 MiB) are
uploaded with the request.`,
		Example: `  silo env create e2e-417 --kind test --ttl 2h
  silo env create demo-acme --kind demo --ttl 72h --param plan=enterprise --seed ./fixtures/demo`,
		Args: exactArgs(1, "an environment name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ttl := ttlArg.d
			ps, err := parseParams(params)
			if err != nil {
				return err
			}
			if kind != platform.EnvTest && kind != platform.EnvDemo {
				return usageError{fmt.Sprintf("--kind must be test or demo, not %q", kind)}
			}
			if ttl == 0 && cmd.Flags().Changed("ttl") { // given, as 0s: not "missing"
				return usageError{"--ttl must be positive, e.g. 2h, not 0s; see silo env create --help"}
			}
			if err := control.CheckTTL(silo.KindEnvironment, ttl); err != nil {
				// The rule speaks of the duration it read (-1h0m0s): say
				// what the user typed (-1h) instead.
				msg := strings.Replace(silo.UserMessage(err), "not "+ttl.String(), fmt.Sprintf("not %s", ttlArg.text), 1)
				return usageError{"--" + msg + "; see silo env create --help"}
			}
			if _, err := tenantIDArg(args[0]); err != nil {
				return err
			}
			var lay server.SeedLayout
			if seed != "" {
				// Before anything is created or opened: a seed directory
				// that loads nothing changes nothing.
				if lay, err = server.ScanSeed(seed); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			api, done, err := openAPI(ctx, g)
			if err != nil {
				return err
			}
			defer done()
			e, err := api.CreateEnv(ctx, server.EnvRequest{Name: args[0], Purpose: kind, TTL: ttl, Params: ps, SeedDir: seed})
			if err != nil && ctx.Err() != nil {
				_, remote := api.(remoteAPI)
				return interruptedCreate(ctx, api, remote, silo.AccountID(args[0]), silo.KindEnvironment, true)
			}
			if err != nil && seed != "" {
				return undeployedSeed(err, g.file, seed)
			}
			if err != nil {
				return err
			}
			if len(lay.Ignored) > 0 {
				fmt.Fprintf(g.stderr, "ignored in %s: %s (silo loads only tables/<table>.json and buckets/<bucket>/<key>)\n", seed, server.SeedList(lay.Ignored))
			}
			return g.print(e, func(w io.Writer) {
				fmt.Fprintf(w, "created %s environment %s (release %s), expires %s (in %s)\n", kind, e.Account.ID, e.Account.Release,
					e.Account.Expires.Local().Format(time.DateTime), ttlArg.text)
				if seed != "" {
					fmt.Fprintf(w, "seeded from %s: %s, %s\n", seed, plural(len(lay.Tables), "table file"), plural(len(lay.Objects), "bucket object"))
				}
				printURL(w, g, e.Account.ID)
				fmt.Fprintf(w, "API key (shown once, store it now): %s\n", e.Key)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&kind, "kind", platform.EnvTest, "what the environment is for: test or demo")
	f.Var(&ttlArg, "ttl", "time to live (required), e.g. 2h, at most 720h; the server tears the environment down after it")
	f.StringArrayVarP(&params, "param", "p", nil, "tenant parameter NAME=VALUE (repeatable)")
	f.StringVar(&seed, "seed", "", "directory of fixture data to load")
	return cmd
}

// typedDuration is a duration flag that keeps the text it was given, for
// messages that echo it as the user wrote it.
type typedDuration struct {
	d    time.Duration
	text string
}

func (t *typedDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	t.d, t.text = d, s
	return nil
}

// String is the text given, "" (no default shown in the help) if none.
func (t *typedDuration) String() string { return t.text }

// Type is pflag's "duration", so that a value that does not parse is
// named as not a duration (flagError).
func (t *typedDuration) Type() string { return "duration" }

func newEnvList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List environments and developer accounts (what silo env delete takes) with their purpose, state and expiry",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, done, err := openAPI(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer done()
			envs, err := api.Envs(cmd.Context())
			if err != nil {
				return err
			}
			devs, err := api.Accounts(cmd.Context(), store.Filter{Kind: silo.KindDeveloper})
			if err != nil {
				return err
			}
			envs = append(append([]silo.Account{}, envs...), devs...)
			now := time.Now()
			return g.print(envs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tPURPOSE\tSTATE\tRELEASE\tPARAMS\tEXPIRES")
				for _, a := range envs {
					exp := "-"
					if a.Expires != nil {
						if left := a.Expires.Sub(now); left > 0 {
							exp = fmt.Sprintf("%s (in %s)", a.Expires.Local().Format(time.DateTime), left.Round(time.Second))
						} else {
							exp = "expired; torn down by the next reaper run"
						}
					}
					purpose := orDash(a.Name)
					if a.Kind == silo.KindDeveloper {
						purpose = "developer"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, purpose, a.State, orDash(a.Release), formatParams(a.Params), exp)
				}
				tw.Flush()
				if len(envs) == 0 {
					fmt.Fprintln(w, "(none)")
				}
			})
		},
	}
}

func newEnvDelete(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Tear an environment or a developer account down now and verify nothing of it is left",
		Long: `Tear an environment or a developer account (dev-NAME) down now: its data key is destroyed,
its resources, data and logs are removed, and silo checks that the provider holds nothing of it.
An environment goes without asking (it is made to be torn down, by scripts too); a developer
account holds a developer's own work, so at a terminal it asks for the name to be typed, and
elsewhere it needs --yes. Tenants are deleted with silo tenant delete.`,
		Example: `  silo env delete e2e-417
  silo env delete dev-alice --yes`,
		Args: exactArgs(1, "an environment name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id, err := silo.ParseID(args[0])
			if err != nil {
				return err
			}
			api, done, err := openAPI(ctx, g)
			if err != nil {
				return err
			}
			defer done()
			if !yes {
				// Ask only about a developer account that may be deleted;
				// the delete itself says why not otherwise.
				accts, err := api.Accounts(ctx, store.Filter{Kind: silo.KindDeveloper})
				if err != nil {
					return err
				}
				if slices.ContainsFunc(accts, func(a silo.Account) bool { return a.ID == id }) {
					if err := g.confirm(false, fmt.Sprintf("deleting the developer account %s destroys its account and all its data", id), string(id)); err != nil {
						return err
					}
				}
			}
			if err := api.DeleteEnv(ctx, id); err != nil {
				return err
			}
			return g.print(map[string]any{"deleted": id, "verified": true}, func(w io.Writer) {
				fmt.Fprintf(w, "deleted %s; verified: the provider holds nothing of it\n", id)
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "delete a developer account without asking")
	return cmd
}

func newEnvReap(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reap",
		Short: "Tear down every expired environment now (the server does this on its own)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := localOnly(g, "the server tears expired environments down by itself"); err != nil {
				return err
			}
			p, err := openPlatform(cmd.Context(), g, "", "")
			if err != nil {
				return err
			}
			defer p.Close()
			gone, err := p.Reap(cmd.Context())
			if gone == nil {
				gone = []silo.AccountID{}
			}
			if perr := g.print(map[string]any{"deleted": gone}, func(w io.Writer) {
				for _, id := range gone {
					fmt.Fprintf(w, "expired: deleted %s; verified: the provider holds nothing of it\n", id)
				}
				if len(gone) == 0 {
					fmt.Fprintln(w, "no expired environments")
				}
			}); perr != nil {
				return perr
			}
			return err
		},
	}
}

// printURL prints where account id is served: the gateway of the silo up or
// silo server serving this data dir, as it announced itself, or, when none
// is running, how to serve it.
func printURL(w io.Writer, g *globals, id silo.AccountID) {
	rs, ok := platform.Running(g.dataDir)
	if !ok || rs.Gateway == "" || rs.BaseDomain == "" {
		fmt.Fprintf(w, "URL  served once silo up or silo server runs on this data dir (on silo up's default --listen 127.0.0.1:8080: http://%s.localhost:8080/)\n", id)
		return
	}
	u, err := url.Parse(rs.Gateway)
	if err != nil {
		return
	}
	_, port, _ := net.SplitHostPort(u.Host)
	fmt.Fprintf(w, "URL  http://%s/  (or %s/t/%s/)\n", net.JoinHostPort(string(id)+"."+rs.BaseDomain, port), rs.Gateway, id)
}

// plural says n nouns: "1 table file", "2 table files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// undeployedSeed adds to err, a seed directory refused for naming tables
// or buckets the current release does not declare, that silo.yaml
// declares them: it is not deployed yet. Any other err is returned as it
// is.
func undeployedSeed(err error, file, seed string) error {
	if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(silo.UserMessage(err), " not declared in ") {
		return err
	}
	st, ferr := spec.Load(file)
	if ferr != nil || platform.CheckSeed(st, "silo.yaml", false, seed) != nil {
		return err
	}
	return silo.Errorf(silo.CodeInvalid, "%s; %s declares them, but is not deployed: deploy it first (silo deploy)", silo.UserMessage(err), file)
}
