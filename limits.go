package silo

// Limits bound what one account may use. A plan of silo.yaml's limits
// section gives them to every tenant on that plan, and an operator may
// override them per account. A zero field sets no bound of its own: the
// layer below applies (the override falls back to the plan, the plan to the
// gateway's defaults; storage and invocations are then unbounded).
type Limits struct {
	// Rate is the sustained number of requests per second admitted.
	Rate float64 `json:"rate,omitempty"`
	// Burst is how many requests may arrive at once above Rate (the token
	// bucket's size).
	Burst int `json:"burst,omitempty"`
	// Concurrency bounds the account's requests in flight.
	Concurrency int `json:"concurrency,omitempty"`
	// Storage bounds the bytes stored in each table and each bucket.
	Storage uint64 `json:"storage,omitempty"`
	// Invocations bounds the requests admitted per calendar month (UTC).
	Invocations int64 `json:"invocations,omitempty"`
}

// Over returns l with every non-zero field of o in place of l's.
func (l Limits) Over(o Limits) Limits {
	if o.Rate != 0 {
		l.Rate = o.Rate
	}
	if o.Burst != 0 {
		l.Burst = o.Burst
	}
	if o.Concurrency != 0 {
		l.Concurrency = o.Concurrency
	}
	if o.Storage != 0 {
		l.Storage = o.Storage
	}
	if o.Invocations != 0 {
		l.Invocations = o.Invocations
	}
	return l
}

// IsZero reports whether l sets no bound.
func (l Limits) IsZero() bool { return l == Limits{} }

// Check reports the first field of l out of range, as an *Error with
// CodeInvalid saying how to fix it.
func (l Limits) Check() error {
	switch {
	case l.Rate < 0 || l.Rate > 1e6 || l.Rate != l.Rate:
		return Errorf(CodeInvalid, "limit rate %v is out of range; use requests per second above 0 and at most 1000000", l.Rate)
	case l.Burst < 0 || l.Burst > 1e7:
		return Errorf(CodeInvalid, "limit burst %d is out of range; use a whole number from 1 to 10000000", l.Burst)
	case l.Concurrency < 0 || l.Concurrency > 1e5:
		return Errorf(CodeInvalid, "limit concurrency %d is out of range; use a whole number from 1 to 100000", l.Concurrency)
	case l.Invocations < 0:
		return Errorf(CodeInvalid, "limit invocations %d is negative; use a whole number of requests per month", l.Invocations)
	}
	return nil
}
