package gateway

import (
	"time"

	silo "github.com/silo-run/silo"
)

// Meter receives what one admitted request of an account used.
type Meter interface {
	Record(acct silo.AccountID, function string, r Record)
}

// Record is what one admitted request used. Function is "" when no route
// matched.
type Record struct {
	Duration time.Duration
	BytesIn  int64
	BytesOut int64
	Error    bool // status ≥ 500 or a function error
}

// Metrics is what the gateway has metered for one account since it started.
// Only authenticated requests are metered, so the counts are the account's
// own traffic.
type Metrics struct {
	Requests int64 // every authenticated request, whatever its outcome
	Errors   int64 // responses with status ≥ 500 and function errors
	Limited  int64 // requests refused with 429
	BytesIn  int64 // request body bytes read
	BytesOut int64 // response body bytes written
	Duration time.Duration
}
