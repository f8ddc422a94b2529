package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/runtime"
)

// nameCorpus is every way the probe names another account's resource n (of
// account other) where a resource name is expected: directly, by
// traversal, encoded, absolute, with NUL, trailing dots and spaces, unicode
// look-alikes and overlong.
func nameCorpus(other silo.AccountID, n string) []string {
	o := string(other)
	return []string{
		n, // B's resource by its own name: must resolve to A's own
		o + "/" + n, "../" + o + "/" + n, "../../" + o + "/" + n, "..", "../" + n, ".",
		"%2e%2e/" + o + "/" + n, "..%2f" + o + "%2f" + n, `..\` + o + `\` + n,
		"/" + o + "/" + n, "/accounts/" + o + "/" + n, o + ":" + n, o + "." + n,
		n + "\x00" + o, n + ".", n + " ", n + "/.", n + "/..",
		"\u2024\u2024/" + o + "/" + n, "..\uff0f" + o + "\uff0f" + n, strings.ToUpper(n),
		strings.Repeat("n", 4096), "*", "",
	}
}

// keyCorpus is every way the probe reaches for another account's data (of
// account other, whose marker key is keyMarker) where an object key is
// expected, inside its own table or bucket. It follows the local provider's
// layout (accounts/<id>/blobs/<bucket>/<key>, data.db, secrets.json,
// data.key) as well as generic traversal.
func keyCorpus(other silo.AccountID) []string {
	o := string(other)
	return []string{
		keyMarker, "dir/" + keyMarker, // B's keys by name: must be A's own
		"../" + keyMarker, "../../" + o + "/" + keyMarker,
		"../../../" + o + "/blobs/" + bktProbe + "/" + keyMarker,
		"../../../" + o + "/secrets.json", "../../../" + o + "/data.key", "../../../" + o + "/config.json",
		"../../../" + o + "/data.db", "../../../../accounts/" + o + "/blobs/" + bktProbe + "/" + keyMarker,
		"dir/../../../../" + o + "/blobs/" + bktProbe + "/" + keyMarker,
		"%2e%2e/%2e%2e/%2e%2e/" + o + "/blobs/" + bktProbe + "/" + keyMarker,
		"..%2f..%2f..%2f" + o + "%2fblobs%2f" + bktProbe + "%2f" + keyMarker,
		`..\..\..\` + o + `\blobs\` + bktProbe + `\` + keyMarker,
		"/" + o + "/" + keyMarker, "/etc/passwd", "/accounts/" + o + "/blobs/" + bktProbe + "/" + keyMarker,
		keyMarker + "\x00../../../" + o, keyMarker + ".", keyMarker + " ", keyMarker + "/.", "./" + keyMarker,
		"\u2024\u2024/\u2024\u2024/\u2024\u2024/" + o + "/blobs/" + bktProbe + "/" + keyMarker,
		"..\uff0f..\uff0f..\uff0f" + o + "\uff0fblobs\uff0f" + bktProbe + "\uff0f" + keyMarker,
		strings.Repeat("k", 8192), "..", ".", "",
	}
}

// pending is an attempt whose outcome is known only once the probe has
// looked at what a write may have reached.
type pending struct {
	t       *tally
	what    string
	op      op
	marker  string // the value an attempted write carried; "" for reads
	breach  string // what a read returned that it must not have
	outcome string // the host's answer
}

// checks holds the attempts of the data surfaces until the dumps are in.
type checks struct {
	list []*pending
}

func (c *checks) add(t *tally, what string, o op, marker string) *pending {
	p := &pending{t: t, what: what, op: o, marker: marker}
	c.list = append(c.list, p)
	return p
}

func describe(o op) string {
	s := o.Op
	if o.Name != "" || strings.HasPrefix(o.Op, "kv.") || strings.HasPrefix(o.Op, "blob.") || o.Op == "config" || o.Op == "secret" || strings.HasPrefix(o.Op, "export.") {
		s += fmt.Sprintf(" name=%s", quoteShort(o.Name))
	}
	if o.Key != "" {
		s += fmt.Sprintf(" key=%s", quoteShort(o.Key))
	}
	if o.Prefix != "" {
		s += fmt.Sprintf(" prefix=%s", quoteShort(o.Prefix))
	}
	return s
}

func quoteShort(s string) string {
	if len(s) > 48 {
		return fmt.Sprintf("%q…(%d bytes)", s[:40], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// hostCalls runs the three data surfaces: a tenant function against
// another tenant (every host call × the traversal corpus), a tenant
// function against production, and a production function against tenants.
func (r *run) hostCalls(ctx context.Context, rep *Report) error {
	ht := newTally("host-calls", "a function of A names B's table, bucket, config, secret and exports through every host call, with the traversal corpus")
	tp := newTally("tenant-to-production", "a function of A writes production (tables, export tables, buckets) by name and by traversal")
	pt := newTally("production-to-tenants", "a production function, granted tenant names, reads and writes tenant tables, buckets, config and secrets")
	var c checks
	a, b := r.a, r.b

	// Controls of A first: A reads and writes its own table, bucket,
	// config and secret, and reads every production export.
	own := "own-" + r.nonce
	ctlOps := []struct {
		what  string
		o     op
		check func(result) string
	}{
		{"A reads its own table", op{Op: "kv.get", Name: tblProbe, Key: keyMarker}, wantValue(a.kv)},
		{"A scans its own table", op{Op: "kv.scan", Name: tblProbe}, wantContains(a.kv)},
		{"A writes its own table", op{Op: "kv.put", Name: tblProbe, Key: "own", Value: []byte(own)}, wantOK},
		{"A reads back what it wrote", op{Op: "kv.get", Name: tblProbe, Key: "own"}, wantValue(own)},
		{"A deletes from its own table", op{Op: "kv.delete", Name: tblProbe, Key: "own"}, wantOK},
		{"A adds to its own counter", op{Op: "kv.add", Name: tblProbe, Key: keyCounter}, wantValue(a.count)},
		{"A reads its own blob", op{Op: "blob.get", Name: bktProbe, Key: keyMarker}, wantValue(a.blob)},
		{"A lists its own bucket", op{Op: "blob.list", Name: bktProbe, Prefix: "dir/"}, wantContains("dir/" + keyMarker)},
		{"A writes its own bucket", op{Op: "blob.put", Name: bktProbe, Key: "own", Value: []byte(own)}, wantOK},
		{"A reads back the blob it wrote", op{Op: "blob.get", Name: bktProbe, Key: "own"}, wantValue(own)},
		{"A deletes its own blob", op{Op: "blob.delete", Name: bktProbe, Key: "own"}, wantOK},
		{"A reads its own config", op{Op: "config", Name: cfgMarker}, wantValue(a.cfg)},
		{"A reads its own secret", op{Op: "secret", Name: secProbe}, wantValue(a.secret)},
	}
	exports := sortedKeys(r.prod.exports)
	for _, e := range exports {
		es := r.prod.exports[e]
		if es.Config != "" {
			ctlOps = append(ctlOps, struct {
				what  string
				o     op
				check func(result) string
			}{"A reads production config export " + e, op{Op: "export.get", Name: e}, wantOK})
			continue
		}
		ctlOps = append(ctlOps, struct {
			what  string
			o     op
			check func(result) string
		}{"A reads production export " + e, op{Op: "export.scan", Name: e, Limit: 5}, wantOK})
	}
	ops := make([]op, len(ctlOps))
	for i, x := range ctlOps {
		ops[i] = x.o
	}
	res, err := r.batch(ctx, a, ops)
	if err != nil {
		return err
	}
	for i, x := range ctlOps {
		ht.control(x.what+" ("+describe(x.o)+")", x.check(res[i]))
	}
	for i, x := range ctlOps {
		if strings.HasPrefix(x.o.Op, "export.") {
			tp.control(x.what, x.check(res[i]))
		}
	}
	if len(exports) == 0 {
		tp.notApplicable("A reads a production export", "production exports nothing, so tenants have no read of production to check")
	}

	// Attempts of A against B.
	var aOps []op
	var aPend []*pending
	wn := 0
	write := func(t *tally, o op) {
		wn++
		m := fmt.Sprintf("w%d-%s-by-%s", wn, r.nonce, a.id)
		o.Value = []byte(m)
		aOps = append(aOps, o)
		aPend = append(aPend, c.add(t, "A: "+describe(o), o, m))
	}
	read := func(t *tally, o op) {
		aOps = append(aOps, o)
		aPend = append(aPend, c.add(t, "A: "+describe(o), o, ""))
	}
	// An add to a key named by a fresh marker: wherever it lands, the
	// marker turns up as a key there.
	addAt := func(t *tally, o op) {
		wn++
		o.Op, o.Key = "kv.add", fmt.Sprintf("a%d-%s-by-%s", wn, r.nonce, a.id)
		aOps = append(aOps, o)
		aPend = append(aPend, c.add(t, "A: "+describe(o), o, o.Key))
	}
	for _, n := range nameCorpus(b.id, tblProbe) {
		read(ht, op{Op: "kv.get", Name: n, Key: keyMarker})
		read(ht, op{Op: "kv.scan", Name: n})
		write(ht, op{Op: "kv.put", Name: n, Key: keyMarker})
		read(ht, op{Op: "kv.delete", Name: n, Key: "dir/" + keyMarker})
		read(ht, op{Op: "kv.add", Name: n, Key: keyCounter}) // answers the value before the add
		addAt(ht, op{Name: n})
	}
	for _, n := range nameCorpus(b.id, bktProbe) {
		read(ht, op{Op: "blob.get", Name: n, Key: keyMarker})
		read(ht, op{Op: "blob.list", Name: n})
		write(ht, op{Op: "blob.put", Name: n, Key: keyMarker})
		read(ht, op{Op: "blob.delete", Name: n, Key: "dir/" + keyMarker})
	}
	for _, n := range nameCorpus(b.id, cfgMarker) {
		read(ht, op{Op: "config", Name: n})
	}
	for _, n := range nameCorpus(b.id, secProbe) {
		read(ht, op{Op: "secret", Name: n})
	}
	exportName := "export"
	if len(exports) > 0 {
		exportName = exports[0]
	}
	for _, n := range nameCorpus(b.id, exportName) {
		read(ht, op{Op: "export.get", Name: n, Key: keyMarker})
		read(ht, op{Op: "export.scan", Name: n})
	}
	for _, k := range keyCorpus(b.id) {
		read(ht, op{Op: "kv.get", Name: tblProbe, Key: k})
		read(ht, op{Op: "kv.scan", Name: tblProbe, Prefix: k})
		write(ht, op{Op: "kv.put", Name: tblProbe, Key: k})
		read(ht, op{Op: "kv.delete", Name: tblProbe, Key: k})
		read(ht, op{Op: "kv.add", Name: tblProbe, Key: k})
		read(ht, op{Op: "blob.get", Name: bktProbe, Key: k})
		read(ht, op{Op: "blob.list", Name: bktProbe, Prefix: k})
		write(ht, op{Op: "blob.put", Name: bktProbe, Key: k})
		read(ht, op{Op: "blob.delete", Name: bktProbe, Key: k})
		for _, e := range exports {
			read(ht, op{Op: "export.get", Name: e, Key: k})
			read(ht, op{Op: "export.scan", Name: e, Prefix: k})
		}
	}

	// Attempts of A against production: writes by name and traversal.
	prodNames := append(append([]string{}, r.prod.tables...), exports...)
	if len(prodNames) == 0 {
		prodNames = []string{"threat-intel"}
	}
	for _, t := range prodNames {
		for _, n := range []string{t, "production/" + t, "../production/" + t, "../../production/" + t, "/production/" + t,
			"production:" + t, "../../../production/tables/" + t, "..%2fproduction%2f" + t} {
			write(tp, op{Op: "kv.put", Name: n, Key: "probe-" + r.nonce})
			read(tp, op{Op: "kv.delete", Name: n, Key: "probe-" + r.nonce})
			addAt(tp, op{Name: n})
		}
	}
	prodBuckets := r.prod.buckets
	if len(prodBuckets) == 0 {
		prodBuckets = []string{"assets"}
	}
	for _, pb := range prodBuckets {
		for _, k := range []string{"../../../production/blobs/" + pb + "/w", "../../../../accounts/production/blobs/" + pb + "/w",
			"/production/blobs/" + pb + "/w", `..\..\..\production\blobs\` + pb + `\w`, "%2e%2e/%2e%2e/%2e%2e/production/blobs/" + pb + "/w"} {
			write(tp, op{Op: "blob.put", Name: bktProbe, Key: k})
		}
		for _, n := range []string{pb, "production/" + pb, "../production/" + pb, "../../production/blobs/" + pb} {
			write(tp, op{Op: "blob.put", Name: n, Key: "w"})
		}
	}
	for _, k := range []string{"../../../production/secrets.json", "../../../production/data.db", "../../../production/data.key"} {
		write(tp, op{Op: "blob.put", Name: bktProbe, Key: k})
	}

	res, err = r.batch(ctx, a, aOps)
	if err != nil {
		return err
	}
	for i, p := range aPend {
		p.outcome = res[i].Status
		if res[i].Status == "ok" {
			p.breach = leak(res[i].Values, b.id, b.markers())
		}
	}

	// The production probe: controls on its own tables, attempts on
	// tenant names.
	if _, err := r.productionProbe(ctx, pt, &c); err != nil {
		return err
	}

	// Where could a write have landed? Dump B, A and production through
	// their own principals and look for every write marker; B's planted
	// markers must still be there.
	dumps := map[string][][]byte{}
	for _, x := range []*acct{b, a} {
		res, err := r.batch(ctx, x, []op{{Op: "kv.scan", Name: tblProbe, Limit: 100000}, {Op: "blob.dump", Name: bktProbe, Limit: 100000}})
		if err != nil {
			return fmt.Errorf("probe: read back %s: %w", x.id, err)
		}
		for _, y := range res {
			if y.Status != "ok" {
				return fmt.Errorf("probe: read back %s: %s", x.id, y.Status)
			}
			dumps[string(x.id)] = append(dumps[string(x.id)], y.Values...)
		}
	}
	pd, err := r.productionDump(ctx)
	if err != nil {
		return err
	}
	dumps[string(silo.ProductionID)] = pd
	// B reads its own planted markers back (the dump can see B's data), and
	// none of the deletes of A or production removed one.
	bDump := result{Status: "ok", Values: dumps[string(b.id)]}
	ht.control("B reads its own planted markers", joinProblems(wantContains(b.kv)(bDump), wantContains(b.blob)(bDump)))
	ht.attempt("A's and production's deletes removed B's planted table keys", "", presentIn(dumps[string(b.id)], b.kv, 2))
	ht.attempt("A's and production's deletes removed B's planted blobs", "", presentIn(dumps[string(b.id)], b.blob, 2))
	ht.attempt("A's and production's adds changed B's counter", "", presentIn(dumps[string(b.id)], b.count, 1))

	for _, p := range c.list {
		breach := p.breach
		if p.marker != "" {
			for _, who := range sortedKeys(dumps) {
				if who == string(a.id) && p.t != pt {
					continue // A's own writes may land in A
				}
				if who == string(silo.ProductionID) && p.t == pt {
					continue // production's own writes may land in production
				}
				if containsAny(dumps[who], p.marker) {
					breach = strings.TrimPrefix(breach+"; ", "; ") + fmt.Sprintf("the written value %q turned up in account %s", p.marker, who)
				}
			}
		}
		p.t.attempt(p.what, p.outcome, breach)
	}
	rep.add(ht)
	rep.add(tp)
	rep.add(pt)
	return nil
}

// productionProbe runs the probe guest in the production account as a
// function granted, by name, every tenant resource name of the corpus (the
// broadest grant a production silo.yaml could ask for). Its host holds
// production's handle only, so every attempt must be denied or stay inside
// production. Reads of production's own tables are its controls.
func (r *run) productionProbe(ctx context.Context, pt *tally, c *checks) ([]*pending, error) {
	a, b := r.a, r.b
	fs := silo.FunctionSpec{Artifact: r.digest, Tables: map[string]string{}, Buckets: map[string]string{}}
	for _, t := range r.prod.tables {
		fs.Tables[t] = "read"
	}
	for _, bk := range r.prod.buckets {
		fs.Buckets[bk] = "read"
	}
	var ops []op
	var pend []*pending
	wn := 0
	for _, other := range []*acct{b, a} {
		for _, n := range nameCorpus(other.id, tblProbe) {
			if _, ok := fs.Tables[n]; !ok {
				fs.Tables[n] = "read-write"
			}
			ops = append(ops, op{Op: "kv.get", Name: n, Key: keyMarker}, op{Op: "kv.scan", Name: n})
			wn++
			ops = append(ops, op{Op: "kv.put", Name: n, Key: keyMarker, Value: []byte(fmt.Sprintf("p%d-%s-by-production", wn, r.nonce))})
			wn++
			ops = append(ops, op{Op: "kv.add", Name: n, Key: keyCounter}, op{Op: "kv.add", Name: n, Key: fmt.Sprintf("p%d-%s-by-production", wn, r.nonce)})
		}
		for _, n := range nameCorpus(other.id, bktProbe) {
			if _, ok := fs.Buckets[n]; !ok {
				fs.Buckets[n] = "read-write"
			}
			ops = append(ops, op{Op: "blob.get", Name: n, Key: keyMarker}, op{Op: "blob.list", Name: n})
			wn++
			ops = append(ops, op{Op: "blob.put", Name: n, Key: keyMarker, Value: []byte(fmt.Sprintf("p%d-%s-by-production", wn, r.nonce))})
		}
		for _, n := range nameCorpus(other.id, cfgMarker) {
			fs.Config = append(fs.Config, n)
			ops = append(ops, op{Op: "config", Name: n})
		}
		for _, n := range nameCorpus(other.id, secProbe) {
			fs.Secrets = append(fs.Secrets, n)
			ops = append(ops, op{Op: "secret", Name: n})
		}
	}
	// Traversal keys inside production's own tables and buckets (reads
	// only: the probe never writes live production data).
	for _, t := range r.prod.tables {
		for _, k := range keyCorpus(b.id) {
			ops = append(ops, op{Op: "kv.get", Name: t, Key: k}, op{Op: "kv.scan", Name: t, Prefix: k})
		}
	}
	for _, bk := range r.prod.buckets {
		for _, k := range keyCorpus(b.id) {
			ops = append(ops, op{Op: "blob.get", Name: bk, Key: k}, op{Op: "blob.list", Name: bk, Prefix: k})
		}
	}
	fs.Config, fs.Secrets = dedupe(fs.Config), dedupe(fs.Secrets)
	nAttempts := len(ops)

	// Controls: production reads its own tables and buckets.
	for _, t := range r.prod.tables {
		ops = append(ops, op{Op: "kv.scan", Name: t, Limit: 5})
	}
	for _, bk := range r.prod.buckets {
		ops = append(ops, op{Op: "blob.list", Name: bk, Limit: 5})
	}
	if len(r.prod.tables)+len(r.prod.buckets) == 0 {
		pt.notApplicable("production reads its own tables", "the production account declares no table or bucket")
	}

	res, err := r.invokeProduction(ctx, fs, ops)
	if err != nil {
		return nil, err
	}
	markers := map[string]string{}
	for _, x := range []*acct{a, b} {
		for k, v := range x.markers() {
			markers[string(x.id)+"'s "+k] = v
		}
	}
	for i := 0; i < nAttempts; i++ {
		o := ops[i]
		m := ""
		switch {
		case strings.HasSuffix(o.Op, ".put"):
			m = string(o.Value)
		case o.Op == "kv.add" && o.Key != keyCounter:
			m = o.Key // the add's key is its marker
		}
		p := c.add(pt, "production: "+describe(o), o, m)
		pend = append(pend, p)
		p.outcome = res[i].Status
		if res[i].Status == "ok" {
			p.breach = leak(res[i].Values, "a tenant", markers)
		}
	}
	for i := nAttempts; i < len(ops); i++ {
		pt.control("production reads its own "+describe(ops[i]), wantOK(res[i]))
	}
	return pend, nil
}

// invokeProduction runs ops in the probe guest as production function
// fnProdProbe with grants fs, through the real decision point (a policy
// compiled from production's recorded resources plus that function) and
// the real guarded host, which holds production's data handle only.
func (r *run) invokeProduction(ctx context.Context, fs silo.FunctionSpec, ops []op) ([]result, error) {
	fr, err := silo.NewResource(silo.TypeFunction, fnProdProbe, fs)
	if err != nil {
		return nil, err
	}
	rs := append(append([]silo.Resource{}, r.prod.resources...), fr)
	ap, err := isolation.Compile(silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction, State: silo.StateActive}, rs)
	if err != nil {
		return nil, fmt.Errorf("probe: compile the production probe's policy: %w", err)
	}
	pol := isolation.NewPolicy()
	pol.Set(ap)
	data, err := r.t.Provider.Data(ctx, silo.ProductionID)
	if err != nil {
		return nil, fmt.Errorf("probe: open production's data plane: %w", err)
	}
	digest, err := r.t.Runtime.Compile(ctx, r.t.Guest)
	if err != nil {
		return nil, fmt.Errorf("probe: load the probe guest: %w", err)
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	host := isolation.FunctionHost(pol, silo.ProductionID, fnProdProbe, data, nil, nil)
	resp, err := r.t.Runtime.Invoke(ctx, runtime.Invocation{
		Account: silo.ProductionID, Function: fnProdProbe, Digest: digest, Host: host,
		Request: runtime.Request{ID: "probe-" + r.nonce, Method: "POST", Path: "/probe", Body: body},
	})
	if err != nil {
		return nil, fmt.Errorf("probe: run the production probe: %w", err)
	}
	if resp.Status != 200 {
		return nil, fmt.Errorf("probe: the production probe answered %d: %.300s", resp.Status, resp.Body)
	}
	var br batchResp
	if err := json.Unmarshal(resp.Body, &br); err != nil || len(br.Results) != len(ops) {
		return nil, fmt.Errorf("probe: the production probe answered %d results for %d ops (%v)", len(br.Results), len(ops), err)
	}
	return br.Results, nil
}

// productionDump reads every production table and bucket as production's
// own probe function, to find writes that must not have landed there.
func (r *run) productionDump(ctx context.Context) ([][]byte, error) {
	fs := silo.FunctionSpec{Artifact: r.digest, Tables: map[string]string{}, Buckets: map[string]string{}}
	var ops []op
	for _, t := range r.prod.tables {
		fs.Tables[t] = "read"
		ops = append(ops, op{Op: "kv.scan", Name: t, Limit: 100000})
	}
	for _, b := range r.prod.buckets {
		fs.Buckets[b] = "read"
		ops = append(ops, op{Op: "blob.dump", Name: b, Limit: 100000})
	}
	if len(ops) == 0 {
		return nil, nil
	}
	res, err := r.invokeProduction(ctx, fs, ops)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for i, x := range res {
		if x.Status != "ok" && x.Status != "not found" {
			return nil, fmt.Errorf("probe: read back production (%s): %s", describe(ops[i]), x.Status)
		}
		out = append(out, x.Values...)
	}
	return out, nil
}

func wantOK(x result) string {
	if x.Status != "ok" {
		return "the host answered " + x.Status
	}
	return ""
}

func wantValue(v string) func(result) string {
	return func(x result) string {
		if x.Status != "ok" {
			return "the host answered " + x.Status
		}
		if len(x.Values) != 1 || string(x.Values[0]) != v {
			return fmt.Sprintf("got %q, want %q", x.Values, v)
		}
		return ""
	}
}

func wantContains(v string) func(result) string {
	return func(x result) string {
		if x.Status != "ok" {
			return "the host answered " + x.Status
		}
		if !containsAny(x.Values, v) {
			return fmt.Sprintf("%q is not among the %d values returned", v, len(x.Values))
		}
		return ""
	}
}

func containsAny(values [][]byte, m string) bool {
	for _, v := range values {
		if bytes.Contains(v, []byte(m)) {
			return true
		}
	}
	return false
}

// presentIn checks that marker appears at least n times in values.
func presentIn(values [][]byte, marker string, n int) string {
	c := 0
	for _, v := range values {
		if bytes.Equal(v, []byte(marker)) {
			c++
		}
	}
	if c < n {
		return fmt.Sprintf("found %d of its %d copies of %q", c, n, marker)
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// joinProblems joins the non-empty problems with "; ".
func joinProblems(ps ...string) string {
	var out []string
	for _, p := range ps {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
