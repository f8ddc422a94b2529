package report

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/jsonerr"
)

// Signed is a report with its signature: the ed25519 signature, base64, of
// the canonical JSON of Report (json.Marshal), by the key in
// Report.PublicKey.
type Signed struct {
	Report    Report `json:"report"`
	Signature string `json:"signature"`
}

// Sign signs r with key, setting r.PublicKey and r.Signer.
func Sign(r Report, key ed25519.PrivateKey) (Signed, error) {
	pub := key.Public().(ed25519.PublicKey)
	r.PublicKey = base64.StdEncoding.EncodeToString(pub)
	r.Signer = Fingerprint(pub)
	b, err := json.Marshal(r)
	if err != nil {
		return Signed{}, fmt.Errorf("encode report: %w", err)
	}
	return Signed{Report: r, Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, b))}, nil
}

// Fingerprint returns the SHA-256 of an ed25519 public key, hex: the name
// of a signing key that people compare.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// KeyFingerprint returns the fingerprint of a base64 public key as carried
// in reports ("" if it is not one).
func KeyFingerprint(pub string) string {
	b, err := base64.StdEncoding.DecodeString(pub)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return ""
	}
	return Fingerprint(b)
}

// JSON returns the JSON form of a signed report (indented, newline-ended).
func (s Signed) JSON() ([]byte, error) {
	return indented(s)
}

func indented(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return append(b, '\n'), nil
}

// Verified is what VerifyReport found in an intact report: whose account it
// describes and which key signed it. It says nothing about whether that
// key is one the reader trusts: see CheckSigner.
type Verified struct {
	Format    int            `json:"format"`
	Tenant    silo.AccountID `json:"tenant"`
	Name      string         `json:"name"`
	Generated time.Time      `json:"generated"`
	// PublicKey is the signing key as the report carries it (base64), and
	// Signer its fingerprint.
	PublicKey string `json:"public_key"`
	Signer    string `json:"signer"`
	// Report is the content of a report in the current format; nil for
	// older formats.
	Report *Report `json:"-"`
}

// VerifyReport checks a report in JSON or HTML form for integrity: the
// signature over its content by the key the report carries, and that the
// file is exactly what silo produced from that content, so that any edit of
// any byte is detected. Reports of format 1 and 2 are read.
//
// Integrity alone does not say who signed: anyone can make a report that
// verifies with a key of their own. Call CheckSigner with a key obtained
// apart from the report.
//
// # Errors
//
// CodeFailedCheck with one sentence saying what is wrong.
func VerifyReport(data []byte) (Verified, error) {
	isJSON := strings.HasPrefix(strings.TrimSpace(string(data)), "{")
	embedded := data
	if !isJSON {
		var err error
		if embedded, err = embeddedJSON(data); err != nil {
			return Verified{}, err
		}
	}
	var head struct {
		Report struct {
			Format int `json:"format"`
		} `json:"report"`
	}
	if err := json.Unmarshal(embedded, &head); err != nil {
		return Verified{}, notAReport(err)
	}
	switch head.Report.Format {
	case 1:
		var s signedV1
		if err := strictDecode(embedded, &s); err != nil {
			return Verified{}, err
		}
		if err := checkSignature(s.Report.PublicKey, s.Signature, s.Report); err != nil {
			return Verified{}, err
		}
		render := s.html
		if isJSON {
			render = func() ([]byte, error) { return indented(s) }
		}
		if err := sameBytes(render, data, isJSON); err != nil {
			return Verified{}, err
		}
		r := s.Report
		return Verified{Format: 1, Tenant: r.Tenant, Name: r.Name, Generated: r.Generated, PublicKey: r.PublicKey, Signer: KeyFingerprint(r.PublicKey)}, nil
	case 2, 3, FormatVersion:
		var s Signed
		if err := strictDecode(embedded, &s); err != nil {
			return Verified{}, err
		}
		// Format 2 did not state the audit log's state; formats 3 and
		// later always do.
		if s.Report.Format == 2 && s.Report.Audit != nil {
			return Verified{}, silo.Errorf(silo.CodeFailedCheck, "the report has format 2 but states the audit log's state, which format 2 did not; it was made to mislead")
		}
		if s.Report.Format >= 3 && s.Report.Audit == nil {
			return Verified{}, silo.Errorf(silo.CodeFailedCheck, "the report has format %d but does not state the audit log's state; it was made to mislead", s.Report.Format)
		}
		if err := checkSignature(s.Report.PublicKey, s.Signature, s.Report); err != nil {
			return Verified{}, err
		}
		if s.Report.Signer != KeyFingerprint(s.Report.PublicKey) {
			return Verified{}, silo.Errorf(silo.CodeFailedCheck, "the report names signer %s but carries another key; it was made to mislead", s.Report.Signer)
		}
		render := s.HTML
		if isJSON {
			render = s.JSON
		}
		if err := sameBytes(render, data, isJSON); err != nil {
			return Verified{}, err
		}
		r := s.Report
		return Verified{Format: r.Format, Tenant: r.Tenant, Name: r.Name, Generated: r.Generated, PublicKey: r.PublicKey, Signer: r.Signer, Report: &r}, nil
	}
	return Verified{}, silo.Errorf(silo.CodeFailedCheck, "the report has format %d; this silo reads formats 1 to %d", head.Report.Format, FormatVersion)
}

// CheckSigner checks that v was signed by one of the trusted keys, given as
// fingerprints (see Fingerprint and ParsePin). It returns the fingerprint
// that matched.
//
// # Errors
//
// CodeFailedCheck when none matches; CodeInvalid when trusted is empty.
func CheckSigner(v Verified, trusted []string) (string, error) {
	if len(trusted) == 0 {
		return "", silo.Errorf(silo.CodeInvalid, "no trusted key to compare the report's signer with")
	}
	for _, fp := range trusted {
		if fp == v.Signer {
			return fp, nil
		}
	}
	return "", silo.Errorf(silo.CodeFailedCheck, "the report is intact but was signed by key %s, which is not the key you trust (%s); do not rely on it", v.Signer, strings.Join(trusted, ", "))
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return notAReport(err)
	}
	return nil
}

// notAReport is the one sentence for a report that does not decode, in
// silo's words (internal/jsonerr), never the decoder's.
func notAReport(err error) error {
	why := jsonerr.Describe(err)
	if f, ok := jsonerr.UnknownField(err); ok {
		why = fmt.Sprintf("it has a field %s that no silo report format has", f)
	}
	return &silo.Error{Code: silo.CodeFailedCheck, Err: err, Message: "the report is not a silo isolation report: " + why + "; it was damaged or edited, or is another kind of file"}
}

func checkSignature(pubB64, sigB64 string, content any) error {
	pub, err := base64.StdEncoding.DecodeString(pubB64)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return silo.Errorf(silo.CodeFailedCheck, "the report carries no valid public key; it was damaged or edited")
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return silo.Errorf(silo.CodeFailedCheck, "the report's signature is unreadable; it was damaged or edited")
	}
	b, err := json.Marshal(content)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if !ed25519.Verify(pub, b, sig) {
		return silo.Errorf(silo.CodeFailedCheck, "the report's signature does not match its content; it was changed after it was signed")
	}
	return nil
}

func sameBytes(render func() ([]byte, error), data []byte, isJSON bool) error {
	want, err := render()
	if err != nil {
		return err
	}
	if bytes.Equal(want, data) {
		return nil
	}
	if isJSON {
		return silo.Errorf(silo.CodeFailedCheck, "the report file differs from what silo signed (it was edited or reformatted)")
	}
	return silo.Errorf(silo.CodeFailedCheck, "the visible page differs from the signed report it carries (the HTML was edited)")
}
