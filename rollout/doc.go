// Package rollout takes a release across the fleet ring by ring: the
// production account first, then each ring of the stack's rollout section in
// order, with bounded concurrency, a bake time, health gates (error rate and
// p99 latency against the previous release, an optional smoke function), a
// failure budget, automatic rollback of a failing ring, and operator pause,
// resume, abort and rollback.
//
// # Durability
//
// A rollout is a store record (store.Rollout: its state, owner and lease as
// columns, its rings as the status this package encodes), and every
// per-account step is claimed as a store.RolloutStep keyed by rollout, ring,
// account and step (apply or rollback) before it runs. A second claim of the
// same step is silo.ErrConflict, so a step is taken at most once by live
// runners; a claim left pending by a dead runner is taken over by the next
// lease holder and redone idempotently (the account is re-planned from
// recorded state after engine.Recover). The current release changes only
// through store.Tx.SetCurrentRelease: here when a rollout succeeds. One
// runner at a time drives a rollout, holding a lease in its record; several
// servers sharing one store run each rollout once. The whole runner survives
// SIGKILL at any moment: call engine.Recover, then Runner.Serve.
//
// # Selection
//
// An account belongs to the first ring whose selector matches it (kind,
// resolved tenant parameters, and a percentage chosen by a stable hash of the
// account ID, independent of the rollout, so the same 5% is the canary every
// time). Accounts that no ring selects are left alone and counted as
// Unselected in the rollout's status: rings state intent explicitly, and
// sweeping the rest into the last ring could deploy to a kind of account the
// author excluded. A stack with no rings gets one ring "everyone" over every
// non-production account. Only accounts whose plan changes are touched.
//
// # Gates and rollback
//
// A gate compares what the ring's changed accounts served under the target
// release during the bake with what they served under the previous release
// before the update: Metrics reports an account's figures per release, so
// a rolled-back release's errors never become the next rollout's baseline,
// and a previous release over max_error_rate is not a baseline at all.
// The gates are judged when the bake ends; they are also read every 5
// seconds of the bake (gateEvery) on what the ring served so far, and fail
// the ring then when they are failed with certainty: min_requests is met,
// and the window would still fail if the rest of the bake brought as many
// requests per second as the bake so far, all successful and fast
// (failsEarly). A pass always waits for the whole bake. A
// failing ring returns every account the rollout applied to, in that ring
// and every earlier one (production included) unless its on_rollback is
// keep, to the release that account ran before, and with them every
// account of those rings created on the rollout's release since it began
// (see below). When a rollout stops, each ring records how many of its
// accounts run which release.
//
// An operator's rollout (Start) and rollback (Rollback) are planned for
// every account they would move before anything starts; one that would
// delete or replace a table, bucket or secret is refused with
// silo.CodeNeedsConfirm unless Options.AllowDataLoss confirms it;
// PreviewStart and PreviewRollback return what that planning finds, every
// table, bucket and secret with every account where, without starting
// anything, so a caller can show it before asking. The preview's digest,
// passed back as Options.LossesDigest, makes the start go ahead only if
// its own planning still finds exactly what was shown (silo.CodeConflict
// otherwise), so a change between asking and starting (another release,
// a new account) destroys nothing the operator did not see. Only the
// latest rollout that left accounts moved can be rolled back, once:
// rolling back an earlier one would return the accounts a later rollout
// moved as well. A start of the current release that every account its
// rings select runs records nothing (UpToDate); a rollout that left every
// account where it was (it moved none, or it failed and its gates returned
// every account it moved) is neither rolled back nor counted as the
// latest. A failed rollout that left accounts on its release (a ring with
// on_rollback: keep, or an account that failed to return) is rolled back
// like any other, which returns those. A rollback rollout cannot be rolled
// back: that would ship the release it undid with no gate. List marks the
// one rollout a rollback may undo (Rollout.CanRollBack), and a refusal
// advises only a command that starts. A release whose latest rollout failed starts
// again only with Options.RetryFailed, through every ring and gate; Reship
// is that rule, and silo apply, which ships a release to the fleet at once,
// keeps it too (--retry-failed). A failing
// ring's own rollback needs no confirmation.
//
// An account created during a rollout gets the rollout's release once the
// ring that selects it has begun, the current release before and once a
// ring has failed (ReleaseFor, which control.Plane asks through its
// Placement). One rule (returnTo) says which accounts an undo of a rollout
// returns, whether a failing ring's or an operator's rollback: those the
// rollout applied to, and those created since it began that run its
// release; an account that ran the release before the rollout began and
// that the rollout did not move (a developer's own build of the same
// sources) stays. Before a rollout
// succeeds, every account of its rings must still be recorded on its
// release (those whose apply failed within budget aside); otherwise the
// last ring fails and every ring returns its accounts. A rollback's rings are those
// of the release it returns to, which need not select every account the
// rollout it undoes moved, and a last ring "rest" over every account they
// leave out, when one of those is an account the rollback returns
// (decided in the transaction that records the rollback): which accounts
// move is decided per account, never by ring. While a rollback runs, every
// new account gets the release it returns to, whatever ring selects it;
// one that an onboarding placed on the rolled-back release before the
// rollback was recorded and registered after its ring passed is returned
// before the rollback succeeds (its ring runs again, or rest is added). A
// rollback moves the accounts the rollout it undoes applied to (back to
// the release each ran before) and the accounts created on its release
// since it began; an account that ran that release before it began and
// that it did not move (a developer's own build of the same sources) stays.
//
// It depends on the engine and on the store and provider contracts, never on
// their implementations, on the runtime or on the server; health metrics and
// smoke tests come in through the small Metrics and Smoke interfaces it
// declares. Published makes one server's Metrics count the requests of
// every server sharing the store: its own plus what the others published.
package rollout
