package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/usage"
)

// demoTenant is a tenant silo up creates.
type demoTenant struct {
	id     string
	params map[string]string
}

var demoTenants = []demoTenant{{"acme", map[string]string{"plan": "pro"}}, {"globex", nil}}

// upKeyName names the key silo up issues per demo account on every run,
// revoking the previous run's.
const upKeyName = "silo-up"

// upAccount is one account silo up prints.
type upAccount struct {
	ID     silo.AccountID    `json:"id"`
	Kind   silo.Kind         `json:"kind"`
	Params map[string]string `json:"params,omitempty"`
	URL    string            `json:"url"`
	Path   string            `json:"path_url"`
	// Key is the fresh silo-up key of a demo tenant or of the developer
	// account; "" for another account, which keeps the keys it has.
	Key   string     `json:"key,omitempty"`
	State silo.State `json:"state"`
	// Problems are what silo doctor would report for the account (its
	// provider account gone, an onboarding unfinished, a damaged file),
	// each with its fix; the gateway refuses its requests until then.
	Problems []string `json:"problems,omitempty"`
}

type upSummary struct {
	Gateway  string      `json:"gateway"`
	DataDir  string      `json:"data_dir"`
	App      string      `json:"app"`
	Release  string      `json:"release"`
	Accounts []upAccount `json:"accounts"`
	Startup  string      `json:"startup"`
	API      string      `json:"api,omitempty"`
	Console  string      `json:"console,omitempty"` // the operator console, on the API's address
	// Held says why the app's release was built but not deployed (rollouts
	// manage the fleet); Release is then the release the fleet is on.
	Held string `json:"held,omitempty"`
	// Developer says why the developer account is not among Accounts (it
	// was deleted) and how to get one again.
	Developer string `json:"developer,omitempty"`
	// More counts the other accounts served but left out of Accounts (at
	// most upOthersShown are listed; silo tenant list --kind all lists all).
	More int `json:"more_accounts,omitempty"`
}

// upOthersShown caps the accounts silo up lists besides those it issues a
// key for, so that a data dir with a large fleet prints a screenful.
const upOthersShown = 10

func newUpCmd(g *globals) *cobra.Command {
	var listen, api string
	var yes bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole platform locally: your silo.yaml (else the example app), its tenants and the gateway",
		Long: `silo up starts everything on the embedded default in one process: it builds the app
(./silo.yaml if there is one, else examples/findings of this repository, or --file), creates the
production account and seeds its shared data on first run, creates the demo tenants acme
(plan=pro) and globex on a new data dir and your developer account dev-$USER when the data dir
never had it, serves the gateway and, once it and the API answer, prints the URL and a fresh API key of each of those, and
the URLs of the other accounts it serves (the first ten; silo keys create ID gives one a key). Later runs
reuse the data dir: nothing is created twice, an account you deleted stays deleted (silo dev
creates your developer account again), and each run revokes the "silo-up" keys the previous run printed (a key made by silo keys rotate is left alone). Until the first rollout (silo deploy) it applies the app to every account; once
rollouts manage the fleet it changes no account's release and says so when the app differs from
what the fleet runs. A change to the app that deletes or replaces a table, bucket or secret of an
account is applied then only when you confirm it, as silo apply asks: typed at a terminal, or
--yes; otherwise silo up refuses, naming what would be lost, and changes nothing. While it runs, other silo commands on the same data
dir (silo tenant, keys, deploy, logs, ...) go through its control-plane API instead of opening
the data dir beside it. Ctrl-C stops it cleanly.`,
		Example: `  go run ./cmd/silo up
  silo up --listen 127.0.0.1:9090 --data-dir /tmp/silo`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkListen(cmd, "--listen", listen); err != nil {
				return err
			}
			if err := checkListen(cmd, "--api", api); err != nil {
				return err
			}
			return runUp(cmd.Context(), g, listen, api, cmd.Flags().Changed("file"), yes)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "before the first rollout, apply the app even if it deletes or replaces a table, bucket or secret of an account")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address the gateway listens on")
	cmd.Flags().StringVar(&api, "api", "127.0.0.1:0", "address of the control-plane API (default: a free loopback port); other silo commands on this data dir go through it, and silo deploy --server from elsewhere")
	return cmd
}

// checkListen refuses (exit 2) an address for flag that is not HOST:PORT
// with a port number or service name: a flag value that does not parse,
// found before anything starts.
func checkListen(cmd *cobra.Command, flag, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return usageError{fmt.Sprintf("%s %q is not an address: write HOST:PORT, e.g. 127.0.0.1:8080 (port 0: any free port); see %s --help", flag, addr, cmd.CommandPath())}
	}
	return nil
}

// findApp returns the silo.yaml silo up and silo dev run: --file when given,
// else ./silo.yaml, else examples/findings of the silo checkout holding the
// working directory.
func findApp(g *globals, explicit bool) (string, error) {
	if explicit {
		return platform.SpecPath(g.file)
	}
	if _, err := os.Stat(g.file); err == nil {
		return platform.SpecPath(g.file)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "examples", "findings", "silo.yaml")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", silo.Errorf(silo.CodeNotFound, "no silo.yaml here and no examples/findings above %s; run silo up in the silo repository or an app directory, or pass --file", wd)
}

// openPlatform opens the platform on the data dir with the CLI's logger.
// $SILO_CACHE_DIR, if set, holds the build and compile caches;
// $SILO_MASTER_KEY_FILE, if set, is the master key file (kept outside the
// data dir, a copy of the data dir alone opens nothing).
// engineStep is called at each step boundary of the engine's applies and
// onboardings (engine.Config.Hook): tests interrupt commands there.
var engineStep = func(engine.Step) {}

// noticeHandler shows the log records marked control.Notice, as
// "silo: warning: MESSAGE" lines, and drops the others.
type noticeHandler struct{ w io.Writer }

func (h noticeHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h noticeHandler) Handle(_ context.Context, r slog.Record) error {
	notice := false
	r.Attrs(func(a slog.Attr) bool {
		notice = a.Equal(control.Notice)
		return !notice
	})
	if notice {
		_, err := fmt.Fprintf(h.w, "silo: warning: %s\n", r.Message)
		return err
	}
	return nil
}

func (h noticeHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h noticeHandler) WithGroup(string) slog.Handler      { return h }

func openPlatform(ctx context.Context, g *globals, listen, api string, opts ...func(*platform.Config)) (*platform.Platform, error) {
	log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: logLevel()}))
	if listen == "" && api == "" && os.Getenv("SILO_DEBUG") == "" {
		// A command that serves nothing reports what went wrong itself (in
		// its output, or as its error); log lines would say it twice. What
		// is logged for the operator (control.Notice) is shown.
		log = slog.New(noticeHandler{g.stderr})
	}
	cfg := platform.Config{DataDir: g.dataDir, Listen: listen, APIListen: api, Logger: log, Actor: actor(), StepHook: func(s engine.Step) { engineStep(s) }}
	for _, o := range opts {
		o(&cfg)
	}
	if k := os.Getenv("SILO_MASTER_KEY_FILE"); k != "" {
		cfg.Local.MasterKeyFile = k
	}
	if f := os.Getenv("SILO_PRICES_FILE"); f != "" { // prices of usage reports
		prices, err := usage.LoadPrices(f)
		if err != nil {
			return nil, err
		}
		cfg.Usage.Prices = prices
	}
	if c := os.Getenv("SILO_CACHE_DIR"); c != "" {
		// Share built artifacts and compiled code across data dirs.
		cfg.BuildCache, cfg.CompileCache = filepath.Join(c, "builds"), filepath.Join(c, "compiled")
	}
	if cfg.Store == nil {
		st, err := openStore(ctx, g.store)
		if err != nil {
			return nil, err
		}
		cfg.Store = st // nil: the platform's default, SQLite in the data dir
	}
	prov, save, err := openProvider(ctx, g, cfg.Store)
	if err != nil {
		if cfg.Store != nil {
			cfg.Store.Close()
		}
		return nil, err
	}
	cfg.Provider = prov               // nil: the platform's default, local in the data dir
	p, err := platform.Open(ctx, cfg) // closes the store if it fails
	if err != nil {
		if c, ok := prov.(io.Closer); ok {
			c.Close()
		}
		return nil, err
	}
	if err := save(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// userName is the name of the developer account's owner: $SILO_USER, $USER,
// or the OS user.
func userName() string {
	for _, k := range []string{"SILO_USER", "USER", "USERNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "user"
}

func runUp(ctx context.Context, g *globals, listen, api string, explicitFile, yes bool) error {
	start := time.Now()
	spec, err := findApp(g, explicitFile)
	if err != nil {
		return err
	}
	const instead = "it is already up or starting: use its URLs, or pass another --data-dir"
	if err := notServed(g, instead); err != nil {
		return err
	}
	// The data dir is silo up's alone from before its build until it
	// exits: silo store migrate, silo apply or another silo up started
	// meanwhile are refused.
	lock, err := holdDataDir(g, "silo up", true, instead)
	if err != nil {
		return err
	}
	defer lock.Release()
	p, err := openPlatform(ctx, g, listen, api)
	if err != nil {
		return err
	}
	defer p.Close()
	ln, err := p.Listen()
	if err != nil {
		return err
	}
	defer ln.Close()
	if !g.json() {
		fmt.Fprintf(g.stdout, "building %s ...\n", relPath(spec))
	}
	_, cerr := p.Plane.CurrentRelease(ctx)
	fresh := errors.Is(cerr, silo.ErrNotFound)
	if cerr != nil && !fresh {
		return cerr
	}
	dep, err := p.DeployIfUnmanaged(ctx, spec, func(losses []silo.Loss) error {
		return g.confirm(yes, relPath(spec)+" "+silo.DescribeLosses(losses), "yes")
	})
	if err != nil {
		return err
	}
	sum := upSummary{Gateway: "http://" + ln.Addr().String(), DataDir: p.Config().DataDir, App: spec, Release: dep.Release.ID, Held: dep.Held}
	if dep.Serving != "" {
		sum.Release = dep.Serving
	}
	if a := p.APIAddr(); a != "" {
		sum.API = "http://" + a
		sum.Console = sum.API + "/console/"
	}
	host, port := urlHost(ln.Addr())
	// routeOf is the first route of the release an account runs: under
	// rollouts that may be another release than the app's.
	routeOf := func(a silo.Account) (string, error) {
		if a.Release == "" || a.Release == dep.Release.ID {
			return firstRoute(dep.Release.Stack), nil
		}
		rel, err := p.Plane.Release(ctx, a.Release)
		if err != nil {
			return "", fmt.Errorf("%s: read release %s: %w", a.ID, a.Release, err)
		}
		return firstRoute(rel.Stack), nil
	}
	// show lists account a, with key if silo up issued one.
	listed := map[silo.AccountID]bool{}
	show := func(a silo.Account, key string) error {
		route, err := routeOf(a)
		if err != nil {
			return err
		}
		var problems []string
		for _, pr := range p.Plane.AccountProblems(ctx, a) {
			if pr.Fix != "" {
				pr.Problem += "; " + pr.Fix
			}
			problems = append(problems, pr.Problem)
		}
		listed[a.ID] = true
		sum.Accounts = append(sum.Accounts, upAccount{
			ID: a.ID, Kind: a.Kind, Params: a.Params, Key: key, State: a.State, Problems: problems,
			URL:  fmt.Sprintf("http://%s.%s%s%s", a.ID, host, port, route),
			Path: fmt.Sprintf("http://%s%s/t/%s%s", host, port, a.ID, route),
		})
		return nil
	}
	// add shows an account with a fresh silo-up key, creating it if create
	// is set and the registry has never held it. An account that exists is
	// left as it is: its release is the rollouts' (or silo dev's) business.
	// One the registry holds as deleted (or being deleted) stays so, and
	// add reports it as deleted.
	add := func(req control.CreateRequest, create bool) (deleted bool, err error) {
		a, err := p.Plane.Account(ctx, silo.AccountID(req.ID))
		never := errors.Is(err, silo.ErrNotFound)
		switch {
		case err != nil && !never:
			return false, err
		case never && create:
			if a, err = p.EnsureAccount(ctx, req); err != nil {
				return false, fmt.Errorf("%s: %w", req.ID, err)
			}
		case never:
			return false, nil
		case a.State == silo.StateDeleted || a.State == silo.StateDeleting:
			return true, nil
		}
		key, err := p.IssueKey(ctx, a.ID, upKeyName)
		if err != nil {
			return false, err
		}
		return false, show(a, key)
	}
	// The demo tenants are created on a new data dir only: one the user
	// deleted stays deleted.
	for _, t := range demoTenants {
		if _, err := add(control.CreateRequest{ID: t.id, Kind: silo.KindTenant, Params: fitParams(dep.Release.Stack, t.params)}, fresh); err != nil {
			return err
		}
	}
	// The developer account is created whenever the registry has never
	// held it (a new data dir, or a developer new to it); one the user
	// deleted stays deleted too, and silo dev makes it again.
	dev := platform.DevAccount(userName())
	deleted, err := add(control.CreateRequest{ID: string(dev), Kind: silo.KindDeveloper, Name: "developer"}, true)
	if err != nil {
		return err
	}
	if deleted {
		sum.Developer = fmt.Sprintf("your developer account %s was deleted, so silo up leaves it out; silo dev creates it again", dev)
	}
	// Every other account the gateway routes to is listed too (up to
	// upOthersShown), without a key: its keys are its own business. One
	// that is not active shows its state.
	all, err := p.Plane.Accounts(ctx, store.Filter{})
	if err != nil {
		return err
	}
	others := 0
	for _, a := range all {
		if listed[a.ID] || a.Kind == silo.KindProduction { // the registry lists no deleted account
			continue
		}
		if others++; others > upOthersShown {
			sum.More++
			continue
		}
		if err := show(a, ""); err != nil {
			return err
		}
	}
	// The URLs are printed only once the gateway and the API answer
	// them: a user who curls a printed URL at once is served.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var serveErr error
	served := make(chan struct{}) // closed when Serve has returned serveErr
	go func() { defer close(served); serveErr = p.Serve(ctx, ln) }()
	if err := awaitServing(ctx, served, sum.Gateway+"/healthz", sum.API+"/v1/health"); err != nil {
		stop()
		<-served
		if serveErr != nil {
			return serveErr
		}
		return err
	}
	sum.Startup = time.Since(start).Round(time.Millisecond).String()
	if err := g.print(sum, func(w io.Writer) { printUp(w, sum, host, port) }); err != nil {
		stop()
		<-served
		return err
	}
	go fillPool(ctx, g, "silo up", p.Config().Provider)
	lock.SetPhase("serving")
	<-served
	err = serveErr
	if !g.json() {
		fmt.Fprintln(g.stdout, "stopped; state is in", sum.DataDir)
	}
	return err
}

// awaitServing returns nil once every URL (a health endpoint; one without
// "http://", from an address not configured, is skipped) answers 200, and
// an error if served is closed (Serve returned) or ctx ends first.
func awaitServing(ctx context.Context, served <-chan struct{}, urls ...string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for _, u := range urls {
		if !strings.HasPrefix(u, "http://") {
			continue // no API configured
		}
		for {
			resp, err := client.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-served:
				return silo.Errorf(silo.CodeUnavailable, "the gateway stopped before it served %s", u)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// fitParams keeps the demo parameters the app's stack accepts: another app
// than the example may not declare a plan.
func fitParams(st *spec.Stack, ps map[string]string) map[string]string {
	if st == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range ps {
		if _, err := st.ResolveParams(map[string]string{k: v}); err == nil {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// firstRoute returns the path of the app's first GET route without
// wildcards (the example's /findings), or "/".
func firstRoute(st *spec.Stack) string {
	if st == nil {
		return "/"
	}
	for _, r := range st.Routes {
		if (r.Method == "GET" || r.Method == "" || r.Method == "*") && !strings.Contains(r.Path, "{") {
			return r.Path
		}
	}
	return "/"
}

// urlHost returns the host for printed URLs ("localhost" for a loopback or
// unspecified address) and ":port" (empty for port 80).
func urlHost(a net.Addr) (string, string) {
	h, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), ""
	}
	if ip := net.ParseIP(h); ip == nil || ip.IsLoopback() || ip.IsUnspecified() {
		h = "localhost"
	}
	if port == "80" {
		return h, ""
	}
	return h, ":" + port
}

func printUp(w io.Writer, s upSummary, host, port string) {
	fmt.Fprintf(w, "\nsilo is up in %s: release %s of %s\n", s.Startup, s.Release, relPath(s.App))
	fmt.Fprintf(w, "  gateway   %s  (health: http://%s%s/healthz)\n", s.Gateway, host, port)
	if s.API != "" {
		fmt.Fprintf(w, "  API       %s  (operator token in %s)\n", s.API, filepath.Join(s.DataDir, "operator.token"))
		fmt.Fprintf(w, "  Console   %s  (sign in with the operator token)\n", s.Console)
	}
	fmt.Fprintf(w, "  data dir  %s\n\n", s.DataDir)
	if s.Held != "" {
		fmt.Fprintf(w, "  note: %s\n\n", s.Held)
	}
	if s.Developer != "" {
		fmt.Fprintf(w, "  note: %s\n\n", s.Developer)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, a := range s.Accounts {
		what := string(a.Kind)
		if a.State != silo.StateActive {
			what += ", " + string(a.State)
		}
		if len(a.Params) > 0 {
			what += ", " + formatParams(a.Params)
		}
		fmt.Fprintf(tw, "  %s\t(%s)\t%s\n", a.ID, what, a.URL)
		fmt.Fprintf(tw, "  \t\t%s\n", a.Path)
		if a.Key != "" {
			fmt.Fprintf(tw, "  \tkey\t%s\n", a.Key)
		} else {
			fmt.Fprintf(tw, "  \tkey\tno key issued: silo keys create %s\n", a.ID)
		}
		for _, pr := range a.Problems {
			fmt.Fprintf(tw, "  \tproblem\t%s\n", pr)
		}
	}
	tw.Flush()
	if s.More > 0 {
		fmt.Fprintf(w, "  ... and %d more accounts: silo tenant list --kind all lists every one\n", s.More)
	}
	var keyed []upAccount
	for _, a := range s.Accounts {
		if a.Key != "" {
			keyed = append(keyed, a)
		}
	}
	if len(keyed) > 1 {
		a, b := keyed[0], keyed[1]
		fmt.Fprintf(w, "\nTry:\n")
		if strings.HasSuffix(a.URL, "/findings") {
			fmt.Fprintf(w, "  curl -H 'Authorization: Bearer %s' -d '{\"severity\":\"high\",\"app\":\"github\"}' %s\n", a.Key, a.URL)
		}
		fmt.Fprintf(w, "  curl -H 'Authorization: Bearer %s' %s\n", a.Key, a.Path)
		fmt.Fprintf(w, "  curl -H 'Authorization: Bearer %s' %s    # %s's key on %s: 403\n", b.Key, a.URL, b.ID, a.ID)
		fmt.Fprintf(w, "  silo logs %s -f\n", a.ID)
	}
	fmt.Fprintf(w, "\nCtrl-C stops.\n")
}

func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
