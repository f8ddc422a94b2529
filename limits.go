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
// CodeInvalid saying how to fix it. A zero field is in range: it sets no
// bound (see Limits).
func (l Limits) Check() error { return l.check(func(string) bool { return false }) }

// CheckGiven is Check for limits a user gave field by field, such as the
// flags of silo limits set: a field given reports whether the named field
// (rate, burst, concurrency, storage or invocations) was given, and a field
// given as 0 is out of range too, since 0 is no limit a user can ask for
// (every limit is above 0) and would otherwise be dropped as "not set".
func (l Limits) CheckGiven(given func(field string) bool) error { return l.check(given) }

func (l Limits) check(given func(string) bool) error {
	switch {
	case l.Rate < 0 || l.Rate > 1e6 || l.Rate != l.Rate || l.Rate == 0 && given("rate"):
		return Errorf(CodeInvalid, "limit rate %v is out of range; use requests per second above 0 and at most 1000000", l.Rate)
	case l.Burst < 0 || l.Burst > 1e7 || l.Burst == 0 && given("burst"):
		return Errorf(CodeInvalid, "limit burst %d is out of range; use a whole number from 1 to 10000000", l.Burst)
	case l.Concurrency < 0 || l.Concurrency > 1e5 || l.Concurrency == 0 && given("concurrency"):
		return Errorf(CodeInvalid, "limit concurrency %d is out of range; use a whole number from 1 to 100000", l.Concurrency)
	case l.Storage == 0 && given("storage"):
		return Errorf(CodeInvalid, "limit storage 0 is out of range; use a size above 0, e.g. 10GiB")
	case l.Invocations < 0 || l.Invocations == 0 && given("invocations"):
		return Errorf(CodeInvalid, "limit invocations %d is out of range; use a whole number of requests per month from 1", l.Invocations)
	}
	return nil
}
