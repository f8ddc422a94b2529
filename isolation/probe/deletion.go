package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/store"
)

// LogStore is the platform's store of function logs. *logs.Store
// satisfies it.
type LogStore interface {
	// Read reads an account's retained log, as silo logs and the logs API
	// do: only the records sealed under the account's current key.
	Read(acct silo.AccountID, q logs.Query) ([]logs.Entry, error)
	// Dir is the directory of the log files (see logs.Path).
	Dir() string
}

// The key under which the deletion surface plants its canaries.
const keyCanary = "canary"

// deletion checks that a deleted account leaves nothing (I5). It creates a
// throwaway account D, writes canaries into its table, bucket and log
// through D's own function and its secret through the control plane, and
// reads them all back as D (the controls: the canaries are there to be
// found). Then it deletes D and attacks what is left: the provider must not
// list it or hold its resources, its log must be empty or not found, and
// its key must be refused. Then it re-creates an account with the same ID:
// none of the canaries may come back through the new account's function,
// no old line through its log, and the old key must still be refused;
// the new account's own fresh values, secret and log lines must (controls
// that show the reads can succeed).
func (r *run) deletion(ctx context.Context, rep *Report) error {
	t := newTally("deletion", "a deleted account leaves nothing: its table, blob, secret and log canaries are gone with it, its key is worthless, and an account re-created with the same ID starts empty")
	d := &acct{id: store.ProbeAccountID(r.nonce, "d")}
	canary := map[string]string{
		"table value": "canary-kv-" + r.nonce,
		"blob":        "canary-blob-" + r.nonce,
		"secret":      "canary-secret-" + r.nonce,
		"log line":    "canary-log-" + r.nonce,
	}
	if err := r.createProbeAccount(ctx, d); err != nil {
		return err
	}
	if err := r.deployProbe(ctx, d); err != nil {
		return err
	}
	if err := r.t.Control.SetSecret(ctx, d.id, secProbe, []byte(canary["secret"])); err != nil {
		return fmt.Errorf("probe: set the secret of %s: %w", d.id, err)
	}
	if err := r.mustBatch(ctx, d, []op{
		{Op: "kv.put", Name: tblProbe, Key: keyCanary, Value: []byte(canary["table value"])},
		{Op: "blob.put", Name: bktProbe, Key: keyCanary, Value: []byte(canary["blob"])},
		{Op: "log", Key: canary["log line"]},
	}); err != nil {
		return err
	}

	// Controls: before deletion, D reads every canary back.
	reads := []op{
		{Op: "kv.get", Name: tblProbe, Key: keyCanary},
		{Op: "blob.get", Name: bktProbe, Key: keyCanary},
		{Op: "secret", Name: secProbe},
	}
	whats := []string{"table value", "blob", "secret"}
	res, err := r.batch(ctx, d, reads)
	if err != nil {
		return err
	}
	for i, x := range res {
		problem := ""
		if leak(x.Values, d.id, map[string]string{whats[i]: canary[whats[i]]}) == "" {
			problem = fmt.Sprintf("the read answered %q without the canary", x.Status)
		}
		t.control(fmt.Sprintf("%s reads its own %s canary before deletion", d.id, whats[i]), problem)
	}
	n, err := r.logLines(d.id, canary["log line"])
	t.control(fmt.Sprintf("%s's log holds its canary line before deletion", d.id), logProblem(n, err))

	// Delete D, then attack what may be left.
	oldKey := d.key
	if err := r.t.Control.DeleteAccount(ctx, d.id); err != nil {
		return fmt.Errorf("probe: delete %s: %w", d.id, err)
	}
	r.goneAttempts(ctx, t, d.id, oldKey, canary["log line"], "after deletion")

	// Re-create an account with the same ID: it must start empty.
	if err := r.createProbeAccount(ctx, d); err != nil {
		return err
	}
	if err := r.deployProbe(ctx, d); err != nil {
		return err
	}
	all := []op{
		{Op: "kv.get", Name: tblProbe, Key: keyCanary},
		{Op: "kv.scan", Name: tblProbe},
		{Op: "blob.get", Name: bktProbe, Key: keyCanary},
		{Op: "blob.dump", Name: bktProbe},
		{Op: "secret", Name: secProbe},
	}
	res, err = r.batch(ctx, d, all)
	if err != nil {
		return err
	}
	for i, x := range res {
		o := all[i]
		t.attempt(fmt.Sprintf("the re-created %s finds an old canary through %s %s", d.id, o.Op, strings.TrimSpace(o.Name+" "+o.Key)),
			x.Status, leak(x.Values, d.id+" (deleted)", canary))
	}
	n, err = r.logLines(d.id, canary["log line"])
	breach := ""
	if n > 0 {
		breach = fmt.Sprintf("%d line(s) of the deleted account's log came back", n)
	}
	t.attempt(fmt.Sprintf("the re-created %s's log holds the deleted account's canary line", d.id), outcomeOf(err), breach)
	resp, err := r.send(ctx, rawReq{method: "GET", target: "/probe", host: r.host(d.id), auth: "Bearer " + oldKey})
	t.attempt("the deleted account's key on the re-created "+string(d.id), httpOutcome(resp, err), served2xx(resp, err))

	// Controls: the re-created account's own values, secret and log lines
	// are read back, so the empty reads above are not a blind harness.
	fresh := "fresh-" + r.nonce
	if err := r.t.Control.SetSecret(ctx, d.id, secProbe, []byte(fresh+"-secret")); err != nil {
		return fmt.Errorf("probe: set the secret of %s: %w", d.id, err)
	}
	res, err = r.batch(ctx, d, []op{
		{Op: "kv.put", Name: tblProbe, Key: keyCanary, Value: []byte(fresh + "-kv")},
		{Op: "blob.put", Name: bktProbe, Key: keyCanary, Value: []byte(fresh + "-blob")},
		{Op: "log", Key: fresh + "-log"},
		{Op: "kv.get", Name: tblProbe, Key: keyCanary},
		{Op: "blob.get", Name: bktProbe, Key: keyCanary},
		{Op: "secret", Name: secProbe},
	})
	if err != nil {
		return err
	}
	for i, what := range []string{"kv", "blob", "secret"} {
		x := res[3+i]
		problem := ""
		if leak(x.Values, d.id, map[string]string{what: fresh + "-" + what}) == "" {
			problem = fmt.Sprintf("the read answered %q without the value just written", x.Status)
		}
		t.control(fmt.Sprintf("the re-created %s writes and reads back its own %s", d.id, what), problem)
	}
	n, err = r.logLines(d.id, fresh+"-log")
	t.control(fmt.Sprintf("the re-created %s's log holds its own new line", d.id), logProblem(n, err))
	rep.add(t)
	return nil
}

// goneAttempts attacks what a deleted account may have left: the
// provider's account and resources, the log, the key.
func (r *run) goneAttempts(ctx context.Context, t *tally, id silo.AccountID, key, logCanary, when string) {
	ids, err := r.t.Provider.Accounts(ctx)
	breach := ""
	for _, x := range ids {
		if x == id {
			breach = "the provider still lists the account"
		}
	}
	t.attempt(fmt.Sprintf("the provider lists %s %s", id, when), outcomeOf(err), breach)
	rs, err := r.t.Provider.Resources(ctx, id)
	breach = ""
	if err == nil && len(rs) > 0 {
		breach = fmt.Sprintf("the provider still holds %d resource(s) of the account", len(rs))
	}
	t.attempt(fmt.Sprintf("the provider holds resources of %s %s", id, when), outcomeOf(err), breach)
	err = r.t.Control.VerifyGone(ctx, id)
	t.attempt(fmt.Sprintf("something of %s is left %s (the control plane's teardown check)", id, when), outcomeOf(err), errMsg(err))
	es, err := r.t.Logs.Read(id, logs.Query{})
	breach = ""
	if len(es) > 0 {
		breach = fmt.Sprintf("%d log line(s) of the deleted account remain", len(es))
		if n := countLines(es, logCanary); n > 0 {
			breach += fmt.Sprintf(", %d of them its canary", n)
		}
	}
	t.attempt(fmt.Sprintf("the log of %s is read %s", id, when), outcomeOf(err), breach)
	// Records sealed under the destroyed key no longer read back, so Read
	// alone cannot tell a removed log from one left on disk.
	breach, outcome := "", "no file"
	for _, f := range []string{logs.Path(r.t.Logs.Dir(), id), logs.Path(r.t.Logs.Dir(), id) + ".1"} {
		fi, err := os.Lstat(f)
		switch {
		case err == nil:
			breach, outcome = fmt.Sprintf("its log file is still on disk (%d bytes, sealed under the destroyed key)", fi.Size()), "file left"
		case !errors.Is(err, fs.ErrNotExist):
			outcome = "unreadable: " + err.Error()
		}
	}
	t.attempt(fmt.Sprintf("the log store keeps records of %s %s", id, when), outcome, breach)
	resp, err := r.send(ctx, rawReq{method: "GET", target: "/probe", host: r.host(id), auth: "Bearer " + key})
	t.attempt(fmt.Sprintf("the key of %s on its own host %s", id, when), httpOutcome(resp, err), served2xx(resp, err))
}

// deployProbe deploys the probe app to a.
func (r *run) deployProbe(ctx context.Context, a *acct) error {
	if _, err := r.t.Control.DeployProbe(ctx, r.appDir, a.id); err != nil {
		return fmt.Errorf("probe: deploy the probe function to %s: %w", a.id, err)
	}
	return nil
}

// mustBatch runs ops in a's probe function and fails unless every op
// succeeded.
func (r *run) mustBatch(ctx context.Context, a *acct, ops []op) error {
	res, err := r.batch(ctx, a, ops)
	if err != nil {
		return err
	}
	for i, x := range res {
		if x.Status != "ok" {
			return fmt.Errorf("probe: %s in %s: %s", ops[i].Op, a.id, x.Status)
		}
	}
	return nil
}

// logLines returns how many lines of id's log contain s.
func (r *run) logLines(id silo.AccountID, s string) (int, error) {
	es, err := r.t.Logs.Read(id, logs.Query{})
	return countLines(es, s), err
}

func countLines(es []logs.Entry, s string) int {
	n := 0
	for _, e := range es {
		if strings.Contains(e.Msg, s) {
			n++
		}
	}
	return n
}

func logProblem(n int, err error) string {
	switch {
	case err != nil:
		return "reading the log failed: " + errMsg(err)
	case n == 0:
		return "the line is not in the log"
	}
	return ""
}

// outcomeOf names how a check answered: "ok", "not found" or the error's
// code.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, silo.ErrNotFound):
		return "not found"
	}
	return string(silo.ErrorCode(err))
}
