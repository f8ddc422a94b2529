// Package spec owns silo.yaml: it parses the file into a typed Stack,
// validates it and reports every problem at once as Diagnostics with
// file:line:col positions. It also resolves tenant parameters against the
// declared ones and interpolates ${tenant.id} and ${param.NAME} in values.
//
// It imports only the root package silo, the standard library and the YAML
// parser (go.yaml.in/yaml/v3, which enters the module through this package
// alone). It must not import engine, provider, runtime, store or any other
// package of the project: they import it.
package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/silo-run/silo"
)

// Limits of a silo.yaml file and of the values in it.
const (
	// MaxFileSize is the largest silo.yaml accepted.
	MaxFileSize = 1 << 20
	// MaxDepth is the deepest nesting of mappings and sequences accepted.
	MaxDepth = 64
	// maxDiagnostics is how many diagnostics Parse reports at most.
	maxDiagnostics = 200

	DefaultHandler     = "handle"
	DefaultMemory      = 64 << 20
	MinMemory          = 1 << 20
	MaxMemory          = 1 << 30
	DefaultTimeout     = 5 * time.Second
	MaxTimeout         = 5 * time.Minute
	DefaultConcurrency = 4
	MaxConcurrency     = 1000

	DefaultRingConcurrency = 16
	MaxRingConcurrency     = 10000
	MaxBake                = 7 * 24 * time.Hour
)

// Stack is a parsed and validated silo.yaml. Its JSON encoding is canonical
// (maps are sorted by key, grant lists are sorted, defaults are filled in) and
// is used as the content of a release.
type Stack struct {
	Version   int                 `json:"version"`
	Name      string              `json:"name"`
	Params    map[string]Param    `json:"params,omitempty"`
	Functions map[string]Function `json:"functions,omitempty"`
	Tables    map[string]Table    `json:"tables,omitempty"`
	Buckets   map[string]Bucket   `json:"buckets,omitempty"`
	Config    map[string]string   `json:"config,omitempty"`
	Secrets   map[string]Secret   `json:"secrets,omitempty"`
	Routes    []Route             `json:"routes,omitempty"`
	Schedules map[string]Schedule `json:"schedules,omitempty"`
	// Limits maps each plan (a value of the tenant param "plan") to the
	// limits of the tenants on it (see limits.go).
	Limits     map[string]silo.Limits `json:"limits,omitempty"`
	Production Production             `json:"production"`
	Rollout    Rollout                `json:"rollout"`
	// Dir is the directory that holds the silo.yaml (set by Load); function
	// sources are relative to it.
	Dir string `json:"-"`
}

// ParamType is the type of a tenant parameter.
type ParamType string

// The parameter types.
const (
	ParamString ParamType = "string"
	ParamInt    ParamType = "int"
	ParamBool   ParamType = "bool"
)

// Param declares a typed tenant parameter.
type Param struct {
	Type ParamType `json:"type"`
	// Default is the value in canonical form ("42", "true") used when a
	// tenant does not set the parameter. Without a default and without
	// Required the default is the type's zero value ("", "0", "false").
	Default string `json:"default,omitempty"`
	// Required means every tenant must set the parameter; it has no default.
	Required    bool     `json:"required,omitempty"`
	Enum        []string `json:"enum,omitempty"`
	Description string   `json:"description,omitempty"`
}

// Access is what a function grant allows.
type Access string

// The access levels of a grant.
const (
	AccessRead      Access = "read"
	AccessReadWrite Access = "read-write"
)

// Function is a WebAssembly function deployed to every account (or, under
// Production, to the production account only).
type Function struct {
	// Source is a Go package directory (built with GOOS=wasip1) or a path
	// ending in .wasm, relative to Stack.Dir, in slash form.
	Source string `json:"source"`
	// Handler is the exported wasm function that handles an invocation.
	Handler     string            `json:"handler"`
	Memory      uint64            `json:"memory"`  // bytes
	Timeout     time.Duration     `json:"timeout"` // per invocation
	Concurrency int               `json:"concurrency"`
	Tables      map[string]Access `json:"tables,omitempty"`
	Buckets     map[string]Access `json:"buckets,omitempty"`
	Config      []string          `json:"config,omitempty"`  // sorted
	Secrets     []string          `json:"secrets,omitempty"` // sorted
	Exports     []string          `json:"exports,omitempty"` // sorted; production exports read
}

// Table declares a key-value table.
type Table struct {
	Description string `json:"description,omitempty"`
}

// Bucket declares a blob bucket.
type Bucket struct {
	Description string `json:"description,omitempty"`
}

// Secret declares a secret. Its value is set per account and never appears in
// the spec.
type Secret struct {
	Description string `json:"description,omitempty"`
}

// Route maps an HTTP method and path of the gateway to a function.
type Route struct {
	Method   string `json:"method"`
	Path     string `json:"path"`
	Function string `json:"function"`
}

// Schedule runs a function in every account on a timetable (see
// schedule.go): at the times of a cron expression, in UTC, or every fixed
// interval. Exactly one of Cron and Every is set.
type Schedule struct {
	Function    string        `json:"function"`
	Cron        string        `json:"cron,omitempty"`
	Every       time.Duration `json:"every,omitempty"`
	Description string        `json:"description,omitempty"`
}

// Production is the part of the stack deployed once, to the production
// account, and shared read-only with every other account through Exports.
type Production struct {
	Functions map[string]Function `json:"functions,omitempty"`
	Tables    map[string]Table    `json:"tables,omitempty"`
	Buckets   map[string]Bucket   `json:"buckets,omitempty"`
	Config    map[string]string   `json:"config,omitempty"`
	Secrets   map[string]Secret   `json:"secrets,omitempty"`
	Exports   map[string]Export   `json:"exports,omitempty"`
}

// Export shares exactly one production resource read-only with all accounts:
// a table, a bucket, or a config key.
type Export struct {
	Table  string `json:"table,omitempty"`
	Bucket string `json:"bucket,omitempty"`
	Config string `json:"config,omitempty"`
}

// Rollout says how a release reaches the fleet: ring after ring, in order.
type Rollout struct {
	Rings []Ring `json:"rings,omitempty"`
}

// Ring is one step of a rollout.
type Ring struct {
	Name   string   `json:"name"`
	Select Selector `json:"select"`
	// Concurrency is how many accounts of the ring are applied at once.
	Concurrency int `json:"concurrency"`
	// Bake is how long the ring runs the new release before gates are read.
	Bake          time.Duration `json:"bake"`
	Gates         Gates         `json:"gates"`
	FailureBudget Budget        `json:"failure_budget"`
	// OnRollback says what happens to the ring's accounts when a later
	// ring of the same rollout fails: "" (the default, written "return")
	// returns them to the release they ran before, OnRollbackKeep leaves
	// them on the new release. The failing ring itself always returns.
	OnRollback string `json:"on_rollback,omitempty"`
}

// The values of Ring.OnRollback. The default is stored as "", so that a
// stack without the field keeps its release ID.
const (
	OnRollbackReturn = "return"
	OnRollbackKeep   = "keep"
)

// Selector picks the accounts of a ring.
type Selector struct {
	Kind silo.Kind `json:"kind"`
	// Params, if set, keeps only accounts whose resolved parameters equal
	// every given value.
	Params map[string]string `json:"params,omitempty"`
	// Percent (0-100, default 100) keeps that share of the matching
	// accounts, chosen by a stable hash of the account ID.
	Percent float64 `json:"percent"`
}

// Gates are the health checks a ring must pass after its bake time. A zero
// MaxErrorRate or MaxP99Increase means that gate is not checked.
type Gates struct {
	MaxErrorRate   float64 `json:"max_error_rate,omitempty"`   // fraction of failed invocations, 0-1
	MaxP99Increase float64 `json:"max_p99_increase,omitempty"` // fraction over the previous release's p99
	MinRequests    int     `json:"min_requests,omitempty"`     // fewer requests than this is inconclusive
	Smoke          string  `json:"smoke,omitempty"`            // function invoked once per account after apply
	OnInconclusive string  `json:"on_inconclusive"`            // "pause" (default) or "rollback"
}

// The values of Gates.OnInconclusive.
const (
	OnInconclusivePause    = "pause"
	OnInconclusiveRollback = "rollback"
)

// Budget is how many account failures a ring tolerates before it rolls back:
// an absolute Count, or a Percent (0-100) of the ring's accounts. The zero
// Budget tolerates no failure.
type Budget struct {
	Count   int     `json:"count,omitempty"`
	Percent float64 `json:"percent,omitempty"`
}

// Parse parses and validates the silo.yaml content data; filename is used in
// diagnostics only.
//
// # Errors
//
// A *Diagnostics listing every problem found, each with its position, when
// data is not a valid silo.yaml. Parse never returns another error type and
// never panics.
func Parse(filename string, data []byte) (st *Stack, err error) {
	defer func() {
		if r := recover(); r != nil {
			// Defence in depth: a parser bug must not take the process down.
			st, err = nil, &Diagnostics{{File: filename, Line: 1, Col: 1,
				Message: fmt.Sprintf("internal error parsing the file (%v); please report it", r)}}
		}
	}()
	d := newDecoder(filename)
	st = d.parse(data)
	if len(d.diags) > 0 {
		ds := d.diags
		ds.sort()
		if len(ds) > maxDiagnostics {
			last := ds[maxDiagnostics-1]
			ds = append(ds[:maxDiagnostics:maxDiagnostics], Diagnostic{File: filename, Line: last.Line, Col: last.Col,
				Message: fmt.Sprintf("%d more problems not shown; fix the ones above first", len(d.diags)-maxDiagnostics)})
		}
		return nil, &ds
	}
	return st, nil
}

// Load reads and parses the silo.yaml at path and sets Stack.Dir to the
// absolute path of its directory.
//
// # Errors
//
// An *Error with CodeNotFound when the file does not exist, a *Diagnostics
// when it is invalid or larger than MaxFileSize, and an *Error with
// CodeInvalid when it cannot be read.
func Load(path string) (*Stack, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, silo.Errorf(silo.CodeNotFound, "there is no %s; create it (see docs/spec.md for the format)", path)
	}
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "cannot open %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "cannot read %s: %w", path, err)
	}
	st, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	st.Dir = filepath.Dir(abs)
	return st, nil
}

// hasNUL reports the offset of the first NUL byte, or -1.
func hasNUL(data []byte) int { return bytes.IndexByte(data, 0) }
