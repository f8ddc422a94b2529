package platform

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/logs"
)

// plainCipher seals nothing; it stands for an account's log key.
type plainCipher struct{}

func (plainCipher) ID() string                         { return "plain" }
func (plainCipher) Seal(p, _ []byte) ([]byte, error)   { return p, nil }
func (plainCipher) Open(env, _ []byte) ([]byte, error) { return env, nil }

// Access lines of an account deleted after its requests are dropped
// quietly (its logs went with it), while another account's lines (the twin)
// are written, and any other failure is reported.
func TestAccessLogOfDeletedAccount(t *testing.T) {
	st, err := logs.Open(logs.Config{Dir: t.TempDir(), Keys: func(acct silo.AccountID) (logs.Cipher, error) {
		if acct == "gone" {
			return nil, silo.Errorf(silo.CodeNotFound, "account gone does not exist")
		}
		return plainCipher{}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var buf bytes.Buffer
	a := accessLog{logs: st, logger: slog.New(slog.NewTextHandler(&buf, nil))}
	entry := func(acct silo.AccountID) gateway.AccessEntry {
		return gateway.AccessEntry{Time: time.Now(), Account: acct, Method: "GET", Path: "/x", Status: 200, RequestID: "R1", Function: "f"}
	}
	a.WriteAccess([]gateway.AccessEntry{entry("gone"), entry("acme")})
	if buf.Len() != 0 {
		t.Errorf("operator log: %s; want nothing for a deleted account's lines", buf.String())
	}
	es, err := st.Read("acme", logs.Query{})
	if err != nil || len(es) != 1 || es[0].RequestID != "R1" {
		t.Fatalf("acme's log: %v, %v; want its access line", es, err)
	}
}
