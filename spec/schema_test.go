package spec

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/silo-run/silo"
	"go.yaml.in/yaml/v3"
)

// schema is the part of docs/silo.schema.json these tests read.
type schema struct {
	Ref                  string             `json:"$ref"`
	Properties           map[string]*schema `json:"properties"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
	Items                *schema            `json:"items"`
	Defs                 map[string]*schema `json:"$defs"`
}

func loadSchema(t *testing.T) *schema {
	t.Helper()
	data, err := os.ReadFile("../docs/silo.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("docs/silo.schema.json: %v", err)
	}
	return &s
}

func (root *schema) resolve(t *testing.T, s *schema) *schema {
	for s != nil && s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/$defs/")
		if !ok || root.Defs[name] == nil {
			t.Fatalf("schema: unresolvable $ref %q", s.Ref)
		}
		s = root.Defs[name]
	}
	return s
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSchemaMatchesStructs: every object of the JSON Schema has exactly the
// fields of its Go type (whose JSON tags are also the silo.yaml field names
// the parser accepts), so the schema, the docs and the parser cannot drift.
func TestSchemaMatchesStructs(t *testing.T) {
	root := loadSchema(t)
	cases := []struct {
		where string
		s     *schema
		typ   reflect.Type
	}{
		{"root", root, reflect.TypeFor[Stack]()},
		{"$defs/param", root.Defs["param"], reflect.TypeFor[Param]()},
		{"$defs/function", root.Defs["function"], reflect.TypeFor[Function]()},
		{"$defs/resource (table)", root.Defs["resource"], reflect.TypeFor[Table]()},
		{"$defs/resource (bucket)", root.Defs["resource"], reflect.TypeFor[Bucket]()},
		{"$defs/resource (secret)", root.Defs["resource"], reflect.TypeFor[Secret]()},
		{"$defs/route", root.Defs["route"], reflect.TypeFor[Route]()},
		{"$defs/schedule", root.Defs["schedule"], reflect.TypeFor[Schedule]()},
		{"$defs/production", root.Defs["production"], reflect.TypeFor[Production]()},
		{"$defs/export", root.Defs["export"], reflect.TypeFor[Export]()},
		{"$defs/rollout", root.Defs["rollout"], reflect.TypeFor[Rollout]()},
		{"$defs/ring", root.Defs["ring"], reflect.TypeFor[Ring]()},
		{"$defs/selector", root.Defs["selector"], reflect.TypeFor[Selector]()},
		{"$defs/gates", root.Defs["gates"], reflect.TypeFor[Gates]()},
		{"$defs/limits", root.Defs["limits"], reflect.TypeFor[silo.Limits]()},
	}
	for _, tc := range cases {
		t.Run(tc.where, func(t *testing.T) {
			if tc.s == nil {
				t.Fatalf("schema has no %s", tc.where)
			}
			want := jsonFields(tc.typ)
			sort.Strings(want)
			if diff := cmp.Diff(want, keys(tc.s.Properties)); diff != "" {
				t.Errorf("schema %s properties differ from %s fields (-go +schema):\n%s", tc.where, tc.typ, diff)
			}
			if string(tc.s.AdditionalProperties) != "false" {
				t.Errorf("schema %s: got additionalProperties %s, want false (unknown fields are errors)", tc.where, tc.s.AdditionalProperties)
			}
		})
	}
}

// TestSchemaAcceptsExample walks testdata/full.yaml along the schema: every
// key of the example must be a property the schema declares there (or a
// name under additionalProperties), and every property of the schema's
// objects must be used by the example, so the example stays complete.
func TestSchemaAcceptsExample(t *testing.T) {
	root := loadSchema(t)
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	used := map[*schema]map[string]bool{}
	var walk func(path string, v any, s *schema)
	walk = func(path string, v any, s *schema) {
		s = root.resolve(t, s)
		if s == nil {
			return
		}
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if p, ok := s.Properties[k]; ok {
					if used[s] == nil {
						used[s] = map[string]bool{}
					}
					used[s][k] = true
					walk(path+"."+k, child, p)
					continue
				}
				var add schema
				if len(s.AdditionalProperties) == 0 || json.Unmarshal(s.AdditionalProperties, &add) != nil {
					t.Errorf("%s.%s: the schema does not allow field %q there", path, k, k)
					continue
				}
				walk(path+"."+k, child, &add)
			}
		case []any:
			for _, child := range v {
				walk(path+"[]", child, s.Items)
			}
		}
	}
	walk("silo.yaml", doc, root)
	for name, def := range root.Defs {
		if len(def.Properties) == 0 {
			continue
		}
		for _, p := range keys(def.Properties) {
			if !used[def][p] {
				t.Errorf("testdata/full.yaml never uses %s.%s; add it so the example shows every field", name, p)
			}
		}
	}
}
