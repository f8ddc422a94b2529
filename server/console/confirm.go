package console

import (
	"errors"
	"net/http"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/rollout"
)

// The confirm step of a rollout or a rollback: before either starts, a
// page lists what it would destroy, as the API's preview (and so the
// rollout package's planning, which refuses it) finds it, and offers the
// "delete this data" checkbox only when there is something to delete. The
// form carries the preview's digest of what was listed, and the console
// always sends it with the start: the rollout package plans again as it
// starts and refuses (conflict) when what it would destroy is no longer
// what was listed, and the console goes back to the list.

// lossShown is how many accounts of one loss the page names; the rest are
// counted.
const lossShown = 50

// ConfirmPage is the data of the confirm step of a rollout or rollback.
type ConfirmPage struct {
	Rollback bool   // a rollback of rollout Subject, else a rollout of release Subject
	Subject  string // the release or rollout ID
	Post     string // where the form posts
	Err      string // why the preview failed; no form then
	Release  string // the release the accounts would move to
	Accounts int    // accounts planned
	Losses   []lossRow
	Digest   string // the preview's losses_digest, sent back with the form
	// Failure, on a rollout's step, is why the release's latest rollout
	// failed: the form then asks to ship it again (retry_failed).
	Failure *rollout.Failure
}

// lossRow is one table, bucket or secret that would be deleted or
// replaced, with the first lossShown accounts and how many more.
type lossRow struct {
	Op, Type, Name string
	Accounts       []silo.AccountID
	More           int
}

// confirmRollout shows what rolling out a release would destroy.
func (c *Console) confirmRollout(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("rid")
	pv, err := c.api.PreviewRollout(r.Context(), id)
	c.confirm(w, s, ConfirmPage{Subject: id, Post: "/console/releases/" + id + "/rollout"}, pv, err)
}

// confirmRollback shows what rolling back a rollout would destroy.
func (c *Console) confirmRollback(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("rid")
	pv, err := c.api.PreviewRollback(r.Context(), id)
	c.confirm(w, s, ConfirmPage{Rollback: true, Subject: id, Post: "/console/rollouts/" + id + "/rollback"}, pv, err)
}

func (c *Console) confirm(w http.ResponseWriter, s *session, p ConfirmPage, pv rollout.Preview, err error) {
	if err != nil {
		code := silo.ErrorCode(err)
		if code == silo.CodeInternal {
			c.cfg.Logger.Error("console preview failed", "subject", p.Subject, "err", err)
		}
		p.Err = silo.UserMessage(err)
		c.render(w, code.HTTPStatus(), "confirm", s, p)
		return
	}
	p.Release, p.Accounts, p.Losses, p.Digest, p.Failure = pv.Release, pv.Accounts, lossRows(pv.Losses), pv.Digest, pv.Failure
	c.render(w, http.StatusOK, "confirm", s, p)
}

// lossRows are the rows of the list of losses, each naming at most
// lossShown accounts.
func lossRows(ls []silo.Loss) []lossRow {
	var out []lossRow
	for _, l := range ls {
		row := lossRow{Op: string(l.Op), Type: string(l.Type), Name: l.Name, Accounts: l.Accounts}
		if len(row.Accounts) > lossShown {
			row.Accounts, row.More = row.Accounts[:lossShown], len(l.Accounts)-lossShown
		}
		out = append(out, row)
	}
	return out
}

// confirmation reads a rollout or rollback form: the digest of the list
// it showed, and whether its box was ticked. A ticked box on a form that
// does not say which list it confirms confirms nothing: ok is false and
// the caller shows the list again.
func confirmation(r *http.Request) (opt rollout.Options, ok bool) {
	opt = rollout.Options{AllowDataLoss: r.PostFormValue("allow_data_loss") == "yes", LossesDigest: r.PostFormValue("losses"), RetryFailed: r.PostFormValue("retry_failed") == "yes"}
	return opt, !opt.AllowDataLoss || opt.LossesDigest != ""
}

// startRollout starts rolling a release out over the fleet, as silo
// deploy does, for what its confirm step listed.
func (c *Console) startRollout(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("rid")
	opt, ok := confirmation(r)
	var err error
	if ok {
		var ro rollout.Rollout
		ro, err = c.api.StartRollout(r.Context(), id, opt)
		if u, none := errors.AsType[*rollout.UpToDate](err); none {
			c.back(w, r, s, "/console/releases", flash{OK: "Nothing was started: " + u.Error() + "."})
			return
		}
		if err == nil {
			c.back(w, r, s, "/console/releases", flash{OK: "Rollout " + ro.ID + " of release " + ro.Release + " started."})
			return
		}
	}
	c.notStarted(w, r, s, "/console/releases/"+id+"/rollout", true, opt, ok, err)
}

// rollback starts rolling back a rollout, confirmed as startRollout.
func (c *Console) rollback(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("rid")
	opt, ok := confirmation(r)
	var err error
	if ok {
		var ro rollout.Rollout
		if ro, err = c.api.Rollback(r.Context(), id, opt); err == nil {
			c.back(w, r, s, "/console/releases", flash{OK: "Rollout " + ro.ID + " rolls back " + id + "."})
			return
		}
	}
	c.notStarted(w, r, s, "/console/rollouts/"+id+"/rollback", false, opt, ok, err)
}

// notStarted answers a rollout or rollback that did not start: back to its
// confirm step (review) when the form did not confirm what it would
// destroy, or when the API refuses a form that carried its list's digest
// as a conflict (what it would destroy is no longer what was listed, or
// another rollout runs: the message says which, and the step shows the
// list as it stands), or refuses a start that did not confirm shipping a
// release whose last rollout failed, else to the releases page with the
// API's message.
func (c *Console) notStarted(w http.ResponseWriter, r *http.Request, s *session, review string, start bool, opt rollout.Options, ok bool, err error) {
	switch {
	case !ok:
		c.back(w, r, s, review, flash{Err: "Nothing was started: the form did not say which list it confirms. Review the list below and confirm it."})
	case silo.ErrorCode(err) == silo.CodeConflict && opt.LossesDigest != "":
		c.back(w, r, s, review, flash{Err: silo.UserMessage(err)})
	case silo.ErrorCode(err) == silo.CodeFailedCheck && start && !opt.RetryFailed:
		// Refused without the box (a failure since the step was shown, or
		// a gate's refusal): the step shows the failure and the box.
		c.back(w, r, s, review, flash{Err: silo.UserMessage(err)})
	case silo.ErrorCode(err) == silo.CodeNeedsConfirm:
		c.back(w, r, s, review, flash{Err: "Nothing was started: it would delete the data listed below; tick the box to confirm."})
	default:
		if silo.ErrorCode(err) == silo.CodeInternal {
			c.cfg.Logger.Error("console rollout action failed", "path", r.URL.Path, "err", err)
		}
		c.back(w, r, s, "/console/releases", flash{Err: silo.UserMessage(err)})
	}
}
