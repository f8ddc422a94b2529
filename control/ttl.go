package control

import (
	"strings"
	"time"

	silo "github.com/silo-run/silo"
)

// MaxEnvTTL bounds an environment's time to live.
const MaxEnvTTL = 30 * 24 * time.Hour

// CheckTTL is the rule for an account's time to live, and the only place
// it lives: an environment has one, from more than 0 to MaxEnvTTL, after
// which the server tears it down; no other kind of account expires. Every
// way of creating an account (CreateAccount, so silo tenant create, silo
// env create, POST /v1/accounts and POST /v1/environments) applies it.
//
// # Errors
//
// CodeInvalid, in the words of a ttl field ("ttl is required: …"), which
// the command line gives as its --ttl flag.
func CheckTTL(kind silo.Kind, ttl time.Duration) error {
	max := strings.TrimSuffix(MaxEnvTTL.String(), "0m0s")
	switch {
	case kind != silo.KindEnvironment && ttl != 0:
		return silo.Errorf(silo.CodeInvalid, "ttl is for environments only: a %s account does not expire; leave ttl out, or create an environment", kind)
	case kind != silo.KindEnvironment:
		return nil
	case ttl == 0:
		return silo.Errorf(silo.CodeInvalid, "ttl is required: how long the environment lives before it is torn down, e.g. 2h (at most %s)", max)
	case ttl < 0:
		return silo.Errorf(silo.CodeInvalid, "ttl must be positive, e.g. 2h, not %s", ttl)
	case ttl > MaxEnvTTL:
		return silo.Errorf(silo.CodeInvalid, "ttl must be at most %s, not %s", max, ttl)
	}
	return nil
}
