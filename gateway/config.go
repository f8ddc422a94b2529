package gateway

import (
	"log/slog"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
)

// Config configures a Gateway. Zero fields take the defaults noted.
type Config struct {
	// BaseDomain is the domain tenants are subdomains of: with "localhost",
	// tenant acme is acme.localhost. Default "localhost".
	BaseDomain string
	// MaxHeaderBytes bounds the request header (431 beyond it; net/http
	// allows 4 KiB of slack). Default 32 KiB. Used by Server.
	MaxHeaderBytes int
	// MaxBodyBytes bounds the request body (413 beyond it). Default 1 MiB.
	MaxBodyBytes int64
	// RatePerSecond and Burst size the token bucket of each account whose
	// limits (see Limits) do not set them. Defaults 1000 and
	// 2×RatePerSecond (at least 1): high enough that a developer on one
	// machine does not meet them; plans set the limits tenants pay for.
	RatePerSecond float64
	Burst         int
	// MaxConcurrent bounds the requests in flight of each account whose
	// limits do not set it. Default 256.
	MaxConcurrent int
	// Limits, if set, gives each account's own limits (its plan's, with
	// overrides); nil applies the defaults above to every account.
	Limits LimitSource
	// LimitRefresh is how long the gateway applies an account's limits
	// before reading them again from Limits. Default 1s.
	LimitRefresh time.Duration
	// InvokeTimeout bounds one function call. Default 30s.
	InvokeTimeout time.Duration
	// Timeouts of the *http.Server returned by Server. Defaults 5s, 30s,
	// InvokeTimeout+10s, 120s.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// Logger receives internal errors. Default: discard.
	Logger *slog.Logger
	// AccessLog, if set, receives one AccessEntry per authenticated
	// request, in batches written off the request path (see access.go);
	// call Close to write the last ones. Requests that fail before
	// authentication name no account and are not in any account's log.
	AccessLog AccessLog
	// Meter, if set, receives one Record per request admitted past the
	// account's limits, on the request path: it must be quick and safe for
	// concurrent use (package usage aggregates in memory).
	Meter Meter
	// Reports, if set, serves each account its own signed isolation
	// report at ReportPath (see report.go).
	Reports ReportSource
	// Now is the clock for rate limits and key revocation. Default time.Now.
	Now func() time.Time
}

// Validate fills in defaults and checks the configuration.
//
// # Errors
//
// CodeInvalid naming the first bad field.
func (c *Config) Validate() error {
	if c.BaseDomain == "" {
		c.BaseDomain = "localhost"
	}
	c.BaseDomain = strings.TrimSuffix(strings.ToLower(c.BaseDomain), ".")
	for _, l := range strings.Split(c.BaseDomain, ".") {
		if _, err := silo.ParseID(l); err != nil {
			return silo.Errorf(silo.CodeInvalid, "gateway base domain %q is not a host name; use a name such as localhost or saas.example.com", c.BaseDomain)
		}
	}
	def := func(name string, v *int64, d int64) error {
		if *v < 0 {
			return silo.Errorf(silo.CodeInvalid, "gateway %s is negative; use a positive value or 0 for the default", name)
		}
		if *v == 0 {
			*v = d
		}
		return nil
	}
	ints := []struct {
		name string
		v    *int
		d    int
	}{{"MaxHeaderBytes", &c.MaxHeaderBytes, 32 << 10}, {"MaxConcurrent", &c.MaxConcurrent, 256}}
	for _, f := range ints {
		v := int64(*f.v)
		if err := def(f.name, &v, int64(f.d)); err != nil {
			return err
		}
		*f.v = int(v)
	}
	if err := def("MaxBodyBytes", &c.MaxBodyBytes, 1<<20); err != nil {
		return err
	}
	if c.RatePerSecond < 0 || c.Burst < 0 {
		return silo.Errorf(silo.CodeInvalid, "gateway rate limit is negative; use positive RatePerSecond and Burst")
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 1000
	}
	if c.Burst == 0 {
		c.Burst = max(1, int(2*c.RatePerSecond))
	}
	durs := []struct {
		name string
		v    *time.Duration
		d    time.Duration
	}{
		{"InvokeTimeout", &c.InvokeTimeout, 30 * time.Second},
		{"ReadHeaderTimeout", &c.ReadHeaderTimeout, 5 * time.Second},
		{"ReadTimeout", &c.ReadTimeout, 30 * time.Second},
		{"WriteTimeout", &c.WriteTimeout, c.InvokeTimeout + 10*time.Second},
		{"IdleTimeout", &c.IdleTimeout, 120 * time.Second},
		{"LimitRefresh", &c.LimitRefresh, time.Second},
	}
	for _, f := range durs {
		if f.name == "WriteTimeout" && c.WriteTimeout == 0 {
			f.d = c.InvokeTimeout + 10*time.Second
		}
		v := int64(*f.v)
		if err := def(f.name, &v, int64(f.d)); err != nil {
			return err
		}
		*f.v = time.Duration(v)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
