package server_test

import (
	"context"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
)

// With no release yet, a tenant created through a server is refused with
// the command that makes one through it, silo deploy (silo apply refuses
// to run beside a server). The twin: the control plane itself, as the
// commands that run without a server use it, names silo apply.
func TestNoReleaseNamesTheCommand(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	_, err := f.client.CreateAccount(ctx, control.CreateRequest{ID: "acme", Kind: silo.KindTenant})
	if silo.ErrorCode(err) != silo.CodeNotFound || !strings.Contains(silo.UserMessage(err), "run silo deploy in the directory holding silo.yaml") {
		t.Errorf("through the server: %v (code %s); want not_found naming silo deploy", err, silo.ErrorCode(err))
	}
	plane := control.New(control.Config{Store: f.store, Provider: f.prov, Actor: "cli"})
	_, err = plane.CreateAccount(ctx, control.CreateRequest{ID: "acme", Kind: silo.KindTenant})
	if silo.ErrorCode(err) != silo.CodeNotFound || !strings.Contains(silo.UserMessage(err), "run silo apply in the directory holding silo.yaml") {
		t.Errorf("without a server: %v (code %s); want not_found naming silo apply", err, silo.ErrorCode(err))
	}
}
