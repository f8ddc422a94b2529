package spec

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/silo-run/silo"
)

const planParams = "params:\n  plan: {type: string, enum: [free, pro], default: free}\n"

// TestLimits: a limits section gives each plan its limits, and Plan picks
// them by the tenant's plan param (its default when unset).
func TestLimits(t *testing.T) {
	src := base + planParams + `limits:
  free: {rate: 20, burst: 40, concurrency: 4, storage: 100MiB, invocations: 100000}
  pro: {rate: 1000}
`
	st, err := Parse("silo.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]silo.Limits{
		"free": {Rate: 20, Burst: 40, Concurrency: 4, Storage: 100 << 20, Invocations: 100000},
		"pro":  {Rate: 1000},
	}
	if diff := cmp.Diff(want, st.Limits); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
	cases := []struct {
		name   string
		params map[string]string
		plan   string
		want   silo.Limits
	}{
		{"default plan", nil, "free", want["free"]},
		{"pro", map[string]string{"plan": "pro"}, "pro", want["pro"]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, l, ok := st.Plan(tc.params)
			if !ok || plan != tc.plan || l != tc.want {
				t.Errorf("got %q %+v %v, want %q %+v true", plan, l, ok, tc.plan, tc.want)
			}
		})
	}
	t.Run("no limits section", func(t *testing.T) {
		st, err := Parse("silo.yaml", []byte(base+planParams))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, ok := st.Plan(map[string]string{"plan": "pro"}); ok {
			t.Errorf("got a plan from a stack without limits")
		}
	})
}

// TestLimitsDiagnostics: each bad limits section gets one positioned
// diagnostic that says how to fix it; its twin (the same shape written
// right) parses.
func TestLimitsDiagnostics(t *testing.T) {
	cases := []struct{ name, src, want, twin string }{
		{"plan not a value", planParams + "limits:\n  free: {}\n  pro: {}\n  prro: {}\n",
			`silo.yaml:8:3: limits: plan "prro" is not a value of param "plan" (did you mean "pro"?)`,
			planParams + "limits:\n  free: {}\n  pro: {}\n"},
		{"plan without limits", planParams + "limits:\n  free: {rate: 5}\n",
			`silo.yaml:6:3: limits: plan "pro" (a value of param "plan") has no limits; add pro:`,
			planParams + "limits:\n  free: {rate: 5}\n  pro: {rate: 5}\n"},
		{"no plan param", "limits:\n  free: {rate: 5}\n",
			`limits are chosen by the tenant param "plan", which is not declared`,
			"params: {plan: {type: string, enum: [free], default: free}}\nlimits:\n  free: {rate: 5}\n"},
		{"plan param without enum", "params: {plan: {type: string}}\nlimits:\n  free: {rate: 5}\n",
			`the param "plan" must be a string with an enum`,
			"params: {plan: {type: string, enum: [free], default: free}}\nlimits:\n  free: {rate: 5}\n"},
		{"unknown field", planParams + "limits:\n  free: {rte: 5}\n  pro: {}\n",
			`silo.yaml:6:10: limits of plan "free": unknown field "rte" (did you mean "rate"?)`,
			planParams + "limits:\n  free: {rate: 5}\n  pro: {}\n"},
		{"negative rate", planParams + "limits:\n  free: {rate: -1}\n  pro: {}\n",
			`silo.yaml:6:16: limits of plan "free": rate -1 is out of range`,
			planParams + "limits:\n  free: {rate: 0.5}\n  pro: {}\n"},
		{"zero concurrency", planParams + "limits:\n  free: {concurrency: 0}\n  pro: {}\n",
			`limits of plan "free": concurrency 0 is out of range; use a whole number from 1 to 100000`,
			planParams + "limits:\n  free: {concurrency: 1}\n  pro: {}\n"},
		{"zero burst", planParams + "limits:\n  free: {burst: 0}\n  pro: {}\n",
			`limits of plan "free": burst 0 is out of range`,
			planParams + "limits:\n  free: {burst: 1}\n  pro: {}\n"},
		{"storage without unit", planParams + "limits:\n  free: {storage: 100}\n  pro: {}\n",
			`storage 100 has no unit; write 100MiB`,
			planParams + "limits:\n  free: {storage: 100MiB}\n  pro: {}\n"},
		{"storage MB", planParams + "limits:\n  free: {storage: 1GB}\n  pro: {}\n",
			`storage "1GB" is not a size; write 1GiB`,
			planParams + "limits:\n  free: {storage: 1GiB}\n  pro: {}\n"},
		{"invocations zero", planParams + "limits:\n  free: {invocations: 0}\n  pro: {}\n",
			`invocations 0 is out of range`,
			planParams + "limits:\n  free: {invocations: 1}\n  pro: {}\n"},
		{"rate not a number", planParams + "limits:\n  free: {rate: fast}\n  pro: {}\n",
			`rate must be a number, not "fast"`,
			planParams + "limits:\n  free: {rate: 10}\n  pro: {}\n"},
		{"limits not a mapping", planParams + "limits: [free]\n",
			`limits must be a mapping`,
			planParams + "limits: {free: {}, pro: {}}\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("silo.yaml", []byte(base+tc.src))
			var ds *Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("got %v, want *Diagnostics", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got\n%s\nwant a diagnostic containing %q", err, tc.want)
			}
			if _, err := Parse("silo.yaml", []byte(base+tc.twin)); err != nil {
				t.Errorf("twin: got\n%v\nwant no error", err)
			}
		})
	}
}
