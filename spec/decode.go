package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/silo-run/silo"
	"go.yaml.in/yaml/v3"
)

// decoder turns the YAML node tree into a Stack, collecting diagnostics.
// Checks that need the whole file (references between sections) are queued
// in later and run once everything is decoded.
type decoder struct {
	file  string
	diags Diagnostics
	later []func(*Stack)
	// tooDeep stops the walk at the first node nested deeper than MaxDepth.
	tooDeep bool
}

func newDecoder(file string) *decoder { return &decoder{file: file} }

func (d *decoder) at(line, col int, format string, args ...any) {
	d.diags = append(d.diags, Diagnostic{File: d.file, Line: max(line, 1), Col: max(col, 1), Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.at(n.Line, n.Column, format, args...)
}

// known field names of each object, from the JSON tags of its Go type, so
// that silo.yaml, the canonical JSON and the JSON Schema share one vocabulary.
var (
	stackFields      = jsonFields(reflect.TypeFor[Stack]())
	paramFields      = jsonFields(reflect.TypeFor[Param]())
	functionFields   = jsonFields(reflect.TypeFor[Function]())
	tableFields      = jsonFields(reflect.TypeFor[Table]())
	routeFields      = jsonFields(reflect.TypeFor[Route]())
	scheduleFields   = jsonFields(reflect.TypeFor[Schedule]())
	productionFields = jsonFields(reflect.TypeFor[Production]())
	exportFields     = jsonFields(reflect.TypeFor[Export]())
	rolloutFields    = jsonFields(reflect.TypeFor[Rollout]())
	ringFields       = jsonFields(reflect.TypeFor[Ring]())
	selectorFields   = jsonFields(reflect.TypeFor[Selector]())
	gatesFields      = jsonFields(reflect.TypeFor[Gates]())
)

// jsonFields returns the JSON names of t's fields, skipping "-".
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) parse(data []byte) *Stack {
	if len(data) > MaxFileSize {
		d.at(1, 1, "the file is larger than %d KiB; silo.yaml is limited to 1 MiB", MaxFileSize>>10)
		return nil
	}
	if i := hasNUL(data); i >= 0 {
		line, col := position(data, i)
		d.at(line, col, "the file contains a NUL byte; silo.yaml must be UTF-8 text")
		return nil
	}
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			i += size
		}
		line, col := position(data, i)
		d.at(line, col, "the file is not valid UTF-8; save silo.yaml as UTF-8 text")
		return nil
	}
	if i := deepAt(data); i >= 0 {
		line, col := position(data, i)
		d.at(line, col, "nesting is deeper than %d levels; silo.yaml needs far fewer", MaxDepth)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.at(1, 1, "the file is empty; start with \"version: 1\" and \"name: <app>\"")
		} else {
			d.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "the file holds more than one YAML document; silo.yaml must hold exactly one (remove the \"---\")")
		return nil
	} else if !errors.Is(err, io.EOF) {
		d.yamlError(err)
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			d.at(1, 1, "the file is empty; start with \"version: 1\" and \"name: <app>\"")
			return nil
		}
		root = root.Content[0]
	}
	if !d.check(root, 1) {
		return nil
	}
	st := d.stack(root)
	for _, f := range d.later {
		f(st)
	}
	return st
}

// yamlError turns a syntax error of the YAML parser into diagnostics.
func (d *decoder) yamlError(err error) {
	for _, msg := range strings.Split(err.Error(), "\n") {
		msg = strings.TrimSpace(msg)
		if msg == "" || msg == "yaml: unmarshal errors:" {
			continue
		}
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			d.at(line, 1, "YAML syntax: %s", m[2])
			continue
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		if strings.HasPrefix(msg, "exceeded max depth") {
			msg = fmt.Sprintf("nesting is deeper than %d levels", MaxDepth)
		}
		d.at(1, 1, "YAML syntax: %s", msg)
	}
}

// position returns the 1-based line and column (in runes) of byte offset i.
func position(data []byte, i int) (int, int) {
	before := data[:i]
	line := bytes.Count(before, []byte{'\n'}) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

// check rejects what silo.yaml does not support anywhere: anchors, aliases,
// explicit tags and nesting deeper than MaxDepth. It reports false when the
// tree must not be decoded further.
func (d *decoder) check(n *yaml.Node, depth int) bool {
	if depth > MaxDepth {
		d.errorf(n, "nesting is deeper than %d levels; silo.yaml needs far fewer", MaxDepth)
		d.tooDeep = true
		return false
	}
	ok := true
	switch {
	case n.Kind == yaml.AliasNode:
		d.errorf(n, "anchors and aliases are not supported in silo.yaml; write the value out instead of *%s", clip(n.Value))
		ok = false
	case n.Anchor != "":
		d.errorf(n, "anchors and aliases are not supported in silo.yaml; remove &%s and write the value out", clip(n.Anchor))
		ok = false
	case n.Style&yaml.TaggedStyle != 0:
		d.errorf(n, "YAML tags are not supported in silo.yaml; remove %s (quote the value to make it a string)", clip(n.Tag))
		ok = false
	}
	for _, c := range n.Content {
		if !d.check(c, depth+1) {
			ok = false
			if d.tooDeep || len(d.diags) >= maxDiagnostics {
				return false
			}
		}
	}
	return ok
}

// field is one key and value of a mapping.
type field struct{ key, val *yaml.Node }

// entries returns the entries of mapping n in order, reporting duplicate and
// non-scalar keys. A null n is an empty mapping. what names n in messages.
func (d *decoder) entries(n *yaml.Node, what string) []field {
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping (key: value), not %s", what, describe(n))
		return nil
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	out := make([]field, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.errorf(k, "%s: keys must be plain names, not %s", what, describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "%s: duplicate key %q (first at line %d); remove one", what, clip(k.Value), first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, field{k, v})
	}
	return out
}

// object returns the fields of mapping n by name, reporting unknown ones with
// the nearest known name.
func (d *decoder) object(n *yaml.Node, what string, known []string) map[string]field {
	fs := d.entries(n, what)
	out := make(map[string]field, len(fs))
	for _, f := range fs {
		if !contains(known, f.key.Value) {
			d.errorf(f.key, "%s: unknown field %q%s; known fields: %s", what, clip(f.key.Value), suggest(f.key.Value, known), strings.Join(known, ", "))
			continue
		}
		out[f.key.Value] = f
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names the kind of a node for messages: "a list", "the number 5".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "empty"
		case "!!int", "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return "the boolean " + n.Value
		}
		return fmt.Sprintf("%q", clip(n.Value))
	}
	return "an unexpected value"
}

// str returns the text of scalar n; numbers and booleans are taken as
// written.
func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, "%s must be a string, not %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

// text is str that also rejects numbers and booleans (for names and enums
// where YAML's typing would surprise: "on", 1.10).
func (d *decoder) text(n *yaml.Node, what string) (string, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!str" && !isNull(n) {
		d.errorf(n, "%s must be a string, not %s; quote it", what, describe(n))
		return "", false
	}
	return d.str(n, what)
}

func (d *decoder) integer(n *yaml.Node, what string) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errorf(n, "%s must be a whole number, not %s", what, describe(n))
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 32)
	if err != nil {
		d.errorf(n, "%s %s is out of range", what, clip(n.Value))
		return 0, false
	}
	return int(v), true
}

func (d *decoder) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		if b, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil {
			return b, true
		}
	}
	d.errorf(n, "%s must be true or false, not %s", what, describe(n))
	return false, false
}

// number reads a number, or a percentage "20%" as a fraction (0.2) when
// percent is allowed.
func (d *decoder) number(n *yaml.Node, what string, percent bool) (float64, bool) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v, true
		}
	}
	if percent && n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.HasSuffix(n.Value, "%") {
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(n.Value, "%")), 64)
		if err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v / 100, true
		}
	}
	if percent {
		d.errorf(n, "%s must be a number or a percentage such as 20%%, not %s", what, describe(n))
	} else {
		d.errorf(n, "%s must be a number, not %s", what, describe(n))
	}
	return 0, false
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([A-Za-z]*)$`)

// size reads a byte size with a binary unit: 512KiB, 64MiB, 1GiB.
func (d *decoder) size(n *yaml.Node, what string) (uint64, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, "%s must be a size such as 64MiB, not %s", what, describe(n))
		return 0, false
	}
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(n.Value))
	if m == nil {
		d.errorf(n, "%s %q is not a size; write a whole number and a unit: KiB, MiB or GiB (e.g. 64MiB)", what, clip(n.Value))
		return 0, false
	}
	shift := map[string]uint{"KiB": 10, "MiB": 20, "GiB": 30}
	sh, ok := shift[m[2]]
	if !ok {
		fix := ""
		switch strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(m[2]), "b"), "i")) {
		case "k":
			fix = "KiB"
		case "m", "":
			fix = "MiB"
		case "g":
			fix = "GiB"
		}
		if fix != "" {
			if m[2] == "" {
				d.errorf(n, "%s %s has no unit; write %s%s", what, m[1], m[1], fix)
			} else {
				d.errorf(n, "%s %q is not a size; write %s%s", what, clip(n.Value), m[1], fix)
			}
		} else {
			d.errorf(n, "%s %q is not a size; the unit must be KiB, MiB or GiB (e.g. 64MiB)", what, clip(n.Value))
		}
		return 0, false
	}
	v, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil || v > math.MaxUint64>>sh {
		d.errorf(n, "%s %q is too large", what, clip(n.Value))
		return 0, false
	}
	return v << sh, true
}

// duration reads a Go duration: 500ms, 5s, 2m30s.
func (d *decoder) duration(n *yaml.Node, what string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, "%s must be a duration such as 5s, not %s", what, describe(n))
		return 0, false
	}
	if n.Tag == "!!int" {
		d.errorf(n, "%s %s has no unit; write %ss (or ms, m, h)", what, clip(n.Value), clip(n.Value))
		return 0, false
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errorf(n, "%s %q is not a duration; write a number and a unit such as 500ms, 5s, 2m or 1h", what, clip(n.Value))
		return 0, false
	}
	if v < 0 {
		d.errorf(n, "%s %q is negative", what, clip(n.Value))
		return 0, false
	}
	return v, true
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// name checks a resource name: 1-63 lower-case letters, digits, '-' and '_',
// starting with a letter.
func (d *decoder) name(n *yaml.Node, kind string) bool {
	if n.Kind == yaml.ScalarNode && nameRE.MatchString(n.Value) {
		return true
	}
	v := n.Value
	if n.Kind != yaml.ScalarNode {
		v = describe(n)
	}
	hint := ""
	if low := strings.ToLower(v); low != v && nameRE.MatchString(low) {
		hint = fmt.Sprintf(" (write %q)", low)
	}
	d.errorf(n, "invalid %s name %q: use 1-63 lower-case letters, digits, '-' and '_', starting with a letter%s", kind, clip(v), hint)
	return false
}

// names reads a list of names (config keys, secrets, exports) and returns
// it sorted, reporting duplicates.
func (d *decoder) names(n *yaml.Node, what, kind string) ([]string, []*yaml.Node) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list of %s names, such as [a, b], not %s", what, kind, describe(n))
		return nil, nil
	}
	var out []string
	var nodes []*yaml.Node
	seen := map[string]int{}
	for _, c := range n.Content {
		if !d.name(c, kind) {
			continue
		}
		if line, dup := seen[c.Value]; dup {
			d.errorf(c, "%s: %q is listed twice (first at line %d)", what, c.Value, line)
			continue
		}
		seen[c.Value] = c.Line
		out = append(out, c.Value)
		nodes = append(nodes, c)
	}
	sort.Strings(out)
	return out, nodes
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// missing reports a reference to a name not declared in m; where says
// where it should be declared.
func missing[V any](d *decoder, n *yaml.Node, m map[string]V, where, format string, args ...any) {
	if _, ok := m[n.Value]; ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	keys := sortedKeys(m)
	if len(keys) == 0 {
		d.errorf(n, "%s, which is not declared in %s (nothing is declared there)", msg, where)
		return
	}
	d.errorf(n, "%s, which is not declared in %s%s", msg, where, suggest(n.Value, keys))
}

func (d *decoder) stack(root *yaml.Node) *Stack {
	st := &Stack{}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "silo.yaml must be a mapping with version, name, functions, ...; found %s", describe(root))
		return st
	}
	fs := d.object(root, "silo.yaml", stackFields)
	if f, ok := fs["version"]; !ok {
		d.errorf(root, "missing version; add \"version: 1\"")
	} else if v, ok := d.integer(f.val, "version"); ok {
		if v != 1 {
			d.errorf(f.val, "version %d is not supported; this silo reads version 1", v)
		}
		st.Version = v
	}
	if f, ok := fs["name"]; !ok {
		d.errorf(root, "missing name; add \"name: <app>\", a DNS label such as findings")
	} else if v, ok := d.text(f.val, "name"); ok {
		if _, err := silo.ParseID(v); err != nil {
			d.errorf(f.val, "app name: %s", silo.UserMessage(err))
		}
		st.Name = v
	}
	if f, ok := fs["params"]; ok {
		st.Params = d.params(f.val)
	}
	tenant := &section{}
	if f, ok := fs["functions"]; ok {
		st.Functions, tenant.grants = d.functions(f.val, "functions", "function")
	}
	if f, ok := fs["tables"]; ok {
		st.Tables = decls(d, f.val, "tables", "table", func(s string) Table { return Table{s} })
	}
	if f, ok := fs["buckets"]; ok {
		st.Buckets = decls(d, f.val, "buckets", "bucket", func(s string) Bucket { return Bucket{s} })
	}
	if f, ok := fs["config"]; ok {
		st.Config, tenant.config = d.config(f.val, "config")
	}
	if f, ok := fs["secrets"]; ok {
		st.Secrets = decls(d, f.val, "secrets", "secret", func(s string) Secret { return Secret{s} })
	}
	if f, ok := fs["routes"]; ok {
		st.Routes = d.routes(f.val)
	}
	if f, ok := fs["schedules"]; ok {
		st.Schedules = d.schedules(f.val)
	}
	if f, ok := fs["limits"]; ok {
		st.Limits = d.limits(f.val)
	}
	prod := &section{}
	if f, ok := fs["production"]; ok {
		st.Production, prod = d.production(f.val)
	}
	if f, ok := fs["rollout"]; ok {
		st.Rollout = d.rollout(f.val)
	} else {
		st.Rollout = DefaultRollout()
	}
	d.later = append(d.later, func(st *Stack) {
		d.checkGrants(st, tenant, false)
		d.checkGrants(st, prod, true)
		d.checkConfig(st, tenant, false)
		d.checkConfig(st, prod, true)
	})
	return st
}

// DefaultRollout is the rollout of a stack that declares none: developer
// accounts, then environment accounts, then every tenant, each with the
// default concurrency, no bake time and no gates.
func DefaultRollout() Rollout {
	ring := func(name string, k silo.Kind) Ring {
		return Ring{Name: name, Select: Selector{Kind: k, Percent: 100}, Concurrency: DefaultRingConcurrency,
			Gates: Gates{OnInconclusive: OnInconclusivePause}}
	}
	return Rollout{Rings: []Ring{
		ring("developers", silo.KindDeveloper),
		ring("environments", silo.KindEnvironment),
		ring("tenants", silo.KindTenant),
	}}
}

// section keeps the nodes of a tenant or production section that are
// checked against the rest of the file once it is decoded.
type section struct {
	grants []grant
	config []field
}

// grant is one resource a function asks for.
type grant struct {
	fn   string
	kind string // table, bucket, config, secret, export
	node *yaml.Node
}

// decls reads a mapping of declared resources whose values are objects with
// an optional description (tables, buckets, secrets).
func decls[T any](d *decoder, n *yaml.Node, what, kind string, mk func(description string) T) map[string]T {
	out := map[string]T{}
	for _, f := range d.entries(n, what) {
		if !d.name(f.key, kind) {
			continue
		}
		var desc string
		ctx := fmt.Sprintf("%s %q", kind, f.key.Value)
		fs := d.object(f.val, ctx, tableFields)
		if df, ok := fs["description"]; ok {
			desc, _ = d.str(df.val, ctx+": description")
		}
		out[f.key.Value] = mk(desc)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) params(n *yaml.Node) map[string]Param {
	out := map[string]Param{}
	for _, f := range d.entries(n, "params") {
		if !d.name(f.key, "param") {
			continue
		}
		ctx := fmt.Sprintf("param %q", f.key.Value)
		fs := d.object(f.val, ctx, paramFields)
		p := Param{}
		tf, ok := fs["type"]
		if !ok {
			d.errorf(f.key, "%s: missing type; add type: string, int or bool", ctx)
			continue
		}
		t, ok := d.text(tf.val, ctx+": type")
		if !ok {
			continue
		}
		p.Type = ParamType(t)
		types := []string{string(ParamString), string(ParamInt), string(ParamBool)}
		if !contains(types, t) {
			d.errorf(tf.val, "%s: type %q is not string, int or bool%s", ctx, clip(t), suggest(t, types))
			continue
		}
		// value type-checks one value of the param written in YAML.
		value := func(n *yaml.Node, what string) (string, bool) {
			if n.Kind != yaml.ScalarNode || isNull(n) {
				d.errorf(n, "%s: %s must be a %s, not %s", ctx, what, t, describe(n))
				return "", false
			}
			want := map[ParamType]string{ParamString: "!!str", ParamInt: "!!int", ParamBool: "!!bool"}[p.Type]
			if n.Tag != want {
				article := map[ParamType]string{ParamString: "a string", ParamInt: "an int", ParamBool: "a bool (true or false)"}[p.Type]
				if p.Type == ParamString {
					d.errorf(n, "%s: %s %s is not a string; quote it: %q", ctx, what, clip(n.Value), n.Value)
				} else {
					d.errorf(n, "%s: %s %s is not %s", ctx, what, describe(n), article)
				}
				return "", false
			}
			c, msg := Param{Type: p.Type}.check(n.Value)
			if msg != "" {
				d.errorf(n, "%s: %s %s", ctx, what, msg)
				return "", false
			}
			return c, true
		}
		if ef, ok := fs["enum"]; ok {
			if p.Type == ParamBool {
				d.errorf(ef.key, "%s: enum is for string and int params", ctx)
			} else if ef.val.Kind != yaml.SequenceNode || len(ef.val.Content) == 0 {
				d.errorf(ef.val, "%s: enum must be a non-empty list of values, not %s", ctx, describe(ef.val))
			} else {
				seen := map[string]bool{}
				for _, c := range ef.val.Content {
					if v, ok := value(c, "enum value"); ok {
						if seen[v] {
							d.errorf(c, "%s: enum value %q is listed twice", ctx, v)
							continue
						}
						seen[v] = true
						p.Enum = append(p.Enum, v)
					}
				}
			}
		}
		if rf, ok := fs["required"]; ok {
			p.Required, _ = d.boolean(rf.val, ctx+": required")
		}
		if df, ok := fs["default"]; ok {
			if p.Required {
				d.errorf(df.key, "%s: a required param has no default; remove default or required", ctx)
			} else if v, ok := value(df.val, "default"); ok {
				p.Default = v
				if len(p.Enum) > 0 && !contains(p.Enum, v) {
					d.errorf(df.val, "%s: default %q is not one of the enum values %s%s", ctx, v, strings.Join(p.Enum, ", "), suggest(v, p.Enum))
				}
			}
		} else if !p.Required {
			p.Default = map[ParamType]string{ParamString: "", ParamInt: "0", ParamBool: "false"}[p.Type]
			if len(p.Enum) > 0 && !contains(p.Enum, p.Default) {
				d.errorf(f.key, "%s: has an enum but no default; add default: %s, or required: true", ctx, p.Enum[0])
			}
		}
		if df, ok := fs["description"]; ok {
			p.Description, _ = d.str(df.val, ctx+": description")
		}
		out[f.key.Value] = p
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

var handlerRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// functions reads a functions section; kind is "function" or "production
// function" in messages.
func (d *decoder) functions(n *yaml.Node, what, kind string) (map[string]Function, []grant) {
	out := map[string]Function{}
	var grants []grant
	for _, f := range d.entries(n, what) {
		if !d.name(f.key, "function") {
			continue
		}
		name := f.key.Value
		ctx := fmt.Sprintf("%s %q", kind, name)
		fs := d.object(f.val, ctx, functionFields)
		fn := Function{Handler: DefaultHandler, Memory: DefaultMemory, Timeout: DefaultTimeout, Concurrency: DefaultConcurrency}
		if sf, ok := fs["source"]; !ok {
			d.errorf(f.key, "%s: missing source; add source: ./functions/%s (a Go package directory or a .wasm file)", ctx, name)
		} else if s, ok := d.text(sf.val, ctx+": source"); ok {
			fn.Source = d.source(sf.val, s, ctx)
		}
		if hf, ok := fs["handler"]; ok {
			if h, ok := d.text(hf.val, ctx+": handler"); ok {
				if !handlerRE.MatchString(h) {
					d.errorf(hf.val, "%s: handler %q is not a wasm export name; use letters, digits and '_' (e.g. handle)", ctx, clip(h))
				}
				fn.Handler = h
			}
		}
		if mf, ok := fs["memory"]; ok {
			if v, ok := d.size(mf.val, ctx+": memory"); ok {
				switch {
				case v > MaxMemory:
					d.errorf(mf.val, "%s: memory %s is over the maximum of 1GiB", ctx, mf.val.Value)
				case v < MinMemory:
					d.errorf(mf.val, "%s: memory %s is under the minimum of 1MiB", ctx, mf.val.Value)
				}
				fn.Memory = v
			}
		}
		if tf, ok := fs["timeout"]; ok {
			if v, ok := d.duration(tf.val, ctx+": timeout"); ok {
				switch {
				case v > MaxTimeout:
					d.errorf(tf.val, "%s: timeout %s is over the maximum of 5m", ctx, tf.val.Value)
				case v < time.Millisecond:
					d.errorf(tf.val, "%s: timeout %s is too short; use at least 1ms", ctx, tf.val.Value)
				}
				fn.Timeout = v
			}
		}
		if cf, ok := fs["concurrency"]; ok {
			if v, ok := d.integer(cf.val, ctx+": concurrency"); ok {
				if v < 1 || v > MaxConcurrency {
					d.errorf(cf.val, "%s: concurrency %d is out of range; use 1 to %d", ctx, v, MaxConcurrency)
				}
				fn.Concurrency = v
			}
		}
		for _, k := range []string{"tables", "buckets"} {
			gf, ok := fs[k]
			if !ok {
				continue
			}
			kind := strings.TrimSuffix(k, "s")
			m := map[string]Access{}
			for _, e := range d.entries(gf.val, ctx+": "+k) {
				if !d.name(e.key, kind) {
					continue
				}
				a, ok := d.text(e.val, fmt.Sprintf("%s: %s %q", ctx, kind, e.key.Value))
				if !ok {
					continue
				}
				if Access(a) != AccessRead && Access(a) != AccessReadWrite {
					d.errorf(e.val, "%s: access %q to %s %q is not read or read-write%s", ctx, clip(a), kind, e.key.Value, suggest(a, []string{"read", "read-write"}))
					continue
				}
				m[e.key.Value] = Access(a)
				grants = append(grants, grant{fn: name, kind: kind, node: e.key})
			}
			if len(m) > 0 {
				if k == "tables" {
					fn.Tables = m
				} else {
					fn.Buckets = m
				}
			}
		}
		for _, k := range []string{"config", "secrets", "exports"} {
			gf, ok := fs[k]
			if !ok {
				continue
			}
			kind := strings.TrimSuffix(k, "s")
			list, nodes := d.names(gf.val, ctx+": "+k, kind)
			for _, n := range nodes {
				grants = append(grants, grant{fn: name, kind: kind, node: n})
			}
			switch k {
			case "config":
				fn.Config = list
			case "secrets":
				fn.Secrets = list
			default:
				fn.Exports = list
			}
		}
		out[name] = fn
	}
	if len(out) == 0 {
		return nil, grants
	}
	return out, grants
}

// source checks a function source path and returns it cleaned.
func (d *decoder) source(n *yaml.Node, s, ctx string) string {
	switch {
	case strings.TrimSpace(s) == "":
		d.errorf(n, "%s: source is empty; write a Go package directory such as ./functions/ingest or a .wasm file", ctx)
		return ""
	case strings.Contains(s, `\`):
		d.errorf(n, "%s: source %q uses '\\'; write paths with '/'", ctx, clip(s))
		return s
	case path.IsAbs(s) || len(s) > 1 && s[1] == ':':
		d.errorf(n, "%s: source %q is absolute; write it relative to the directory of silo.yaml", ctx, clip(s))
		return s
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		d.errorf(n, "%s: source %q is outside the directory of silo.yaml; move the function under it", ctx, clip(s))
	}
	return c
}

// config reads a config mapping of names to scalar values.
func (d *decoder) config(n *yaml.Node, what string) (map[string]string, []field) {
	out := map[string]string{}
	var kept []field
	for _, f := range d.entries(n, what) {
		if !d.name(f.key, "config") {
			continue
		}
		v, ok := d.str(f.val, fmt.Sprintf("%s %q", what, f.key.Value))
		if !ok {
			continue
		}
		out[f.key.Value] = v
		kept = append(kept, f)
	}
	if len(out) == 0 {
		return nil, kept
	}
	return out, kept
}

var (
	methods    = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	segmentRE  = regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,;=:@%-]*$`)
	wildcardRE = regexp.MustCompile(`^\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}$`)
)

func (d *decoder) routes(n *yaml.Node) []Route {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "routes must be a list of {method, path, function}, not %s", describe(n))
		return nil
	}
	var out []Route
	seen := map[string]int{}
	for i, c := range n.Content {
		ctx := fmt.Sprintf("route %d", i+1)
		fs := d.object(c, ctx, routeFields)
		if c.Kind != yaml.MappingNode {
			continue
		}
		r := Route{}
		ok := true
		for _, k := range routeFields {
			if _, has := fs[k]; !has {
				d.errorf(c, "%s: missing %s", ctx, k)
				ok = false
			}
		}
		if mf, has := fs["method"]; has {
			if m, good := d.text(mf.val, ctx+": method"); good {
				r.Method = m
				if !contains(methods, m) {
					hint := suggest(m, methods)
					if contains(methods, strings.ToUpper(m)) {
						hint = fmt.Sprintf(" (write %s)", strings.ToUpper(m))
					}
					d.errorf(mf.val, "%s: method %q is not one of %s%s", ctx, clip(m), strings.Join(methods, ", "), hint)
					ok = false
				}
			} else {
				ok = false
			}
		}
		var pattern string
		if pf, has := fs["path"]; has {
			if p, good := d.text(pf.val, ctx+": path"); good {
				r.Path = p
				pattern, good = d.routePath(pf.val, p)
				ok = ok && good
				ctx = fmt.Sprintf("route %s %s", r.Method, clip(p))
			} else {
				ok = false
			}
		}
		if ff, has := fs["function"]; has {
			if fn, good := d.text(ff.val, ctx+": function"); good {
				r.Function = fn
				fnNode, rctx := ff.val, ctx
				d.later = append(d.later, func(st *Stack) {
					missing(d, fnNode, st.Functions, "functions", "%s points at function %q", rctx, clip(fnNode.Value))
				})
			}
		}
		if ok {
			key := r.Method + " " + pattern
			if line, dup := seen[key]; dup {
				d.errorf(c, "%s duplicates the route at line %d; remove one", ctx, line)
			} else {
				seen[key] = c.Line
			}
		}
		out = append(out, r)
	}
	return out
}

// schedules reads the schedules: each names a function and exactly one of
// cron and every.
func (d *decoder) schedules(n *yaml.Node) map[string]Schedule {
	out := map[string]Schedule{}
	for _, f := range d.entries(n, "schedules") {
		if !d.name(f.key, "schedule") {
			continue
		}
		ctx := fmt.Sprintf("schedule %q", f.key.Value)
		fs := d.object(f.val, ctx, scheduleFields)
		if f.val.Kind != yaml.MappingNode {
			continue
		}
		s := Schedule{}
		if ff, has := fs["function"]; !has {
			d.errorf(f.val, "%s: missing function", ctx)
		} else if fn, good := d.text(ff.val, ctx+": function"); good {
			s.Function = fn
			fnNode, sctx := ff.val, ctx
			d.later = append(d.later, func(st *Stack) {
				missing(d, fnNode, st.Functions, "functions", "%s runs function %q", sctx, clip(fnNode.Value))
			})
		}
		cf, hasCron := fs["cron"]
		ef, hasEvery := fs["every"]
		switch {
		case hasCron && hasEvery:
			d.errorf(f.val, "%s: give cron or every, not both", ctx)
		case !hasCron && !hasEvery:
			d.errorf(f.val, "%s: missing cron or every; add cron: \"0 3 * * *\" (daily at 03:00 UTC) or every: 10m", ctx)
		case hasCron:
			if expr, good := d.text(cf.val, ctx+": cron"); good {
				if _, err := parseCron(expr); err != nil {
					d.errorf(cf.val, "%s: cron %q: %v", ctx, clip(expr), err)
				}
				s.Cron = expr
			}
		default:
			if v, good := d.duration(ef.val, ctx+": every"); good {
				if v < MinEvery || v > MaxEvery {
					d.errorf(ef.val, "%s: every %s is out of range; use 1m to 168h (a week)", ctx, clip(ef.val.Value))
				}
				s.Every = v
			}
		}
		if df, has := fs["description"]; has {
			s.Description, _ = d.str(df.val, ctx+": description")
		}
		out[f.key.Value] = s
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// routePath checks a route path and returns its pattern with wildcard names
// erased, for finding duplicates.
func (d *decoder) routePath(n *yaml.Node, p string) (string, bool) {
	bad := func(why string) (string, bool) {
		d.errorf(n, "route path %q %s", clip(p), why)
		return "", false
	}
	switch {
	case !strings.HasPrefix(p, "/"):
		return bad("must start with /")
	case len(p) > 1024:
		return bad("is longer than 1024 characters")
	case strings.Contains(p, "//"):
		return bad("must not contain //")
	}
	segs := strings.Split(p[1:], "/")
	params := map[string]bool{}
	pattern := make([]string, len(segs))
	for i, s := range segs {
		if m := wildcardRE.FindStringSubmatch(s); m != nil {
			if params[m[1]] {
				return bad(fmt.Sprintf("names {%s} twice", m[1]))
			}
			params[m[1]] = true
			if m[2] != "" && i != len(segs)-1 {
				return bad(fmt.Sprintf("has {%s...} before the last segment", m[1]))
			}
			pattern[i] = "{" + m[2] + "}"
			continue
		}
		if strings.Contains(s, "..") {
			return bad("must not contain ..")
		}
		if !segmentRE.MatchString(s) {
			return bad(fmt.Sprintf("has an invalid segment %q; use letters, digits, -._~ and {name} for parameters", clip(s)))
		}
		pattern[i] = s
	}
	return "/" + strings.Join(pattern, "/"), true
}

func (d *decoder) production(n *yaml.Node) (Production, *section) {
	p := Production{}
	sec := &section{}
	fs := d.object(n, "production", productionFields)
	if f, ok := fs["functions"]; ok {
		p.Functions, sec.grants = d.functions(f.val, "production.functions", "production function")
	}
	if f, ok := fs["tables"]; ok {
		p.Tables = decls(d, f.val, "production.tables", "table", func(s string) Table { return Table{s} })
	}
	if f, ok := fs["buckets"]; ok {
		p.Buckets = decls(d, f.val, "production.buckets", "bucket", func(s string) Bucket { return Bucket{s} })
	}
	if f, ok := fs["config"]; ok {
		p.Config, sec.config = d.config(f.val, "production.config")
	}
	if f, ok := fs["secrets"]; ok {
		p.Secrets = decls(d, f.val, "production.secrets", "secret", func(s string) Secret { return Secret{s} })
	}
	if f, ok := fs["exports"]; ok {
		p.Exports = d.exports(f.val)
	}
	return p, sec
}

func (d *decoder) exports(n *yaml.Node) map[string]Export {
	out := map[string]Export{}
	for _, f := range d.entries(n, "production.exports") {
		if !d.name(f.key, "export") {
			continue
		}
		ctx := fmt.Sprintf("export %q", f.key.Value)
		fs := d.object(f.val, ctx, exportFields)
		var e Export
		var target field
		var kind string
		count := 0
		for _, k := range exportFields {
			tf, ok := fs[k]
			if !ok {
				continue
			}
			count++
			if !d.name(tf.val, k) {
				continue
			}
			target, kind = tf, k
			switch k {
			case "table":
				e.Table = tf.val.Value
			case "bucket":
				e.Bucket = tf.val.Value
			case "config":
				e.Config = tf.val.Value
			}
		}
		if count != 1 {
			d.errorf(f.key, "%s must name exactly one of table, bucket or config (e.g. {table: %s})", ctx, f.key.Value)
		} else if kind != "" {
			d.later = append(d.later, func(st *Stack) {
				pr := st.Production
				msg, where := "%s points at production %s %q", "production."+kind
				switch kind {
				case "table":
					missing(d, target.val, pr.Tables, where+"s", msg, ctx, kind, target.val.Value)
				case "bucket":
					missing(d, target.val, pr.Buckets, where+"s", msg, ctx, kind, target.val.Value)
				case "config":
					missing(d, target.val, pr.Config, where, msg, ctx, kind, target.val.Value)
				}
			})
		}
		out[f.key.Value] = e
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkGrants reports functions granted resources their section does not
// declare.
func (d *decoder) checkGrants(st *Stack, sec *section, prod bool) {
	tables, buckets, config, secrets := st.Tables, st.Buckets, st.Config, st.Secrets
	where := ""
	if prod {
		tables, buckets, config, secrets = st.Production.Tables, st.Production.Buckets, st.Production.Config, st.Production.Secrets
		where = "production."
	}
	for _, g := range sec.grants {
		ctx := fmt.Sprintf("function %q", g.fn)
		if prod {
			ctx = "production " + ctx
		}
		msg := "%s is granted %s %q"
		switch g.kind {
		case "table":
			missing(d, g.node, tables, where+"tables", msg, ctx, g.kind, g.node.Value)
		case "bucket":
			missing(d, g.node, buckets, where+"buckets", msg, ctx, g.kind, g.node.Value)
		case "config":
			missing(d, g.node, config, where+"config", msg, ctx, g.kind, g.node.Value)
		case "secret":
			missing(d, g.node, secrets, where+"secrets", msg, ctx, g.kind, g.node.Value)
		case "export":
			if prod {
				d.errorf(g.node, "%s lists export %q; production functions read production resources directly, so remove exports", ctx, g.node.Value)
				continue
			}
			missing(d, g.node, st.Production.Exports, "production.exports", msg, ctx, g.kind, g.node.Value)
		}
	}
}

// checkConfig reports unknown ${...} references in config values.
// Production config is shared by every tenant, so it may hold none.
func (d *decoder) checkConfig(st *Stack, sec *section, prod bool) {
	for _, f := range sec.config {
		ctx := fmt.Sprintf("config %q", f.key.Value)
		if prod {
			ctx = "production " + ctx
		}
		msg := scanRefs(f.val.Value, func(string) {}, func(ref string) string {
			if prod {
				return fmt.Sprintf("uses ${%s}, but production config is shared by every tenant and cannot refer to one", clip(ref))
			}
			switch {
			case ref == "tenant.id":
				return ""
			case strings.HasPrefix(ref, "param."):
				name := ref[len("param."):]
				if _, ok := st.Params[name]; ok {
					return ""
				}
				if len(st.Params) == 0 {
					return fmt.Sprintf("uses ${%s}, but no params are declared", clip(ref))
				}
				return fmt.Sprintf("uses ${%s}, but param %q is not declared%s", clip(ref), clip(name), suggest(name, sortedKeys(st.Params)))
			}
			return fmt.Sprintf("uses unknown reference ${%s}; use ${tenant.id} or ${param.NAME}%s", clip(ref), suggest(ref, append([]string{"tenant.id"}, prefixed("param.", sortedKeys(st.Params))...)))
		})
		if msg != "" {
			d.errorf(f.val, "%s %s", ctx, msg)
		}
	}
}

func prefixed(p string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = p + s
	}
	return out
}

func (d *decoder) rollout(n *yaml.Node) Rollout {
	r := Rollout{}
	fs := d.object(n, "rollout", rolloutFields)
	rf, ok := fs["rings"]
	if !ok || isNull(rf.val) {
		d.errorf(n, "rollout: missing rings; list at least one ring, or remove rollout to use the default rings")
		return r
	}
	if rf.val.Kind != yaml.SequenceNode || len(rf.val.Content) == 0 {
		d.errorf(rf.val, "rollout: rings must be a non-empty list of rings, not %s", describe(rf.val))
		return r
	}
	seen := map[string]int{}
	for i, c := range rf.val.Content {
		ring := d.ring(c, i)
		if ring.Name != "" {
			if line, dup := seen[ring.Name]; dup {
				d.errorf(c, "ring %q is declared twice (first at line %d); rename one", ring.Name, line)
			} else {
				seen[ring.Name] = c.Line
			}
		}
		r.Rings = append(r.Rings, ring)
	}
	return r
}

var ringKinds = []string{string(silo.KindTenant), string(silo.KindDeveloper), string(silo.KindEnvironment)}

func (d *decoder) ring(n *yaml.Node, i int) Ring {
	r := Ring{Concurrency: DefaultRingConcurrency, Select: Selector{Percent: 100}, Gates: Gates{OnInconclusive: OnInconclusivePause}}
	ctx := fmt.Sprintf("ring %d", i+1)
	fs := d.object(n, ctx, ringFields)
	if n.Kind != yaml.MappingNode {
		return r
	}
	if f, ok := fs["name"]; !ok {
		d.errorf(n, "%s: missing name", ctx)
	} else if d.name(f.val, "ring") {
		r.Name = f.val.Value
		ctx = fmt.Sprintf("ring %q", r.Name)
	}
	if f, ok := fs["select"]; !ok {
		d.errorf(n, "%s: missing select; add select: {kind: tenant}", ctx)
	} else {
		r.Select = d.selector(f.val, ctx)
	}
	if f, ok := fs["concurrency"]; ok {
		if v, ok := d.integer(f.val, ctx+": concurrency"); ok {
			if v < 1 || v > MaxRingConcurrency {
				d.errorf(f.val, "%s: concurrency %d is out of range; use 1 to %d", ctx, v, MaxRingConcurrency)
			}
			r.Concurrency = v
		}
	}
	if f, ok := fs["bake"]; ok {
		if v, ok := d.duration(f.val, ctx+": bake"); ok {
			if v > MaxBake {
				d.errorf(f.val, "%s: bake %s is over the maximum of 168h (7 days)", ctx, f.val.Value)
			}
			r.Bake = v
		}
	}
	if f, ok := fs["gates"]; ok {
		r.Gates = d.gates(f.val, ctx)
	}
	if f, ok := fs["failure_budget"]; ok {
		r.FailureBudget = d.budget(f.val, ctx)
	}
	if f, ok := fs["on_rollback"]; ok {
		if v, ok := d.text(f.val, ctx+": on_rollback"); ok {
			opts := []string{OnRollbackReturn, OnRollbackKeep}
			if !contains(opts, v) {
				d.errorf(f.val, "%s: on_rollback %q is not return or keep%s", ctx, clip(v), suggest(v, opts))
			}
			if v == OnRollbackKeep {
				r.OnRollback = v
			}
		}
	}
	return r
}

func (d *decoder) selector(n *yaml.Node, ring string) Selector {
	s := Selector{Percent: 100}
	ctx := ring + ": select"
	fs := d.object(n, ctx, selectorFields)
	if n.Kind != yaml.MappingNode {
		return s
	}
	if f, ok := fs["kind"]; !ok {
		d.errorf(n, "%s: missing kind; use tenant, developer or environment", ctx)
	} else if k, ok := d.text(f.val, ctx+": kind"); ok {
		s.Kind = silo.Kind(k)
		if !contains(ringKinds, k) {
			hint := suggest(k, ringKinds)
			if k == string(silo.KindProduction) {
				hint = "; the production account is deployed with every release, not in a ring"
			}
			d.errorf(f.val, "%s: kind %q is not tenant, developer or environment%s", ctx, clip(k), hint)
		}
	}
	if f, ok := fs["params"]; ok {
		for _, e := range d.entries(f.val, ctx+": params") {
			v, ok := d.str(e.val, fmt.Sprintf("%s: param %q", ctx, e.key.Value))
			if !ok {
				continue
			}
			if s.Params == nil {
				s.Params = map[string]string{}
			}
			s.Params[e.key.Value] = v
			key, val := e.key, e.val
			d.later = append(d.later, func(st *Stack) {
				p, ok := st.Params[key.Value]
				if !ok {
					missing(d, key, st.Params, "params", "%s selects on param %q", ctx, clip(key.Value))
					return
				}
				c, msg := p.check(val.Value)
				if msg != "" {
					d.errorf(val, "%s: param %q: %s", ctx, key.Value, msg)
					return
				}
				// Canonical form, so that selection compares resolved values.
				st.setSelectorParam(ring, key.Value, c)
			})
		}
	}
	if f, ok := fs["percent"]; ok {
		if v, ok := d.number(f.val, ctx+": percent", true); ok {
			if f.val.Tag == "!!str" { // "5%" was read as a fraction
				v *= 100
			}
			if v < 0 || v > 100 {
				d.errorf(f.val, "%s: percent %s is out of range; use 0 to 100", ctx, f.val.Value)
			}
			s.Percent = v
		}
	}
	return s
}

// setSelectorParam sets a selector param of the ring named in ctx (`ring
// "x"`) to its canonical value.
func (s *Stack) setSelectorParam(ctx, key, value string) {
	for i := range s.Rollout.Rings {
		if fmt.Sprintf("ring %q", s.Rollout.Rings[i].Name) == ctx && s.Rollout.Rings[i].Select.Params != nil {
			s.Rollout.Rings[i].Select.Params[key] = value
		}
	}
}

func (d *decoder) gates(n *yaml.Node, ring string) Gates {
	g := Gates{OnInconclusive: OnInconclusivePause}
	ctx := ring + ": gates"
	fs := d.object(n, ctx, gatesFields)
	if f, ok := fs["max_error_rate"]; ok {
		if v, ok := d.number(f.val, ctx+": max_error_rate", true); ok {
			if v <= 0 || v > 1 {
				d.errorf(f.val, "%s: max_error_rate %s is out of range; use a fraction above 0 and at most 1 (or 0%%-100%%), or omit it to skip the gate", ctx, f.val.Value)
			}
			g.MaxErrorRate = v
		}
	}
	if f, ok := fs["max_p99_increase"]; ok {
		if v, ok := d.number(f.val, ctx+": max_p99_increase", true); ok {
			if v <= 0 || v > 100 {
				d.errorf(f.val, "%s: max_p99_increase %s is out of range; use a percentage such as 20%% (above 0, at most 10000%%), or omit it to skip the gate", ctx, f.val.Value)
			}
			g.MaxP99Increase = v
		}
	}
	if f, ok := fs["min_requests"]; ok {
		if v, ok := d.integer(f.val, ctx+": min_requests"); ok {
			if v < 0 {
				d.errorf(f.val, "%s: min_requests %d is negative", ctx, v)
			}
			g.MinRequests = v
		}
	}
	if f, ok := fs["smoke"]; ok {
		if v, ok := d.text(f.val, ctx+": smoke"); ok {
			g.Smoke = v
			node := f.val
			d.later = append(d.later, func(st *Stack) {
				missing(d, node, st.Functions, "functions", "%s: smoke points at function %q", ctx, clip(node.Value))
			})
		}
	}
	if f, ok := fs["on_inconclusive"]; ok {
		if v, ok := d.text(f.val, ctx+": on_inconclusive"); ok {
			opts := []string{OnInconclusivePause, OnInconclusiveRollback}
			if !contains(opts, v) {
				d.errorf(f.val, "%s: on_inconclusive %q is not pause or rollback%s", ctx, clip(v), suggest(v, opts))
			}
			g.OnInconclusive = v
		}
	}
	return g
}

func (d *decoder) budget(n *yaml.Node, ring string) Budget {
	ctx := ring + ": failure_budget"
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		v, ok := d.integer(n, ctx)
		if ok && v < 0 {
			d.errorf(n, "%s %d is negative", ctx, v)
		}
		return Budget{Count: v}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.HasSuffix(n.Value, "%") {
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(n.Value, "%")), 64)
		if err == nil && v >= 0 && v <= 100 {
			return Budget{Percent: v}
		}
		d.errorf(n, "%s %q is out of range; use 0%% to 100%%", ctx, clip(n.Value))
		return Budget{}
	}
	d.errorf(n, "%s must be a count such as 1 or a percentage such as 10%%, not %s", ctx, describe(n))
	return Budget{}
}
