package console

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/rollout"
)

// The confirm step of a rollout or a rollback: before either starts, a
// page lists what it would destroy, as the API's preview (and so the
// rollout package's planning, which refuses it) finds it, and offers the
// "delete this data" checkbox only when there is something to delete. The
// form carries a digest of what was listed; a confirmed start whose
// preview no longer matches it goes back to the list instead of starting.

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
	Digest   string // of the preview's losses, sent back with the form
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
	p.Release, p.Accounts, p.Losses, p.Digest = pv.Release, pv.Accounts, lossRows(pv.Losses), lossDigest(pv.Losses)
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

// lossDigest identifies what a preview would destroy, every account
// included.
func lossDigest(ls []silo.Loss) string {
	if len(ls) == 0 {
		return ""
	}
	b, _ := json.Marshal(ls) // strings only: always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// confirmedLoss reads a rollout or rollback form: whether it confirms
// destroying data, and if so whether what it confirms (its digest) is
// what preview finds now. A form that confirms something else, or nothing
// in particular, is not confirmed: ok is false and the caller shows the
// list again. When preview finds nothing to destroy, no loss is allowed.
func (c *Console) confirmedLoss(r *http.Request, preview func() (rollout.Preview, error)) (opt rollout.Options, ok bool, err error) {
	if r.PostFormValue("allow_data_loss") != "yes" {
		return rollout.Options{}, true, nil
	}
	pv, err := preview()
	if err != nil {
		return rollout.Options{}, false, err
	}
	if len(pv.Losses) == 0 {
		// Nothing to confirm now; should that change, the API refuses.
		return rollout.Options{}, true, nil
	}
	if r.PostFormValue("losses") != lossDigest(pv.Losses) {
		return rollout.Options{}, false, nil
	}
	return rollout.Options{AllowDataLoss: true}, true, nil
}

// startRollout starts rolling a release out over the fleet, as silo
// deploy does. One that destroys data starts only confirmed, for what its
// confirm step listed.
func (c *Console) startRollout(w http.ResponseWriter, r *http.Request, s *session) {
	id, ctx := r.PathValue("rid"), r.Context()
	opt, ok, err := c.confirmedLoss(r, func() (rollout.Preview, error) { return c.api.PreviewRollout(ctx, id) })
	if err == nil && ok {
		var ro rollout.Rollout
		if ro, err = c.api.StartRollout(ctx, id, opt); err == nil {
			c.back(w, r, s, "/console/releases", flash{OK: "Rollout " + ro.ID + " of release " + ro.Release + " started."})
			return
		}
	}
	c.notStarted(w, r, s, "/console/releases/"+id+"/rollout", ok, err)
}

// rollback starts rolling back a rollout, confirmed as startRollout.
func (c *Console) rollback(w http.ResponseWriter, r *http.Request, s *session) {
	id, ctx := r.PathValue("rid"), r.Context()
	opt, ok, err := c.confirmedLoss(r, func() (rollout.Preview, error) { return c.api.PreviewRollback(ctx, id) })
	if err == nil && ok {
		var ro rollout.Rollout
		if ro, err = c.api.Rollback(ctx, id, opt); err == nil {
			c.back(w, r, s, "/console/releases", flash{OK: "Rollout " + ro.ID + " rolls back " + id + "."})
			return
		}
	}
	c.notStarted(w, r, s, "/console/rollouts/"+id+"/rollback", ok, err)
}

// notStarted answers a rollout or rollback that did not start: back to its
// confirm step (review) when what it would destroy is not what the form
// confirmed, else to the releases page with the API's message.
func (c *Console) notStarted(w http.ResponseWriter, r *http.Request, s *session, review string, ok bool, err error) {
	switch {
	case err == nil && !ok:
		c.back(w, r, s, review, flash{Err: "Nothing was started: what it would delete has changed since the list was shown. Review the list below."})
	case silo.ErrorCode(err) == silo.CodeNeedsConfirm:
		c.back(w, r, s, review, flash{Err: "Nothing was started: it would delete the data listed below; tick the box to confirm."})
	default:
		if silo.ErrorCode(err) == silo.CodeInternal {
			c.cfg.Logger.Error("console rollout action failed", "path", r.URL.Path, "err", err)
		}
		c.back(w, r, s, "/console/releases", flash{Err: silo.UserMessage(err)})
	}
}
