package probe

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation/report"
)

// forgery attacks the signed isolation report as a reader would meet it.
// It fetches A's genuine report and forges copies claiming to be B's, with
// a summary of the forger's choosing: one keeping the genuine signature;
// one re-signed with a key of the forger's own that it embeds (the
// forgery a reader without a pinned key cannot tell from a genuine
// report); one re-signed with the forger's key but carrying the
// installation's key; one carrying the forger's key but naming the
// installation's fingerprint as its signer. Each must be refused by the
// report verifier (report.VerifyReport, then report.CheckSigner against
// the installation's published keys), and the self-signed forgery must be
// reported "not checked", never trusted, when no key is pinned. Controls:
// the genuine report verifies and is signed by a published key, and the
// self-signed forgery is intact by itself, so its refusal comes from the
// key comparison and not from a broken forgery.
func (r *run) forgery(ctx context.Context, rep *Report) error {
	t := newTally("report", "the signed isolation report: forged copies (edited, re-signed with another key, with or without the installation's key or fingerprint) are refused against the published key, and unpinned verification says who signed was not checked")
	genuine, err := r.t.Report(ctx, r.a.id)
	if err != nil {
		return fmt.Errorf("probe: the isolation report of %s: %w", r.a.id, err)
	}
	v, err := report.VerifyReport(genuine)
	problem := errMsg(err)
	if err == nil && (v.Tenant != r.a.id || v.Report == nil) {
		problem = fmt.Sprintf("it verified as the report of %q, want %q", v.Tenant, r.a.id)
	}
	t.control("the genuine report of "+string(r.a.id)+" is intact", problem)
	if err != nil || v.Report == nil {
		rep.add(t)
		return nil // nothing to forge from; the failed control says why
	}
	_, err = report.CheckSigner(v, r.t.ReportKeys)
	t.control("the genuine report is signed by a key the installation publishes", errMsg(err))

	_, forger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("probe: forger's key: %w", err)
	}
	forged := *v.Report
	forged.Tenant = r.b.id
	forged.Summary = append([]string{"Forged by the isolation probe: " + r.nonce + "."}, forged.Summary...)

	// 1. Edited, the genuine signature kept.
	edited := forged
	edited.PublicKey, edited.Signer = v.Report.PublicKey, v.Report.Signer
	var genuineSig struct {
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(genuine, &genuineSig); err != nil {
		return fmt.Errorf("probe: read the genuine report's signature: %w", err)
	}
	r.forgeryAttempt(t, "an edited copy keeping the genuine signature", report.Signed{Report: edited, Signature: genuineSig.Signature}, r.t.ReportKeys)

	// 2. Re-signed with the forger's key, which it embeds.
	selfSigned, err := report.Sign(forged, forger)
	if err != nil {
		return fmt.Errorf("probe: sign the forgery: %w", err)
	}
	data, err := selfSigned.JSON()
	if err != nil {
		return err
	}
	_, err = report.VerifyReport(data)
	t.control("the forgery re-signed with the forger's own key is intact by itself (a well-formed forgery)", errMsg(err))
	r.forgeryAttempt(t, "a copy re-signed with the forger's own key, checked against the published key", selfSigned, r.t.ReportKeys)
	r.forgeryAttempt(t, "a copy re-signed with the forger's own key, checked with no key pinned", selfSigned, nil)

	// 3. Re-signed with the forger's key, carrying the installation's key.
	borrowed := forged
	borrowed.PublicKey, borrowed.Signer = v.Report.PublicKey, v.Report.Signer
	r.forgeryAttempt(t, "a copy re-signed with the forger's key but carrying the installation's key", signRaw(borrowed, forger), r.t.ReportKeys)

	// 4. The forger's key, naming the installation's fingerprint as signer.
	misnamed := forged
	misnamed.PublicKey = base64.StdEncoding.EncodeToString(forger.Public().(ed25519.PublicKey))
	misnamed.Signer = v.Report.Signer
	r.forgeryAttempt(t, "a copy signed with the forger's key that names the installation's fingerprint as its signer", signRaw(misnamed, forger), r.t.ReportKeys)
	r.forgeryAttempt(t, "a copy signed with the forger's key that names the installation's fingerprint as its signer, with no key pinned", signRaw(misnamed, forger), nil)
	rep.add(t)
	return nil
}

// forgeryAttempt runs the report verifier on s as silo report verify does
// (integrity, then the signer against pinned, or "not checked" when
// nothing is pinned). The attempt succeeds if the forgery is accepted as
// signed by a trusted key.
func (r *run) forgeryAttempt(t *tally, what string, s report.Signed, pinned []string) {
	data, err := s.JSON()
	if err != nil {
		t.attempt(what, "unencodable", "")
		return
	}
	v, err := report.VerifyReport(data)
	if err != nil {
		t.attempt(what, "refused: not intact", "")
		return
	}
	fp, err := report.CheckSigner(v, pinned)
	switch {
	case err == nil && len(pinned) == 0:
		t.attempt(what, "accepted", "with no key pinned, the verifier accepted its signer as checked")
	case err == nil:
		t.attempt(what, "accepted", fmt.Sprintf("the verifier accepted it as signed by trusted key %s", fp))
	case len(pinned) == 0 && silo.ErrorCode(err) == silo.CodeInvalid:
		t.attempt(what, "intact, signer not checked", "")
	default:
		t.attempt(what, "refused: signer not trusted", "")
	}
}

// signRaw signs r with key as it stands, without setting its key and
// signer fields (which report.Sign would).
func signRaw(r report.Report, key ed25519.PrivateKey) report.Signed {
	b, _ := json.Marshal(r)
	return report.Signed{Report: r, Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, b))}
}
