package usage

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// Prices turns usage into an estimated cost in US dollars. The defaults
// (DefaultPrices) are the public on-demand prices of the AWS services each
// part of an account maps to (docs/api.md cites them); they are estimates
// to be checked against the current price list, and an operator replaces
// them with the server's --prices file.
type Prices struct {
	// PerMillionRequests is charged per million requests: the HTTP entry
	// point plus the function invocation.
	PerMillionRequests float64 `json:"per_million_requests"`
	// PerGBSecond is charged per GB-second of function memory held.
	PerGBSecond float64 `json:"per_gb_second"`
	// PerGBOut is charged per GB (2^30 bytes) of response bytes.
	PerGBOut float64 `json:"per_gb_out"`
	// AccountPerMonth is the floor of an idle account: what it costs per
	// 30 days with no request at all.
	AccountPerMonth float64 `json:"account_per_month"`
	// PerGBMonthTable and PerGBMonthBucket are charged per GB (2^30
	// bytes) stored for 30 days in tables and in buckets.
	PerGBMonthTable  float64 `json:"per_gb_month_table"`
	PerGBMonthBucket float64 `json:"per_gb_month_bucket"`
	// Source says where the figures come from.
	Source string `json:"source"`
}

// DefaultPrices are AWS us-east-1 on-demand list prices as published by
// AWS (see docs/api.md for the figures and their sources). They must be
// checked before they are used for billing.
func DefaultPrices() Prices {
	return Prices{
		PerMillionRequests: 1.00 + 0.20, // API Gateway HTTP API + Lambda requests
		PerGBSecond:        0.0000166667,
		PerGBOut:           0.09,
		AccountPerMonth:    1.00,  // one KMS customer managed key per account
		PerGBMonthTable:    0.25,  // DynamoDB Standard table class storage
		PerGBMonthBucket:   0.023, // S3 Standard storage
		Source:             "AWS us-east-1 on-demand list prices as published by AWS (API Gateway HTTP API, Lambda x86, data transfer out, KMS, DynamoDB Standard and S3 Standard storage); estimates, check the current price list",
	}
}

// LoadPrices reads a JSON Prices file; fields it omits keep their default.
//
// # Errors
//
// CodeInvalid when the file cannot be read or holds a negative price.
func LoadPrices(path string) (Prices, error) {
	p := DefaultPrices()
	data, err := os.ReadFile(path)
	if err != nil {
		return Prices{}, silo.Errorf(silo.CodeInvalid, "cannot read the price file %s: %v", path, err)
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return Prices{}, silo.Errorf(silo.CodeInvalid, "the price file %s is not a JSON object of prices: %v", path, err)
	}
	for name, v := range map[string]float64{"per_million_requests": p.PerMillionRequests, "per_gb_second": p.PerGBSecond, "per_gb_out": p.PerGBOut, "account_per_month": p.AccountPerMonth, "per_gb_month_table": p.PerGBMonthTable, "per_gb_month_bucket": p.PerGBMonthBucket} {
		if v < 0 {
			return Prices{}, silo.Errorf(silo.CodeInvalid, "the price file %s sets %s to %v; prices must not be negative", path, name, v)
		}
	}
	if p.Source == DefaultPrices().Source {
		p.Source = fmt.Sprintf("%s (overridden by %s)", p.Source, path)
	}
	return p, nil
}

// GBSeconds is the GB-seconds of c.
func GBSeconds(c store.Counters) float64 { return float64(c.MemoryMiBMicros) / 1024 / 1e6 }

// Cost is the usage-driven cost of c, without the account floor.
func (p Prices) Cost(c store.Counters) float64 {
	return float64(c.Requests)/1e6*p.PerMillionRequests + GBSeconds(c)*p.PerGBSecond + float64(c.BytesOut)/(1<<30)*p.PerGBOut
}

// Floor is the account floor over a window of d.
func (p Prices) Floor(d time.Duration) float64 {
	return p.AccountPerMonth * d.Hours() / (30 * 24)
}

// StoredCost is what tableByteHours of bytes held in tables and
// bucketByteHours in buckets cost at these prices: byte-hours over 2^30 ×
// 720 (a GB-month of 30 days) times the price per GB-month.
func (p Prices) StoredCost(tableByteHours, bucketByteHours int64) float64 {
	const gbMonth = (1 << 30) * 720
	return float64(tableByteHours)/gbMonth*p.PerGBMonthTable + float64(bucketByteHours)/gbMonth*p.PerGBMonthBucket
}

// StoredPerMonth is what bytes stored in a table (bucket false) or a
// bucket cost per 30 days at these prices.
func (p Prices) StoredPerMonth(bytes int64, bucket bool) float64 {
	gb := float64(bytes) / (1 << 30)
	if bucket {
		return gb * p.PerGBMonthBucket
	}
	return gb * p.PerGBMonthTable
}
