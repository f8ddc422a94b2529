package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/silo-run/silo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func parseFile(t *testing.T, path string) *Stack {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Parse(filepath.Base(path), data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return st
}

func TestParseFull(t *testing.T) {
	st := parseFile(t, "testdata/full.yaml")
	if st.Version != 1 || st.Name != "findings" {
		t.Errorf("got version %d name %q, want 1 findings", st.Version, st.Name)
	}
	wantIngest := Function{
		Source: "functions/ingest", Handler: "handle", Memory: 64 << 20, Timeout: 2 * time.Second, Concurrency: 4,
		Tables:  map[string]Access{"findings": AccessReadWrite, "cache": AccessRead},
		Buckets: map[string]Access{"raw": AccessReadWrite},
		Config:  []string{"plan_name", "url"}, Secrets: []string{"github-token"}, Exports: []string{"threat-intel"},
	}
	if diff := cmp.Diff(wantIngest, st.Functions["ingest"]); diff != "" {
		t.Errorf("functions.ingest (-want +got):\n%s", diff)
	}
	wantList := Function{Source: "functions/list", Handler: DefaultHandler, Memory: DefaultMemory, Timeout: DefaultTimeout,
		Concurrency: DefaultConcurrency, Tables: map[string]Access{"findings": AccessRead}, Exports: []string{"feed-archive", "feed-version", "threat-intel"}}
	if diff := cmp.Diff(wantList, st.Functions["list"]); diff != "" {
		t.Errorf("functions.list defaults (-want +got):\n%s", diff)
	}
	wantParams := map[string]Param{
		"plan":         {Type: ParamString, Default: "free", Enum: []string{"free", "pro", "enterprise"}, Description: "Billing plan of the tenant."},
		"ring":         {Type: ParamString, Default: "everyone", Description: "Rollout ring the tenant belongs to (canary or everyone)."},
		"max_findings": {Type: ParamInt, Default: "1000"},
		"beta":         {Type: ParamBool, Default: "false"},
		"domain":       {Type: ParamString, Required: true, Description: "The tenant's own domain."},
	}
	if diff := cmp.Diff(wantParams, st.Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	wantRoutes := []Route{
		{Method: "POST", Path: "/findings", Function: "ingest"},
		{Method: "GET", Path: "/findings", Function: "list"},
		{Method: "GET", Path: "/findings/{id}", Function: "list"},
	}
	if diff := cmp.Diff(wantRoutes, st.Routes); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	wantSchedules := map[string]Schedule{
		"nightly-digest": {Function: "list", Cron: "0 3 * * *", Description: "Summarize the day's findings."},
		"refresh":        {Function: "ingest", Every: 15 * time.Minute},
	}
	if diff := cmp.Diff(wantSchedules, st.Schedules); diff != "" {
		t.Errorf("schedules (-want +got):\n%s", diff)
	}
	wantExports := map[string]Export{"threat-intel": {Table: "threat-intel"}, "feed-version": {Config: "feed_version"}, "feed-archive": {Bucket: "feeds"}}
	if diff := cmp.Diff(wantExports, st.Production.Exports); diff != "" {
		t.Errorf("production.exports (-want +got):\n%s", diff)
	}
	wantRings := []Ring{
		{Name: "developers", Select: Selector{Kind: silo.KindDeveloper, Percent: 100}, Concurrency: 8, Gates: Gates{OnInconclusive: "pause"}, OnRollback: "keep"},
		{Name: "canary", Select: Selector{Kind: silo.KindTenant, Params: map[string]string{"ring": "canary"}, Percent: 5},
			Concurrency: 16, Bake: 5 * time.Minute,
			Gates:         Gates{MaxErrorRate: 0.02, MaxP99Increase: 0.2, MinRequests: 50, Smoke: "smoke-fn", OnInconclusive: "pause"},
			FailureBudget: Budget{Count: 1}},
		{Name: "everyone", Select: Selector{Kind: silo.KindTenant, Percent: 100}, Concurrency: 16, Bake: 10 * time.Minute,
			Gates: Gates{MaxErrorRate: 0.02, OnInconclusive: "rollback"}, FailureBudget: Budget{Percent: 10}},
	}
	if diff := cmp.Diff(wantRings, st.Rollout.Rings); diff != "" {
		t.Errorf("rollout.rings (-want +got):\n%s", diff)
	}
}

// TestCanonicalJSON: the JSON of a stack does not depend on how the file
// orders or spells things.
func TestCanonicalJSON(t *testing.T) {
	a := `version: 1
name: app
functions:
  f: {source: ./fn, config: [b, a], tables: {x: read, y: read-write}}
tables: {x: {}, y: {}}
config: {a: "1", b: "2"}
`
	b := `name: app
config:
  b: "2"
  a: "1"
tables:
  y:
  x: {}
functions:
  f:
    tables: {y: read-write, x: read}
    config: [a, b]
    source: fn
    memory: 64MiB
    timeout: 5s
version: 1
`
	ja, jb := mustJSON(t, a), mustJSON(t, b)
	if ja != jb {
		t.Errorf("got different JSON for the same stack:\n%s\n%s", ja, jb)
	}
	// The "must" twin: a real change changes the JSON.
	if jc := mustJSON(t, strings.Replace(a, `"1"`, `"3"`, 1)); jc == ja {
		t.Errorf("got the same JSON after changing a config value")
	}
}

func mustJSON(t *testing.T, src string) string {
	t.Helper()
	st, err := Parse("silo.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDefaultRollout(t *testing.T) {
	st, err := Parse("silo.yaml", []byte("version: 1\nname: app\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultRollout(), st.Rollout); diff != "" {
		t.Errorf("rollout (-want +got):\n%s", diff)
	}
}

const base = "version: 1\nname: app\n"

// diagCases has one case per kind of diagnostic. want is a fragment the
// diagnostics must contain (so that -update cannot bless a case that stopped
// finding its problem); the full output is in testdata/diagnostics.golden.
var diagCases = []struct {
	name, src, want string
}{
	{"empty file", "", "the file is empty"},
	{"comment only", "# nothing\n", "the file is empty"},
	{"not a mapping", "- a\n- b\n", "must be a mapping"},
	{"missing version and name", "functions: {}\n", "missing version"},
	{"version 2", "version: 2\nname: app\n", "version 2 is not supported"},
	{"version string", "version: \"1\"\nname: app\n", "version must be a whole number"},
	{"bad app name", "version: 1\nname: My_App\n", "app name: invalid ID"},
	{"unknown top-level field", base + "functons: {}\n", `unknown field "functons" (did you mean "functions"?)`},
	{"duplicate key", base + "tables: {a: {}}\ntables: {b: {}}\n", `duplicate key "tables" (first at line 3)`},
	{"duplicate nested key", base + "tables:\n  a: {}\n  a: {}\n", `duplicate key "a"`},
	{"syntax error", base + "tables: {a: \n", "YAML syntax"},
	{"tab indentation", base + "tables:\n\ta: {}\n", "YAML syntax"},
	{"two documents", base + "---\nversion: 1\n", "more than one YAML document"},
	{"anchor and alias", base + "tables:\n  a: &t {}\n  b: *t\n", "anchors and aliases are not supported"},
	{"tag", base + "config: {a: !!str 5}\n", "YAML tags are not supported"},
	{"schedule unknown function", base + "functions:\n  digest: {source: ./f}\nschedules:\n  nightly: {function: digets, cron: \"0 3 * * *\"}\n", `schedule "nightly" runs function "digets", which is not declared in functions (did you mean "digest"?)`},
	{"schedule bad cron", base + "functions:\n  f: {source: ./f}\nschedules:\n  s: {function: f, cron: \"0 25 * * *\"}\n", `cron "0 25 * * *"`},
	{"schedule cron minute out of range", base + "functions:\n  f: {source: ./f}\nschedules:\n  s: {function: f, cron: \"99 * * * *\"}\n", `cron "99 * * * *": the minute field "99" holds 99, outside 0-59; write five fields`},
	{"schedule cron hour in a range", base + "functions:\n  f: {source: ./f}\nschedules:\n  s: {function: f, cron: \"0 1-30 * * *\"}\n", `the hour field "1-30" holds 30, outside 0-23`},
	{"schedule cron not a number", base + "functions:\n  f: {source: ./f}\nschedules:\n  s: {function: f, cron: \"x * * * *\"}\n", `the minute field "x" holds "x", which is not a number`},
	{"schedule cron bad step", base + "functions:\n  f: {source: ./f}\nschedules:\n  s: {function: f, cron: \"*/0 * * * *\"}\n", `the minute field "*/0" has step "0"`},
	{"schedule six-field cron", base + "functions:\n  f: {source: ./f}\nschedules:\n  s: {function: f, cron: \"0 0 3 * * *\"}\n", "write five fields"},
	{"schedule @every", base + "functions:\n  f: {source: ./f}\nschedules:\n  s: {function: f, cron: \"@every 5m\"}\n", `use "every: <duration>" instead of @every`},
	{"schedule cron and every", base + "functions:\n  f: {source: ./f}\nschedules:\n  s: {function: f, cron: \"@daily\", every: 1h}\n", "give cron or every, not both"},
	{"schedule neither", base + "functions:\n  f: {source: ./f}\nschedules:\n  s: {function: f}\n", "missing cron or every"},
	{"schedule every too short", base + "functions:\n  f: {source: ./f}\nschedules:\n  s: {function: f, every: 10s}\n", "every 10s is out of range; use 1m to 168h"},
	{"schedule missing function", base + "schedules:\n  s: {every: 1h}\n", `schedule "s": missing function`},
	{"param unknown field", base + "params:\n  plan: {type: string, defualt: free}\n", `unknown field "defualt" (did you mean "default"?)`},
	{"param missing type", base + "params:\n  plan: {default: free}\n", "missing type"},
	{"param bad type", base + "params:\n  plan: {type: strng}\n", `type "strng" is not string, int or bool (did you mean "string"?)`},
	{"param int default not int", base + "params:\n  n: {type: int, default: lots}\n", `default "lots" is not an int`},
	{"param string default is number", base + "params:\n  n: {type: string, default: 5}\n", `quote it: "5"`},
	{"param bool default", base + "params:\n  b: {type: bool, default: yes}\n", "is not a bool"},
	{"param default not in enum", base + "params:\n  plan: {type: string, default: fre, enum: [free, pro]}\n", `not one of the enum values free, pro (did you mean "free"?)`},
	{"param enum without default", base + "params:\n  plan: {type: string, enum: [free, pro]}\n", "has an enum but no default"},
	{"param enum on bool", base + "params:\n  b: {type: bool, enum: [true]}\n", "enum is for string and int params"},
	{"param required with default", base + "params:\n  d: {type: string, required: true, default: x}\n", "a required param has no default"},
	{"bad param name", base + "params:\n  Plan: {type: string}\n", `invalid param name "Plan"`},
	{"function unknown field", base + "functions:\n  f: {source: ./f, memroy: 64MiB}\n", `unknown field "memroy" (did you mean "memory"?)`},
	{"function missing source", base + "functions:\n  f: {handler: handle}\n", "missing source"},
	{"function absolute source", base + "functions:\n  f: {source: /abs/f}\n", "is absolute"},
	{"function source outside", base + "functions:\n  f: {source: ../other/f}\n", "outside the directory"},
	{"bad function name", base + "functions:\n  Ingest: {source: ./f}\n", `invalid function name "Ingest": use 1-63 lower-case letters, digits, '-' and '_', starting with a letter (write "ingest")`},
	{"bad handler", base + "functions:\n  f: {source: ./f, handler: \"my handler\"}\n", "is not a wasm export name"},
	{"size MB", base + "functions:\n  f: {source: ./f, memory: 512MB}\n", `memory "512MB" is not a size; write 512MiB`},
	{"size without unit", base + "functions:\n  f: {source: ./f, memory: 512}\n", "memory 512 has no unit; write 512MiB"},
	{"size garbage", base + "functions:\n  f: {source: ./f, memory: lots}\n", `memory "lots" is not a size`},
	{"memory over maximum", base + "functions:\n  f: {source: ./f, memory: 2GiB}\n", "over the maximum of 1GiB"},
	{"memory under minimum", base + "functions:\n  f: {source: ./f, memory: 64KiB}\n", "under the minimum of 1MiB"},
	{"bad duration", base + "functions:\n  f: {source: ./f, timeout: 5 seconds}\n", `timeout "5 seconds" is not a duration`},
	{"duration without unit", base + "functions:\n  f: {source: ./f, timeout: 5}\n", "timeout 5 has no unit; write 5s"},
	{"timeout over maximum", base + "functions:\n  f: {source: ./f, timeout: 10m}\n", "over the maximum of 5m"},
	{"concurrency out of range", base + "functions:\n  f: {source: ./f, concurrency: 0}\n", "concurrency 0 is out of range"},
	{"bad access", base + "tables: {t: {}}\nfunctions:\n  f: {source: ./f, tables: {t: write}}\n", `access "write" to table "t" is not read or read-write`},
	{"undeclared table", base + "tables: {findings: {}}\nfunctions:\n  f: {source: ./f, tables: {finding: read}}\n", `function "f" is granted table "finding", which is not declared in tables (did you mean "findings"?)`},
	{"undeclared bucket", base + "functions:\n  f: {source: ./f, buckets: {raw: read}}\n", `granted bucket "raw"`},
	{"undeclared config", base + "config: {plan_name: x}\nfunctions:\n  f: {source: ./f, config: [plan]}\n", `granted config "plan", which is not declared in config (did you mean "plan_name"?)`},
	{"undeclared secret", base + "secrets: {github-token: {}}\nfunctions:\n  f: {source: ./f, secrets: [github_token]}\n", `(did you mean "github-token"?)`},
	{"undeclared export", base + "functions:\n  f: {source: ./f, exports: [intel]}\n", `granted export "intel"`},
	{"grant listed twice", base + "config: {a: x}\nfunctions:\n  f: {source: ./f, config: [a, a]}\n", "listed twice"},
	{"grant not a list", base + "config: {a: x}\nfunctions:\n  f: {source: ./f, config: a}\n", "must be a list of config names"},
	{"table unknown field", base + "tables:\n  t: {descripton: x}\n", `(did you mean "description"?)`},
	{"bad table name", base + "tables:\n  bad.name: {}\n", `invalid table name "bad.name"`},
	{"config not scalar", base + "config:\n  a: [1, 2]\n", "must be a string, not a list"},
	{"config unknown param", base + "params: {plan: {type: string}}\nconfig:\n  a: \"${param.plna}\"\n", `param "plna" is not declared (did you mean "plan"?)`},
	{"config unknown reference", base + "config:\n  a: \"${tenant.name}\"\n", `unknown reference ${tenant.name}; use ${tenant.id} or ${param.NAME} (did you mean "tenant.id"?)`},
	{"config unterminated reference", base + "config:\n  a: \"${tenant.id\"\n", "unterminated ${"},
	{"route unknown function", base + "functions:\n  list: {source: ./f}\nroutes:\n  - {method: GET, path: /x, function: lister}\n", `route GET /x points at function "lister", which is not declared in functions (did you mean "list"?)`},
	{"route bad method", base + "functions:\n  f: {source: ./f}\nroutes:\n  - {method: get, path: /x, function: f}\n", `method "get" is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (write GET)`},
	{"route path without slash", base + "functions:\n  f: {source: ./f}\nroutes:\n  - {method: GET, path: x, function: f}\n", "must start with /"},
	{"route path with dotdot", base + "functions:\n  f: {source: ./f}\nroutes:\n  - {method: GET, path: /a/../b, function: f}\n", "must not contain .."},
	{"route path bad segment", base + "functions:\n  f: {source: ./f}\nroutes:\n  - {method: GET, path: \"/a b\", function: f}\n", "invalid segment"},
	{"route duplicate", base + "functions:\n  f: {source: ./f}\nroutes:\n  - {method: GET, path: \"/x/{id}\", function: f}\n  - {method: GET, path: \"/x/{name}\", function: f}\n", "duplicates the route at line 6"},
	{"route missing field", base + "functions:\n  f: {source: ./f}\nroutes:\n  - {method: GET, function: f}\n", "missing path"},
	{"route unknown field", base + "functions:\n  f: {source: ./f}\nroutes:\n  - {method: GET, path: /x, func: f}\n", `unknown field "func"`},
	{"routes not a list", base + "routes: {a: b}\n", "routes must be a list"},
	{"export to missing table", base + "production:\n  tables: {intel: {}}\n  exports:\n    threat-intel: {table: threat-intel}\n", `export "threat-intel" points at production table "threat-intel", which is not declared in production.tables (did you mean "intel"?)`},
	{"export to missing config", base + "production:\n  exports:\n    v: {config: version}\n", `points at production config "version"`},
	{"export two targets", base + "production:\n  tables: {t: {}}\n  buckets: {b: {}}\n  exports:\n    x: {table: t, bucket: b}\n", "exactly one of table, bucket or config"},
	{"export no target", base + "production:\n  exports:\n    x: {}\n", "exactly one of table, bucket or config"},
	{"production function grants tenant table", base + "tables: {t: {}}\nproduction:\n  functions:\n    p: {source: ./p, tables: {t: read}}\n", `production function "p" is granted table "t", which is not declared in production.tables`},
	{"production function with exports", base + "production:\n  tables: {t: {}}\n  exports: {e: {table: t}}\n  functions:\n    p: {source: ./p, exports: [e]}\n", "production functions read production resources directly"},
	{"production config with reference", base + "production:\n  config: {url: \"https://${tenant.id}.x\"}\n", "production config is shared by every tenant"},
	{"production unknown field", base + "production:\n  routes: []\n", `production: unknown field "routes"`},
	{"rollout without rings", base + "rollout: {}\n", "missing rings"},
	{"ring duplicate name", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant}}\n    - {name: a, select: {kind: tenant}}\n", `ring "a" is declared twice`},
	{"ring missing select", base + "rollout:\n  rings:\n    - {name: a}\n", "missing select"},
	{"ring bad kind", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenants}}\n", `kind "tenants" is not tenant, developer or environment (did you mean "tenant"?)`},
	{"ring production kind", base + "rollout:\n  rings:\n    - {name: a, select: {kind: production}}\n", "not in a ring"},
	{"ring percent out of range", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant, percent: 150}}\n", "percent 150 is out of range"},
	{"ring percent string out of range", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant, percent: 101%}}\n", "percent 101% is out of range"},
	{"ring selects unknown param", base + "params: {ring: {type: string}}\nrollout:\n  rings:\n    - {name: a, select: {kind: tenant, params: {rng: canary}}}\n", `selects on param "rng", which is not declared in params (did you mean "ring"?)`},
	{"ring selects param of wrong type", base + "params: {beta: {type: bool}}\nrollout:\n  rings:\n    - {name: a, select: {kind: tenant, params: {beta: maybe}}}\n", `param "beta": "maybe" is not a bool`},
	{"ring concurrency", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant}, concurrency: -1}\n", "concurrency -1 is out of range"},
	{"ring bad bake", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant}, bake: soon}\n", `bake "soon" is not a duration`},
	{"ring bake over maximum", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant}, bake: 200h}\n", "over the maximum"},
	{"gate error rate out of range", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant}, gates: {max_error_rate: 2}}\n", "max_error_rate 2 is out of range"},
	{"gate p99 not a number", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant}, gates: {max_p99_increase: lots}}\n", "must be a number or a percentage"},
	{"gate unknown smoke", base + "functions:\n  smoke: {source: ./s}\nrollout:\n  rings:\n    - {name: a, select: {kind: tenant}, gates: {smoke: smoke-fn}}\n", `smoke points at function "smoke-fn", which is not declared in functions (did you mean "smoke"?)`},
	{"gate bad on_inconclusive", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant}, gates: {on_inconclusive: promote}}\n", `on_inconclusive "promote" is not pause or rollback`},
	{"ring bad on_rollback", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant}, on_rollback: kep}\n", `on_rollback "kep" is not return or keep (did you mean "keep"?)`},
	{"gate unknown field", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant}, gates: {max_error: 0.1}}\n", `(did you mean "max_error_rate"?)`},
	{"failure budget bad", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant}, failure_budget: some}\n", "must be a count such as 1 or a percentage"},
	{"failure budget percent out of range", base + "rollout:\n  rings:\n    - {name: a, select: {kind: tenant}, failure_budget: 120%}\n", "out of range; use 0% to 100%"},
	{"many problems at once", `version: 1
name: app
functions:
  ingest:
    source: ./functions/ingest
    memory: 512MB
    timeout: forever
    tables: {findngs: read}
routes:
  - {method: GET, path: /findings, function: lister}
  - {method: GET, path: /findings, function: ingest}
`, `memory "512MB" is not a size; write 512MiB`},
}

func TestDiagnostics(t *testing.T) {
	var golden bytes.Buffer
	for _, tc := range diagCases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Parse("silo.yaml", []byte(tc.src))
			var ds *Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("got stack %v, error %v; want *Diagnostics", st != nil, err)
			}
			if st != nil {
				t.Errorf("got a stack with diagnostics")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got\n%s\nwant a diagnostic containing %q", err, tc.want)
			}
			for _, d := range *ds {
				if d.Line < 1 || d.Col < 1 || d.File != "silo.yaml" {
					t.Errorf("got diagnostic without a position: %+v", d)
				}
			}
			fmt.Fprintf(&golden, "== %s\n%s\n\n", tc.name, err)
		})
	}
	path := filepath.Join("testdata", "diagnostics.golden")
	if *update {
		if err := os.WriteFile(path, golden.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./spec -run TestDiagnostics -update)", err)
	}
	if diff := cmp.Diff(string(want), golden.String()); diff != "" {
		t.Errorf("diagnostics differ from %s (-want +got; go test ./spec -run TestDiagnostics -update to accept):\n%s", path, diff)
	}
}

// TestValidTwins: for each kind of reference that can be wrong, the same
// shape written right parses (so a validator that rejects everything fails).
func TestValidTwins(t *testing.T) {
	cases := map[string]string{
		"minimal":          base,
		"null sections":    base + "functions:\ntables:\nbuckets:\nconfig:\nsecrets:\nroutes:\nproduction:\n",
		"table null value": base + "tables:\n  t:\nfunctions:\n  f: {source: ./f, tables: {t: read}}\n",
		"wasm source":      base + "functions:\n  f: {source: ./build/f.wasm, memory: 1GiB, timeout: 5m, concurrency: 1000}\n",
		"grants":           base + "tables: {findings: {}}\nbuckets: {raw: {}}\nconfig: {plan_name: x}\nsecrets: {github-token: {}}\nproduction:\n  tables: {intel: {}}\n  exports: {intel: {table: intel}}\nfunctions:\n  f: {source: ./f, tables: {findings: read}, buckets: {raw: read-write}, config: [plan_name], secrets: [github-token], exports: [intel]}\n",
		"config refs":      base + "params: {plan: {type: string}}\nconfig:\n  a: \"${param.plan}-${tenant.id}\"\n  b: \"$${literal}\"\n  c: 5\n",
		"routes":           base + "functions:\n  f: {source: ./f}\nroutes:\n  - {method: GET, path: /, function: f}\n  - {method: POST, path: /, function: f}\n  - {method: GET, path: \"/x/{id}/y/{rest...}\", function: f}\n",
		"exports":          base + "production:\n  tables: {t: {}}\n  buckets: {b: {}}\n  config: {c: v}\n  exports:\n    t: {table: t}\n    b: {bucket: b}\n    c: {config: c}\n",
		"rings":            base + "params: {beta: {type: bool}, n: {type: int, default: 3}}\nrollout:\n  rings:\n    - {name: a, select: {kind: environment, params: {beta: true, n: 3}, percent: 0}}\n    - {name: b, select: {kind: tenant, percent: 100%}, failure_budget: 0, gates: {max_error_rate: 100%, max_p99_increase: 0.5, min_requests: 0}}\n",
		"params":           base + "params:\n  n: {type: int, default: -7, enum: [-7, 3]}\n  s: {type: string, default: \"5\"}\n  r: {type: string, required: true}\n",
		"flow document":    `{version: 1, name: app, tables: {t: {description: "a table"}}}`,
		"comments and BOM": "\ufeff# hello\n" + base + "# bye\n",
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse("silo.yaml", []byte(src)); err != nil {
				t.Errorf("got\n%v\nwant no error for\n%s", err, src)
			}
		})
	}
}

// TestHostile: inputs built to hurt are refused with a clear message, and
// quickly (the benchmark below measures how quickly).
func TestHostile(t *testing.T) {
	bomb := base + "a: &a [x, x, x, x, x, x, x, x, x]\n"
	for _, l := range "bcdefghi" {
		prev := string(l - 1)
		bomb += fmt.Sprintf("%c: &%c [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", l, l, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	cases := []struct{ name, src, want string }{
		{"too large", base + "# " + strings.Repeat("x", MaxFileSize) + "\n", "limited to 1 MiB"},
		{"NUL byte", base + "name2: a\x00b\n", "silo.yaml:3:9: the file contains a NUL byte"},
		{"not UTF-8", base + "config: {a: \"\xff\xfe\"}\n", "silo.yaml:3:14: the file is not valid UTF-8"},
		{"UTF-16", "\xff\xfe" + base, "not valid UTF-8"},
		{"deep flow unclosed", strings.Repeat("[", 10000), "nesting is deeper than 64"},
		{"deep flow closed", strings.Repeat("[", 5000) + strings.Repeat("]", 5000), "nesting is deeper than 64"},
		{"deep flow maps", strings.Repeat("{a: ", 100000) + strings.Repeat("}", 100000), "nesting is deeper than 64"},
		{"deep block sequence", strings.Repeat("- ", 200000) + "x\n", "nesting is deeper than 64"},
		{"deep block mapping", deepBlock(100), "nesting is deeper than 64"},
		{"alias bomb", bomb, "anchors and aliases are not supported"},
		{"merge key", base + "x: &x {a: 1}\ny: {<<: *x}\n", "anchors and aliases are not supported"},
		{"many keys", base + manyKeys(50000), "more problems not shown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("silo.yaml", []byte(tc.src))
			var ds *Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("got %v, want *Diagnostics", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got\n%.2000s\nwant a diagnostic containing %q", err, tc.want)
			}
		})
	}
}

func deepBlock(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%sk%d:\n", strings.Repeat(" ", i), i)
	}
	return b.String()
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "k%d: v\n", i)
	}
	return b.String()
}

func BenchmarkParseFull(b *testing.B) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("full.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHostile(b *testing.B) {
	for _, c := range []struct{ name, src string }{
		{"deep-flow", strings.Repeat("[", 500000)},
		{"deep-block-seq", strings.Repeat("- ", 500000)},
		{"1MiB-of-keys", base + manyKeys(100000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			data := []byte(c.src)[:min(len(c.src), MaxFileSize)]
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				Parse("silo.yaml", data)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "silo.yaml")
	if err := os.WriteFile(path, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dir != dir {
		t.Errorf("got Dir %q, want %q", st.Dir, dir)
	}

	_, err = Load(filepath.Join(dir, "nope.yaml"))
	if silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("got %v (code %s), want code not_found", err, silo.ErrorCode(err))
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(base+"#"+strings.Repeat("x", 2*MaxFileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(big)
	var ds *Diagnostics
	if !errors.As(err, &ds) || !strings.Contains(err.Error(), "limited to 1 MiB") {
		t.Errorf("got %v, want a size diagnostic", err)
	}
}

func TestResolveParams(t *testing.T) {
	st := parseFile(t, "testdata/full.yaml")
	cases := []struct {
		name  string
		given map[string]string
		want  map[string]string
		err   string
	}{
		{"defaults", map[string]string{"domain": "acme.com"},
			map[string]string{"plan": "free", "ring": "everyone", "max_findings": "1000", "beta": "false", "domain": "acme.com"}, ""},
		{"canonical forms", map[string]string{"domain": "a", "plan": "pro", "max_findings": "007", "beta": "TRUE"},
			map[string]string{"plan": "pro", "ring": "everyone", "max_findings": "7", "beta": "true", "domain": "a"}, ""},
		{"unknown with suggestion", map[string]string{"domain": "a", "plna": "pro"}, nil, `unknown parameter "plna" (did you mean "plan"?)`},
		{"not in enum", map[string]string{"domain": "a", "plan": "gold"}, nil, `parameter "plan": "gold" is not one of free, pro, enterprise`},
		{"not an int", map[string]string{"domain": "a", "max_findings": "many"}, nil, `"many" is not an int`},
		{"not a bool", map[string]string{"domain": "a", "beta": "maybe"}, nil, `"maybe" is not a bool`},
		{"required missing", map[string]string{}, nil, `parameter "domain" is required`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.ResolveParams(tc.given)
			if tc.err != "" {
				if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an invalid error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestInterpolate(t *testing.T) {
	params := map[string]string{"plan": "pro"}
	cases := []struct{ in, want, err string }{
		{"https://${tenant.id}.example.com", "https://acme.example.com", ""},
		{"${param.plan}/${param.plan}", "pro/pro", ""},
		{"plain", "plain", ""},
		{"$${tenant.id} and $5", "${tenant.id} and $5", ""},
		{"", "", ""},
		{"${param.nope}", "", "unknown parameter"},
		{"${tenant.name}", "", "unknown reference ${tenant.name}"},
		{"${tenant.id", "", "unterminated"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Interpolate(tc.in, "acme", params)
			if tc.err != "" {
				if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an invalid error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestDeepAt(t *testing.T) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		src  string
		deep bool
	}{
		{"full example", string(full), false},
		{"flow 60", strings.Repeat("[", 60) + strings.Repeat("]", 60), false},
		{"flow 70", strings.Repeat("[", 70) + strings.Repeat("]", 70), true},
		{"brackets in quotes", `a: "` + strings.Repeat("[", 100) + `"`, false},
		{"brackets in plain scalar", "a: x" + strings.Repeat("[", 100), false},
		{"brackets in comment", "a: 1 # " + strings.Repeat("[", 100), false},
		{"dashes 60", strings.Repeat("- ", 60) + "x", false},
		{"dashes 70", strings.Repeat("- ", 70) + "x", true},
		{"block 60", deepBlock(60), false},
		{"block 70", deepBlock(70), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := deepAt([]byte(tc.src)) >= 0; got != tc.deep {
				t.Errorf("got deep %v, want %v", got, tc.deep)
			}
		})
	}
}

// TestDiagnosticsAreUserFacing checks that an invalid spec's diagnostics
// reach a user whole (code invalid, every line with its position) through
// silo.UserMessage, which the API and silo dev use, while an internal error
// (the twin) stays hidden behind the generic sentence.
func TestDiagnosticsAreUserFacing(t *testing.T) {
	_, err := Parse("silo.yaml", []byte("app: demo\nfunctions:\n  hello:\n    memory: 12 parsecs\n"))
	if err == nil {
		t.Fatal("Parse accepted a memory of 12 parsecs")
	}
	msg := silo.UserMessage(err)
	if silo.ErrorCode(err) != silo.CodeInvalid || msg != err.Error() || !strings.Contains(msg, "silo.yaml:4:") {
		t.Fatalf("UserMessage %q (code %s); want the diagnostics %q with code invalid", msg, silo.ErrorCode(err), err.Error())
	}
	if got := silo.UserMessage(fmt.Errorf("open store: %w", os.ErrPermission)); strings.Contains(got, "permission") {
		t.Fatalf("an internal error reached the user as %q", got)
	}
}
