package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/server"
)

// remote returns a client when --server or $SILO_SERVER is set, or when a
// silo up or silo server serves the data dir (runningServer), else nil.
// The token comes from --token, $SILO_TOKEN, or the data dir's token file.
func remote(g *globals) (*server.Client, error) {
	url := g.server
	if url == "" {
		url = os.Getenv("SILO_SERVER")
	}
	var found *platform.RunningServer
	if url == "" {
		rs, ok := runningServer(g.dataDir)
		if !ok {
			return nil, nil
		}
		url, found = rs.URL, &rs
	}
	if g.provFlag != "" {
		// The server reaches accounts through the provider it started
		// with; a flag here would be dropped without a word.
		return nil, silo.Errorf(silo.CodeInvalid, "%s applies to commands on a data dir no server serves, and this one runs through the silo server at %s, which keeps the provider settings it started with; drop %s, or restart the server with it", g.provFlag, url, g.provFlag)
	}
	tok := g.token
	if tok == "" {
		tok = os.Getenv("SILO_TOKEN")
	}
	if tok == "" {
		b, err := os.ReadFile(filepath.Join(g.dataDir, server.TokenFile))
		if err != nil {
			return nil, silo.Errorf(silo.CodeUnauthenticated, "no operator token for %s; pass --token or set SILO_TOKEN (the server wrote it to <data-dir>/%s)", url, server.TokenFile)
		}
		tok = strings.TrimSpace(string(b))
	}
	c := server.NewClient(url, tok, nil)
	if g.store != "" {
		if err := sameStore(g, c, url, found); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// sameStore refuses to go through the server at url (found serving the
// data dir, or named by --server or $SILO_SERVER: found is then nil) when
// --store (or $SILO_STORE) names another store than the one it serves: the
// command would answer from, or change, another database than the one
// named. Stores are the same when both are PostgreSQL and the server
// reports the identity of the database and schema --store reaches
// (postgres.Store.DatabaseID). That identity is PostgreSQL's own (cluster,
// database, schema), so it holds however either side reaches the database
// (a host name on one side, an address or a proxy on the other), and it
// tells two empty databases apart, which the installation ID cannot: a
// database gets that ID with its first account.
func sameStore(g *globals, c *server.Client, url string, found *platform.RunningServer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := openStore(ctx, g.store)
	if err != nil {
		return err
	}
	defer st.Close()
	mine, err := control.InstallationID(st)(ctx, false)
	if err != nil {
		return fmt.Errorf("read the installation ID of the --store database: %w", err)
	}
	var database string
	if d, ok := st.(interface {
		DatabaseID(context.Context) (string, error)
	}); ok {
		if database, err = d.DatabaseID(ctx); err != nil {
			return fmt.Errorf("read the identity of the --store database: %w", err)
		}
	}
	theirs, err := c.StoreIdentity(ctx)
	if err != nil {
		return fmt.Errorf("ask the silo server at %s which store it serves: %w", url, err)
	}
	if theirs.Store == "postgres" && theirs.Database != "" && theirs.Database == database {
		return nil
	}
	describe := func(kind, id, database string) string {
		if id == "" {
			id = "none yet"
		}
		d := ""
		if database != "" {
			d = ", database " + database[:min(8, len(database))]
		}
		return fmt.Sprintf("%s, installation %s%s", kind, id, d)
	}
	server := "the silo server at " + url
	if found != nil {
		server = fmt.Sprintf("the silo server at %s (pid %d) serving the data dir %s", url, found.PID, g.dataDir)
	}
	return silo.Errorf(silo.CodeConflict, "%s uses another control-plane store (%s) than --store (or $SILO_STORE) names (%s); drop --store (or unset SILO_STORE) to go through that server, or name the database it serves", server, describe(theirs.Store, theirs.Installation, theirs.Database), describe("postgres", mine, database))
}

// runningServer returns the silo up or silo server serving dataDir
// (platform.ServerFile): its process is alive and its API is there. Only a
// definite no counts as not serving (nothing listens at its address: the
// PID was reused, or it is exiting; or something else answers there): an
// API too busy to answer within a second is still serving the data dir,
// and opening its stores beside it is what this check is for.
func runningServer(dataDir string) (platform.RunningServer, bool) {
	rs, ok := platform.Running(dataDir)
	if !ok {
		return rs, false
	}
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(rs.URL + "/v1/health")
	if err != nil {
		return rs, !errors.Is(err, syscall.ECONNREFUSED)
	}
	resp.Body.Close()
	return rs, resp.StatusCode != http.StatusNotFound
}
