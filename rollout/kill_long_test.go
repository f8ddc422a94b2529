//go:build long

package rollout_test

// The full size of the kill test: go test -tags=long -run TestKill ./rollout
func init() { killTenants = 5000 }
