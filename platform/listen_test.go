package platform_test

import (
	"net"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/silotest"
)

// TestListenNamesTheAddressTaken: when the gateway's or the API's address
// is in use, Listen says which of the two it is and the flags that choose
// it (silo server calls the gateway's --gateway and the API's --listen;
// silo up the gateway's --listen and the API's --api); with both free it
// listens on both.
func TestListenNamesTheAddressTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	for _, tc := range []struct {
		name, gateway, api string
		want               []string // in the message; none: Listen succeeds
	}{
		{"gateway taken", busy, "127.0.0.1:0", []string{"cannot listen on " + busy + " for the tenant gateway", "silo server --gateway ADDR", "silo up --listen ADDR"}},
		{"API taken", "127.0.0.1:0", busy, []string{"cannot listen on " + busy + " for the control-plane API", "silo server --listen ADDR", "silo up --api ADDR"}},
		{"both free", "127.0.0.1:0", "127.0.0.1:0", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := silotest.New(t, silotest.WithConfig(func(c *platform.Config) { c.Listen, c.APIListen = tc.gateway, tc.api })).Platform()
			ln, err := p.Listen()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Listen: %v, want it to listen", err)
				}
				ln.Close()
				return
			}
			if err == nil {
				ln.Close()
				t.Fatalf("Listen: no error, want one naming %q", tc.want[0])
			}
			msg := silo.UserMessage(err)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("got %q, want it to contain %q", msg, w)
				}
			}
			if silo.ErrorCode(err) != silo.CodeUnavailable {
				t.Errorf("code %s, want unavailable", silo.ErrorCode(err))
			}
		})
	}
}
