package provider

// Invocations counts the requests one release's functions served in one
// account, as a provider that runs the functions itself (the AWS provider
// with functions on Lambda) reports them for the rollout gates. The
// counters only grow.
type Invocations struct {
	Requests, Errors uint64
	// Latency counts requests by silo.LatencyBucket; sparse.
	Latency map[int]uint64
}
