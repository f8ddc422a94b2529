package aws

import (
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

func TestRouteKey(t *testing.T) {
	tests := []struct {
		rs   silo.RouteSpec
		want string
	}{
		{silo.RouteSpec{Method: "GET", Path: "/findings"}, "GET /findings"},
		{silo.RouteSpec{Method: "get", Path: "/findings/{id}"}, "GET /findings/{id}"},
		{silo.RouteSpec{Path: "/files/{rest...}"}, "ANY /files/{rest+}"},
		{silo.RouteSpec{Method: "*", Path: "/static/"}, "ANY /static/{proxy+}"},
		{silo.RouteSpec{Method: "POST", Path: "/{$}"}, "POST /"},
		{silo.RouteSpec{Method: "GET", Path: "/"}, "GET /"},
	}
	for _, tt := range tests {
		if got := routeKey(tt.rs); got != tt.want {
			t.Errorf("routeKey(%+v) = %q, want %q", tt.rs, got, tt.want)
		}
	}
}

func TestSettingsOf(t *testing.T) {
	tests := []struct {
		name    string
		fs      silo.FunctionSpec
		want    settings
		wantErr string
	}{
		{"defaults", silo.FunctionSpec{}, settings{memoryMiB: minFunctionMiB, timeoutSec: 11}, ""},
		{"small", silo.FunctionSpec{Memory: 64 << 20, Timeout: 1500 * time.Millisecond}, settings{memoryMiB: minFunctionMiB, timeoutSec: 3}, ""},
		{"large", silo.FunctionSpec{Memory: 1 << 30, Timeout: time.Minute}, settings{memoryMiB: 1024 + hostOverheadMiB, timeoutSec: 61}, ""},
		{"too much memory", silo.FunctionSpec{Memory: 10 << 30}, settings{}, "over Lambda's 10240 MB"},
		{"too long", silo.FunctionSpec{Timeout: 15 * time.Minute}, settings{}, "over Lambda's 15 minutes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := settingsOf("ingest", tt.fs)
			if tt.wantErr != "" {
				if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want CodeInvalid with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("settingsOf = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestLambdaName(t *testing.T) {
	if got := lambdaName("ingest"); got != "silo-fn-ingest" {
		t.Errorf("lambdaName(ingest) = %q", got)
	}
	for _, fn := range []string{"with space", "ü", strings.Repeat("a", 57)} {
		got := lambdaName(fn)
		if len(got) > 64 || !strings.HasPrefix(got, "silo-fn-h-") || strings.ContainsAny(got, " ü") {
			t.Errorf("lambdaName(%q) = %q, want silo-fn-h- and a hash, at most 64 characters", fn, got)
		}
	}
	if lambdaName("a b") == lambdaName("a c") {
		t.Error("two names map to one Lambda function")
	}
}
