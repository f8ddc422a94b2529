package silo_test

import (
	"errors"
	"fmt"
	"testing"

	silo "github.com/silo-run/silo"
)

// TestForLogCarriesTheCause: a log line of an error whose *Error holds an
// internal cause carries that cause after the message a user reads; an
// error without one is logged as it reads (the twin).
func TestForLogCarriesTheCause(t *testing.T) {
	network := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	user := &silo.Error{Code: silo.CodeUnavailable, Message: "silo cannot reach AWS", Err: fmt.Errorf("list accounts: %w", network)}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"wrapped, with a cause", fmt.Errorf("list provider accounts: %w", user), "list provider accounts: silo cannot reach AWS; cause: list accounts: dial tcp 127.0.0.1:1: connect: connection refused"},
		{"without a cause", fmt.Errorf("read: %w", silo.Errorf(silo.CodeNotFound, "no account %q", "a")), `read: no account "a"`},
		{"no *Error", network, network.Error()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := silo.ForLog(c.err); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	if got := silo.UserMessage(cases[0].err); got != "silo cannot reach AWS" {
		t.Errorf("the user's message %q carries more than the sentence", got)
	}
}
