// Package platform assembles the whole silo platform in one process from a
// data directory: the control-plane store (SQLite in the data directory, or
// any store.Store given, such as PostgreSQL shared by several servers,
// whose change feed then keeps every server's cache current), the provider
// (the local provider in the data directory, or any provider.Provider
// given, such as AWS), the control plane, the wazero runtime (with its compiled-code cache under the
// data directory), the isolation decision point that binds each (account,
// function) to its own data plane plus read-only production exports, the
// gateway (whose Directory and Invoker are backed by the store and the
// runtime), the per-account function logs, the rollout runner (gated on the
// runtime's per-account metrics plus those the other servers sharing the
// store published, see rollout.Published; smoke functions invoked like
// requests), the control-plane API server, and the reaper that tears down
// expired environments and verifies that nothing of them is left.
//
// It is the one wiring of those parts: cmd/silo's `silo up`, `silo dev` and
// `silo env`, and the silotest harness, all open a Platform rather than
// assembling the parts themselves. It also owns the development loop (Dev)
// and the build cache that lets an unchanged function skip the Go toolchain.
//
// Layout under Config.DataDir (shared with the CLI's other commands):
//
//	state.db              control-plane store (SQLite; absent when Config.Store is given)
//	accounts/             local provider: one directory per account (absent when Config.Provider is given)
//	artifacts/            built function modules, <digest>.wasm (ReadArtifact)
//	cache/compiled/       the runtime's compiled machine code, by digest
//	cache/builds/         source fingerprint → artifact digest (see Config.BuildCache)
//	logs/                 per-account function logs, <account>.log
//	installation.id       the installation ID of the store the data dir belongs to (see CheckRegistry)
//	operator.token        the control-plane API's operator token (created when the API is used)
//	issued-keys.json      the key IssueKey last issued per name and account (silo up, silo dev)
//	provider.json         cmd/silo's saved provider choice (with --provider aws; not read here)
//	datadir.lock          locked by the process serving or migrating the data dir (LockFile)
//	server.json           names the running server's API (ServerFile)
//
// It may import every package of the project except cmd/ and silotest; no
// package but cmd/silo, silotest and the bench harness may import it.
package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/dataplane"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/runtime"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
	"github.com/silo-run/silo/usage"
	"github.com/silo-run/silo/usage/storage"
)

// artifactDir is the directory of the built function modules in the data
// dir.
const artifactDir = "artifacts"

// The actors the platform's own loops record in the audit log.
const (
	ActorRollout   = "silo:rollout-gate" // the rollout runner: rings applied, gates judged, rollbacks
	ActorReaper    = "silo:reaper"       // expired environments torn down
	ActorScheduler = "silo:scheduler"    // scheduled runs
)

// ServeRollouts runs the rollout runner (Runner.Serve) until ctx is done,
// as ActorRollout: what it does by itself is recorded in the audit log as
// the rollout gate's. Serve calls it; tests that run the runner without
// Serve call it too.
func (p *Platform) ServeRollouts(ctx context.Context) error {
	return p.Runner.Serve(store.WithActor(ctx, ActorRollout))
}

// Platform is the whole platform in one process. Its methods are safe for
// concurrent use. Open it, Serve it (or mount Handler), Close it.
type Platform struct {
	cfg Config

	// The parts, exposed for commands and tests that need one directly.
	// Store is the control-plane store, wrapped so that every commit that
	// appends to the audit log moves the audit witness forward.
	Store    store.Store
	Provider provider.Provider
	Plane    *control.Plane
	Runtime  *runtime.Runtime
	Gateway  *gateway.Gateway
	Logs     *logs.Store
	Policy   *isolation.Policy
	Runner   *rollout.Runner
	Usage    *usage.Meter // nil with Config.Usage.Off
	Stored   *storage.Tracker

	db        store.Store // the store under Store's witness wrapper
	feed      store.Feed  // db's change feed, if it has one
	stateName string      // where the control-plane state lives, for messages
	stopFeed  context.CancelFunc
	fed       chan struct{} // closed when the feed listener has ended
	dir       *dataplane.Directory
	mem       *releaser // returns memory to the OS after large idle sweeps
	artifacts string
	guestLog  *slog.Logger
	sched     scheduler

	degradedLog sync.Map       // account → the damage last logged for it (degraded)
	recovers    bool           // the registry check passed: Recover may act (see Open)
	sampled     silo.AccountID // the last account checkProvider asked about; guarded by mu

	compileMu    sync.Mutex            // one compilation at a time (compile)
	compilesMu   sync.Mutex            // guards compiles
	compiles     map[string]*compiling // digest → its compilation under way
	compilations sync.WaitGroup        // compilations under way, for Close
	loaded       sync.Map              // digest → true once compiled by Runtime
	ahead        chan struct{}         // wakes CompileAhead (wakeAhead)

	stopSweep chan struct{} // closed by Close: ends sweepLoop
	swept     chan struct{} // closed when sweepLoop has ended

	published   *rollout.Published // the gates' metrics, with the runtime's (gatemetrics.go)
	stopPublish chan struct{}      // closed by Close: ends publishLoop
	publishDone chan struct{}      // closed when publishLoop has ended

	mu      sync.Mutex
	addr    string
	apiAddr string
	apiLn   net.Listener
	api     *server.Server
	serving bool
	closed  bool
}

// Open opens (creating on first use) the platform in cfg.DataDir: it opens
// the store and the provider, recovers work a crash left pending, starts the
// runtime and builds the gateway. It does not listen; call Serve.
//
// # Errors
//
// CodeInvalid for a bad config; CodeUnavailable when the data directory is
// not writable; the store's and provider's errors when their files are
// unusable. A Config.Store given is closed when Open fails.
func Open(ctx context.Context, cfg Config) (*Platform, error) {
	if err := cfg.Validate(); err != nil {
		if cfg.Store != nil {
			cfg.Store.Close()
		}
		return nil, err
	}
	if err := control.DataDirWritable(cfg.DataDir, cfg.dataDirName); err != nil {
		if cfg.Store != nil {
			cfg.Store.Close()
		}
		return nil, err
	}
	p := &Platform{cfg: cfg, artifacts: filepath.Join(cfg.DataDir, artifactDir), Policy: isolation.NewPolicy(), ahead: make(chan struct{}, 1)}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	var err error
	p.db, p.stateName = cfg.Store, "the PostgreSQL control-plane database"
	if p.db == nil {
		if err := stateMoved(cfg.DataDir); err != nil {
			return nil, err
		}
		if err := stateElsewhere(cfg.DataDir, cfg.dataDirName); err != nil {
			return nil, err
		}
		p.stateName = "the data dir's control-plane state (state.db)"
		db, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "state.db"))
		if err != nil {
			return nil, err
		}
		p.db = db
	}
	p.feed, _ = p.db.(store.Feed)
	witness := filepath.Join(cfg.DataDir, isolation.WitnessFile)
	if _, err := isolation.EnsureWitness(ctx, p.db, witness); err != nil {
		return nil, err
	}
	p.Store = isolation.WithWitness(p.db, witness)
	// Every deletion path removes the account's logs: the local provider
	// calls back, any other provider is wrapped for the control plane.
	removeLogs := func(id silo.AccountID) error {
		if p.Logs == nil {
			return nil
		}
		return p.Logs.Remove(id)
	}
	var planeProv provider.Provider
	if p.Provider = cfg.Provider; p.Provider == nil {
		lc := cfg.Local
		lc.Dir, lc.Logger, lc.OnDeleteAccount = filepath.Join(cfg.DataDir, "accounts"), cfg.Logger, removeLogs
		if p.Provider, err = local.New(lc); err != nil {
			return nil, err
		}
		planeProv = p.Provider
	} else {
		planeProv = logsOnDelete{Provider: p.Provider, remove: removeLogs}
		if b, ok := p.Provider.(installationBinder); ok {
			b.BindInstallation(control.InstallationID(p.db))
		}
	}
	var logKeys logs.Keys
	if s, ok := p.Provider.(logSealer); ok {
		logKeys = func(id silo.AccountID) (logs.Cipher, error) { // records sealed under the account's key (I5)
			c, err := s.LogSealer(id)
			if err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	logFailed := func(err error) { cfg.Logger.Error("platform: write function log lines", "error", err) }
	if p.Logs, err = logs.Open(logs.Config{Dir: filepath.Join(cfg.DataDir, "logs"), MaxBytes: cfg.LogMaxBytes, Now: cfg.Now, Keys: logKeys, Failed: logFailed}); err != nil {
		return nil, err
	}
	p.guestLog = slog.New(p.Logs.Handler(cfg.LogLevel))
	warn := func(msg string) { cfg.Logger.Warn("platform: " + msg) }
	var b control.Builder = &artifactBuilder{out: p.artifacts, warn: warn}
	if cfg.BuildCache != "off" {
		b = &cachedBuilder{cache: cfg.BuildCache, out: p.artifacts, warn: warn}
	}
	var ingress control.Ingress
	var smoke rollout.Smoke = smoker{p}
	var metrics rollout.Metrics            // the runtime's, once it runs
	if h := hosted(p.Provider); h != nil { // the provider runs the functions
		ingress, smoke, metrics = h, h, hostedMetrics{h}
	}
	p.Plane = control.New(control.Config{
		Store: p.Store, Provider: planeProv, Builder: loadingBuilder{b, p}, Logger: cfg.Logger, Now: cfg.Now, Actor: cfg.Actor,
		AuditWitness: witness, Feed: p.feed, Ingress: ingress, Hook: cfg.StepHook,
		OnChange: func(c store.Change) { p.Invalidate(c.Account) },
		Placement: func(ctx context.Context, a silo.Account) (string, error) {
			if p.Runner == nil { // not yet made: no rollout runs
				return "", nil
			}
			return p.Runner.ReleaseFor(ctx, a)
		},
	})
	// A registry and accounts that do not belong together are refused
	// before recovery, which would act on them (doctor opens anyway, to
	// report, and recovers nothing).
	if err := p.CheckRegistry(ctx); err != nil {
		if !cfg.OpenLostRegistry || silo.ErrorCode(err) != silo.CodeFailedCheck {
			return nil, err
		}
	} else {
		p.recovers = true
		if _, err := p.recover(ctx); err != nil { // CheckRegistry just made checkProvider's check
			return nil, err
		}
	}
	rc := cfg.Runtime
	rc.CacheDir = cfg.CompileCache
	rc.Logger = slog.New(stdioTee{main: cfg.Logger.Handler(), acct: p.Logs.Handler(nil)})
	p.mem = newReleaser(max(cfg.idleTimeout()/2, time.Second))
	if p.dir, err = dataplane.New(dataplane.Config{
		Store: p.Store, Provider: p.Provider, Policy: p.Policy,
		Refresh: cfg.Refresh, IdleTimeout: cfg.idleTimeout(), Dropped: p.mem.dropped,
	}); err != nil {
		return nil, err
	}
	p.listenFeed()
	rc.OnIdle = p.dir.Idle
	if rc.Limits.MemoryPages == 0 {
		// Modules are compiled at deploy for the default limit; a function
		// with the spec's default memory must use the same engine, or its
		// first request would compile again.
		rc.Limits.MemoryPages = spec.DefaultMemory / 65536
	}
	if err := os.MkdirAll(rc.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("create compile cache %s: %w", rc.CacheDir, err)
	}
	if p.Runtime, err = runtime.New(rc); err != nil {
		return nil, err
	}
	if metrics == nil {
		metrics = p.startPublishing()
	}
	if p.Runner, err = rollout.New(rollout.Config{
		Store: p.Store, Engine: p.Plane.Engine, Provider: p.Provider,
		Metrics: metrics, Smoke: smoke, Gate: p.Plane.GateRollout, Clock: cfg.Clock,
		Logger: cfg.Logger, Owner: p.runnerOwner(), Actor: cfg.Actor,
		Hook: func(e rollout.Event) {
			if e.Point == "state" || e.Point == "phase" {
				p.wakeAhead() // a rollout began, or its release became current
			}
			if e.Account != "" && e.Point == "finished" {
				p.changed(context.Background(), e.Account) // the account now runs another release
			}
			if e.Point == "state" && e.Detail == string(rollout.StateSucceeded) {
				// The rollout (or rollback) made its release current: the
				// other servers sharing the store compile it ahead now,
				// not at their next periodic look.
				p.changed(context.Background(), "")
			}
			if cfg.RolloutHook != nil {
				cfg.RolloutHook(e)
			}
		},
	}); err != nil {
		return nil, err
	}
	gc := cfg.Gateway
	gc.BaseDomain, gc.Logger, gc.Now = cfg.BaseDomain, cfg.Logger, cfg.Now
	gc.AccessLog = accessLog{logs: p.Logs, logger: cfg.Logger}
	if err := p.wireUsage(&gc); err != nil {
		return nil, err
	}
	if p.Gateway, err = gateway.New(gc, p.dir, gateway.InvokerFunc(p.invoke)); err != nil {
		return nil, err
	}
	p.dir.SetGateway(p.Gateway)
	p.stopSweep, p.swept = make(chan struct{}), make(chan struct{})
	go p.sweepLoop()
	ok = true
	return p, nil
}

// installationBinder is a provider that tells this installation's accounts
// from another's (the AWS provider, provider/aws/installation.go); it is
// given the installation's ID, kept in the control plane's store, before
// any other call.
type installationBinder interface {
	BindInstallation(func(ctx context.Context, create bool) (string, error))
}

// Config returns the platform's configuration with defaults filled in.
func (p *Platform) Config() Config { return p.cfg }

// Handler returns the gateway's HTTP handler, for tests that serve it with
// httptest.
func (p *Platform) Handler() http.Handler { return p.Gateway }

// Addr returns the address Serve listens on, once it listens ("" before).
func (p *Platform) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Listen binds the gateway's address (Config.Listen), and the API's
// (Config.APIListen) when set, without serving yet, so a caller can print
// where to go before Serve. Serve calls it if needed.
//
// # Errors
//
// CodeUnavailable with what to do when an address is taken.
func (p *Platform) Listen() (net.Listener, error) {
	// The messages name the flag of each command that sets the address:
	// silo up and silo dev take the gateway's as --listen, silo server as
	// --gateway (its --listen is the API's).
	ln, err := net.Listen("tcp", p.cfg.Listen)
	if err != nil {
		flag := p.cfg.ListenFlag
		if flag == "" {
			flag = "silo server --gateway ADDR, silo up --listen ADDR"
		}
		return nil, silo.Errorf(silo.CodeUnavailable, "cannot listen on %s for the tenant gateway: %v; stop what uses it or choose another gateway address (%s)", p.cfg.Listen, unwrapOp(err), flag)
	}
	var aln net.Listener
	if p.cfg.APIListen != "" {
		if aln, err = net.Listen("tcp", p.cfg.APIListen); err != nil {
			ln.Close()
			return nil, silo.Errorf(silo.CodeUnavailable, "cannot listen on %s for the control-plane API: %v; stop what uses it or choose another API address (silo server --listen ADDR, silo up --api ADDR)", p.cfg.APIListen, unwrapOp(err))
		}
	}
	p.mu.Lock()
	p.addr = ln.Addr().String()
	if aln != nil {
		p.apiLn, p.apiAddr = aln, aln.Addr().String()
	}
	p.mu.Unlock()
	return ln, nil
}

// Serve serves the gateway on ln (nil: Listen first), the control-plane
// API on Config.APIListen if set (named in DataDir/server.json while it
// serves, see Running), and runs the rollout runner, the schedules
// (RunSchedules), the environment reaper and the recovery of interrupted
// work (Recover, every ReapEvery), until ctx is done; then it shuts the servers down
// gracefully (in-flight requests finish, for at most 10 seconds), waits for
// the background work to stop and returns nil. It does not Close the
// platform.
func (p *Platform) Serve(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		var err error
		if ln, err = p.Listen(); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.addr = ln.Addr().String()
	p.serving = true
	p.mu.Unlock()
	servers := []*http.Server{p.Gateway.Server(p.addr)}
	listeners := []net.Listener{ln}
	p.mu.Lock()
	aln := p.apiLn
	p.mu.Unlock()
	if p.cfg.APIListen != "" && aln == nil {
		ln.Close()
		return silo.Errorf(silo.CodeInvalid, "platform: pass the listener from Listen to Serve when an API address is configured")
	}
	if aln != nil {
		api, err := p.API()
		if err != nil {
			return err
		}
		servers = append(servers, &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(p.cfg.Logger.Handler(), slog.LevelWarn)})
		listeners = append(listeners, aln)
		defer p.announce(aln.Addr().String())()
	}
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); p.reapLoop(bg) }()
	go func() { defer wg.Done(); p.CompileAhead(bg) }()
	go func() { defer wg.Done(); p.scheduleLoop(bg) }()
	go func() {
		defer wg.Done()
		if err := p.ServeRollouts(bg); err != nil && bg.Err() == nil {
			p.cfg.Logger.Error("rollout runner stopped", "error", err)
		}
	}()
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	stopBG()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down %s: %w", srv.Addr, err))
		}
	}
	wg.Wait()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serve: %w", serveErr))
	}
	return errors.Join(errs...)
}

// APIAddr returns the address the control-plane API listens on, once Serve
// listens there ("" otherwise).
func (p *Platform) APIAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.apiAddr
}

// Close stops the runtime and closes the logs, the provider and the store.
// Call it after Serve returned. Close is idempotent.
func (p *Platform) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	var errs []error
	if p.stopFeed != nil {
		p.stopFeed()
		<-p.fed
	}
	if p.stopSweep != nil {
		close(p.stopSweep)
		<-p.swept
	}
	if p.mem != nil {
		p.mem.close()
	}
	errs = append(errs, p.stopPublishing()) // before the runtime and the store close
	if p.Runtime != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, p.Runtime.Close(ctx))
		cancel()
		p.compilations.Wait() // one under way ends as the runtime closes
	}
	if p.Gateway != nil {
		errs = append(errs, p.Gateway.Close()) // writes the last access log lines
	}
	errs = append(errs, p.closeUsage()) // before the store closes
	if p.Logs != nil {
		errs = append(errs, p.Logs.Close())
	}
	if c, ok := p.Provider.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if p.db != nil {
		errs = append(errs, p.db.Close())
	}
	return errors.Join(errs...)
}

// Metrics returns what the gateway metered for an account since Open.
func (p *Platform) Metrics(acct silo.AccountID) gateway.Metrics { return p.Gateway.Metrics(acct) }

func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
