package platform

import (
	"log/slog"
	"path/filepath"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/runtime"
	"github.com/silo-run/silo/store"
)

// Config configures a Platform. Zero fields take the defaults noted; Validate
// fills them in.
type Config struct {
	// DataDir holds everything the platform stores. Required. Validate
	// makes it absolute; messages name it as given (dataDirName).
	DataDir string
	// dataDirName is DataDir as the caller gave it, before Validate made
	// it absolute: the name the user chose, for messages.
	dataDirName string
	// Listen is the gateway's address for Serve. Default "127.0.0.1:8080";
	// use "127.0.0.1:0" for a random port (see Addr).
	Listen string
	// ListenFlag is how the command running the platform lets its user
	// choose Listen, named when that address is taken ("silo dev --listen
	// ADDR"). Default: silo server's and silo up's flags.
	ListenFlag string
	// BaseDomain is the gateway's base domain: tenant acme is
	// acme.<BaseDomain>. Default "localhost".
	BaseDomain string
	// Logger receives platform events and internal errors. Default: discard.
	Logger *slog.Logger
	// Now is the platform's clock: account timestamps, environment expiry,
	// key checks and log stamps. Default Clock.Now.
	Now func() time.Time
	// Clock is the rollout runner's clock (bakes, leases); its Now is the
	// default of Now. Default rollout.WallClock, or a clock reading Now when
	// only Now is given. Tests pass a rollout.ManualClock.
	Clock rollout.Clock
	// APIListen, if set, is the address Serve serves the control-plane API
	// on (package server), authenticated with the operator token in
	// DataDir/operator.token. Empty: no API (the CLI works on the data dir
	// directly).
	APIListen string
	// Actor names who acts in audit events that no caller is named for.
	// Default "platform". The API names its caller, the console its
	// session, and the platform's own loops themselves (ActorRollout,
	// ActorReaper, ActorScheduler).
	Actor string
	// BuildCache is a directory remembering which artifact a function's
	// sources built to, keyed by a fingerprint of those sources and the Go
	// toolchain, so an unchanged function is not rebuilt. It may be shared
	// by several platforms (silotest shares one across tests). Default
	// DataDir/cache/builds; "off" disables it.
	BuildCache string
	// CompileCache is the runtime's compiled-code cache directory. It may
	// be shared. Default DataDir/cache/compiled.
	CompileCache string
	// Refresh is how long the gateway trusts what it read from the store
	// about an account (state, routes, functions) and a key, before reading
	// it again. Changes made through this Platform take effect at once;
	// changes made by another process (the CLI) within Refresh. Default 1s.
	Refresh time.Duration
	// ReapEvery is how often the reaper looks for expired environments,
	// and how often a serving platform recovers work interrupted in any
	// process on its store (Recover). Default 10s. The reaper compares
	// expiry with Now, so a fake clock drives it; call Reap or Recover to
	// run either at once.
	ReapEvery time.Duration
	// LogMaxBytes bounds each account's log (see package logs). Default
	// logs.DefaultMaxBytes.
	LogMaxBytes int64
	// LogLevel is the lowest level of function log lines kept in the
	// accounts' logs. Default slog.LevelInfo; silo dev and silotest keep
	// debug lines too.
	LogLevel slog.Leveler
	// Gateway tunes the gateway (limits, timeouts). Its BaseDomain, Logger
	// and Now are set from the fields above.
	Gateway gateway.Config
	// Runtime tunes the runtime (limits, idle timeout). Its CacheDir,
	// Logger and OnIdle are set by the platform.
	//
	// Runtime.IdleTimeout (default 1m) is also the platform's idle period
	// for everything else it holds per account: an account with no
	// instance left and no request for IdleTimeout/2 has its cached view,
	// its compiled policy in the decision point, its compiled routes and
	// its (full) rate-limit bucket dropped in the runtime's sweep, once the
	// view is older than Refresh (a stale view is read again anyway, so
	// the next request pays nothing extra); all are read again from the
	// store on its next request. An account that ran no function is
	// dropped after IdleTimeout unused. Once sweeps have dropped 64
	// accounts or more, the platform returns the freed memory to the OS
	// (debug.FreeOSMemory, at most once per IdleTimeout/2; see releaser).
	Runtime runtime.Config
	// OpenLostRegistry opens the platform even when the control-plane
	// registry and the provider's accounts do not belong together (a lost
	// or replaced state.db, a data dir that is not the installation's:
	// see CheckRegistry), which Open otherwise refuses; the journal is then
	// not recovered. Only silo doctor sets it, to report.
	OpenLostRegistry bool
	// Usage tunes metering, its retention and the prices of usage
	// reports (see usage.go).
	Usage UsageConfig
	// Provider holds the accounts. Default: the local provider in
	// DataDir/accounts, built from Local. cmd/silo passes the AWS provider
	// here (--provider aws). The Platform owns it either way: Close closes
	// it if it has a Close method.
	//
	// Some of the platform's work needs more than provider.Provider, and
	// is done only when the provider offers it (small interfaces below):
	// sealing each account's function logs under its data key (logSealer;
	// without it log lines are plain JSON in DataDir/logs, removed with the
	// account), refusing requests to an account whose files are damaged
	// (damageReporter), checking that a deleted account's directory
	// is gone (accountDirs), and, for a provider that runs the functions
	// itself (hostedFunctions), taking the account's URL, its API key
	// records, the rings' smoke tests and the function logs from it.
	Provider provider.Provider
	// Local tunes the local provider when Provider is nil: IdleTimeout
	// (how long an account's store file stays open and memory-mapped after
	// its last use) and MaxOpen (how many are open at once). Its Dir and
	// Logger are set by the platform. Default IdleTimeout: half of
	// Runtime.IdleTimeout, at least 1s and at most local.DefaultIdleTimeout
	// (30s), so an account's files are closed before its last instance is
	// (1s when Store is shared by several servers, see Store); default
	// MaxOpen local.DefaultMaxOpen.
	Local local.Config
	// Store is the control-plane store. Default: the SQLite store
	// DataDir/state.db, opened by Open. cmd/silo opens a PostgreSQL store
	// here (--store postgres://...) when several servers share one
	// control plane. The Platform owns it either way: Close closes it.
	//
	// When the store implements store.Feed (store/postgres does), every
	// change the control plane makes is announced on it, and this
	// platform drops its cached view of an account when any server
	// announces a change of it; the rollout runner's lease owner is then
	// unique to this Platform rather than to the data directory.
	Store store.Store
	// RolloutHook, if set, is called at each of the rollout runner's step
	// boundaries (rollout.Config.Hook), after the platform's own handling:
	// progress displays and tests use it.
	RolloutHook func(rollout.Event)
	// StepHook, if set, is the engine's step hook (engine.Config.Hook),
	// called at each step boundary of an apply or an onboarding: tests
	// interrupt commands there.
	StepHook func(engine.Step)
}

// Validate fills in defaults and checks the configuration.
//
// # Errors
//
// CodeInvalid naming the first bad field.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return silo.Errorf(silo.CodeInvalid, "platform: no data directory given; set --data-dir")
	}
	if c.dataDirName == "" {
		c.dataDirName = c.DataDir
	}
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return silo.Errorf(silo.CodeInvalid, "platform: data directory %q: %v", c.DataDir, err)
	}
	c.DataDir = dir
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.BaseDomain == "" {
		c.BaseDomain = "localhost"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Clock == nil && c.Now == nil:
		c.Clock = rollout.WallClock{}
		c.Now = time.Now
	case c.Clock == nil:
		c.Clock = nowClock{c.Now}
	case c.Now == nil:
		c.Now = c.Clock.Now
	}
	if c.Actor == "" {
		c.Actor = "platform"
	}
	if c.LogLevel == nil {
		c.LogLevel = slog.LevelInfo
	}
	if c.BuildCache == "" {
		c.BuildCache = filepath.Join(dir, "cache", "builds")
	}
	if c.CompileCache == "" {
		c.CompileCache = filepath.Join(dir, "cache", "compiled")
	}
	if c.Refresh < 0 || c.ReapEvery < 0 {
		return silo.Errorf(silo.CodeInvalid, "platform: Refresh and ReapEvery must not be negative")
	}
	if c.Refresh == 0 {
		c.Refresh = time.Second
	}
	if c.Local.IdleTimeout < 0 || c.Local.MaxOpen < 0 {
		return silo.Errorf(silo.CodeInvalid, "platform: Local.IdleTimeout and Local.MaxOpen must not be negative")
	}
	if _, shared := c.Store.(store.Feed); shared && c.Local.IdleTimeout == 0 {
		// Several servers share the data dir: an account's file open in
		// one is waited for by the others, so none keeps it long.
		c.Local.IdleTimeout = time.Second
	}
	if c.Local.IdleTimeout == 0 {
		c.Local.IdleTimeout = min(max(c.idleTimeout()/2, time.Second), local.DefaultIdleTimeout)
	}
	if c.Local.MaxOpen == 0 {
		c.Local.MaxOpen = local.DefaultMaxOpen
	}
	if c.ReapEvery == 0 {
		c.ReapEvery = 10 * time.Second
	}
	return nil
}

// idleTimeout is the runtime's idle timeout with its default filled in.
func (c *Config) idleTimeout() time.Duration {
	if c.Runtime.IdleTimeout > 0 {
		return c.Runtime.IdleTimeout
	}
	return time.Minute
}
