package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/isolation/report"
)

// exitUnpinned is the exit status of silo report verify when the report is
// intact but no trusted key was given, so who signed it was not checked.
const exitUnpinned = 3

func newReportCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "report TENANT",
		Short: "Write a tenant's signed isolation report (HTML or JSON) to stdout",
		Long: `silo report writes the isolation report of one tenant: in plain language, what lives in
its account, who can reach it, what it reads from the shared production account, how its secrets
are encrypted (the data key's fingerprint, never the key), when isolation was last proved and
probed, and the release it runs. It proves the fleet first, so the report is current. It speaks of
that tenant's account and the shared production account only, never of other tenants or how
many there are.

The report is signed with this installation's ed25519 key (created on first use in the data dir,
mode 0600) and names that key's fingerprint. A customer checks it with
silo report verify FILE --key FINGERPRINT, against the fingerprint you publish: print it with
silo report key and put it on your trust page. With --server the server proves its fleet and
signs the report with its own key.`,
		Example: `  silo report acme > acme-isolation.html
  silo report acme --format json > acme-isolation.json
  silo report key > report-signing-key.pem      # publish this (and its fingerprint)
  silo report verify acme-isolation.html --key report-signing-key.pem`,
		Args: exactArgs(1, "a tenant ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format == "" {
				format = "html"
				if g.json() {
					format = "json"
				}
			}
			if format != "html" && format != "json" {
				return usageError{fmt.Sprintf("--format must be html or json, not %q", format)}
			}
			ctx := cmd.Context()
			id, err := silo.ParseID(args[0])
			if err != nil {
				return err
			}
			api, done, err := openAPI(ctx, g)
			if err != nil {
				return err
			}
			defer done()
			out, err := api.Report(ctx, id, format)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "html or json (default html, or json with --output json)")
	cmd.AddCommand(newReportVerifyCmd(g), newReportKeyCmd(g))
	return cmd
}

func newReportVerifyCmd(g *globals) *cobra.Command {
	var pin string
	cmd := &cobra.Command{
		Use:   "verify FILE --key FINGERPRINT|KEYFILE|URL",
		Short: "Check a signed isolation report (HTML or JSON): intact, and signed by the key you trust",
		Long: `silo report verify checks that a report was not changed after it was signed (its signature,
and that every byte of the file is what silo produced) and that it was signed by the key you
trust, given with --key as:

  FINGERPRINT  the key's SHA-256 fingerprint, 64 hex digits (silo report key prints it)
  KEYFILE      a file of PEM public keys, as silo report key prints (current and retired keys)
  URL          an https:// address serving such a file (http:// only on the loopback interface)

Get the key from the installation's operator through another channel than the report, for
example their trust page. A report names the key that signed it, but anyone can make a report
that names any key and verifies with it; only the key you got yourself tells you who signed.
The command never reads keys from the data dir or the current directory by itself.

Exit status: 0 the report is intact and signed by the key you gave; 1 it is not intact, or it
was signed by another key; 2 the call was wrong: the report file cannot be read, or --key gives
no key (not a fingerprint nor a readable key file, a URL that is not https, cannot be fetched or
does not serve a key); 3 it is intact but you gave no --key,
so who signed it was not checked (an outcome, not an error: the result is on stdout, with
"signer_checked": false in JSON, and nothing on stderr). Use - to read the report from stdin.`,
		Example: `  silo report verify acme-isolation.html --key 3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29
  silo report verify acme-isolation.html --key report-signing-key.pem
  silo report verify acme-isolation.json --key https://example.com/.well-known/silo-report-key.pem`,
		Args: exactArgs(1, "a report file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(g.stdin)
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return usageError{fmt.Sprintf("cannot read report %s: %v", args[0], durable.Cause(err))}
			}
			var trusted []string
			if pin != "" {
				// A --key that gives no key is a wrong call (exit 2), never
				// the exit 1 of a report that fails its check.
				if trusted, err = loadPin(cmd.Context(), pin); err != nil {
					return usageError{silo.UserMessage(err)}
				}
			}
			v, err := report.VerifyReport(data)
			if err != nil {
				return err
			}
			out := map[string]any{"valid": true, "tenant": v.Tenant, "generated": v.Generated, "signer": v.Signer, "signer_checked": false}
			if pin == "" {
				if err := g.print(out, func(w io.Writer) {
					fmt.Fprintf(w, "intact: isolation report of %s (%s), generated %s\n", v.Name, v.Tenant, v.Generated.Format(time.RFC3339))
					fmt.Fprintf(w, "the report says it was signed by key %s\n", v.Signer)
					fmt.Fprintf(w, "NOT CHECKED: who signed it. Anyone can make a report that verifies with a key of their own.\n")
					fmt.Fprintf(w, "Get the signer's fingerprint from the operator (their trust page) and run: silo report verify FILE --key FINGERPRINT\n")
				}); err != nil {
					return err
				}
				// An outcome, not an error: the result is on stdout (with
				// --output json, "signer_checked": false), stderr stays empty.
				return statusError{code: exitUnpinned, outcome: true}
			}
			if _, err := report.CheckSigner(v, trusted); err != nil {
				return err
			}
			out["signer_checked"] = true
			return g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "intact and signed by the key you gave: isolation report of %s (%s), generated %s\n", v.Name, v.Tenant, v.Generated.Format(time.RFC3339))
				fmt.Fprintf(w, "signed by key %s\n", v.Signer)
			})
		},
	}
	cmd.Flags().StringVar(&pin, "key", "", "the key you trust: its fingerprint, a PEM public key file, or an https URL serving one")
	return cmd
}

// maxKeyFile bounds a fetched or read key file.
const maxKeyFile = 64 << 10

// loadPin returns the fingerprints of the keys named by --key: a
// fingerprint, a key file or a URL.
func loadPin(ctx context.Context, src string) ([]string, error) {
	if fps, err := report.ParsePin([]byte(src)); err == nil {
		return fps, nil
	}
	var data []byte
	if strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://") {
		b, err := fetchKey(ctx, src)
		if err != nil {
			return nil, err
		}
		data = b
	} else {
		f, err := os.Open(src)
		if err != nil {
			return nil, silo.Errorf(silo.CodeInvalid, "--key %s is neither a fingerprint (64 hex digits) nor a readable key file: %v", src, durable.Cause(err))
		}
		defer f.Close()
		if data, err = io.ReadAll(io.LimitReader(f, maxKeyFile+1)); err != nil {
			return nil, silo.Errorf(silo.CodeInvalid, "cannot read key file %s: %v", src, durable.Cause(err))
		}
	}
	if len(data) > maxKeyFile {
		return nil, silo.Errorf(silo.CodeInvalid, "the key at %s is larger than %d bytes; it is not a key file", src, maxKeyFile)
	}
	fps, err := report.ParsePin(data)
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "the key at %s: %s", src, silo.UserMessage(err))
	}
	return fps, nil
}

// fetchKey gets a key file over https, or over http from a loopback
// address only (plain http from elsewhere could be altered on the way).
func fetchKey(ctx context.Context, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, silo.Errorf(silo.CodeInvalid, "--key %s is not a valid URL", raw)
	}
	if u.Scheme == "http" {
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, silo.Errorf(silo.CodeInvalid, "--key %s uses plain http, which anyone on the way could alter; use the https address", raw)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "--key %s is not a valid URL", raw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, keyFetchError(raw, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, silo.Errorf(silo.CodeUnavailable, "fetching the key from %s answered %s", raw, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyFile+1))
	if err != nil {
		return nil, silo.Errorf(silo.CodeUnavailable, "cannot fetch the key from %s: %v", raw, err)
	}
	return b, nil
}

// keyFetchError is the one sentence for a key fetch that got no answer:
// why, in the reader's terms rather than the HTTP client's.
func keyFetchError(raw string, err error) error {
	var (
		cert *tls.CertificateVerificationError
		dns  *net.DNSError
		why  string
	)
	switch {
	case errors.Is(err, http.ErrSchemeMismatch):
		why = "the server there answers plain http, not https; give the address it serves over https (plain http is accepted from this machine only)"
	case errors.Is(err, context.DeadlineExceeded):
		why = "no answer within 15 seconds"
	case errors.As(err, &cert):
		why = "its certificate is not one this machine trusts"
	case errors.As(err, &dns):
		why = "its host name is not known"
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "nothing listens at that address"
	default:
		why = rootCause(err)
	}
	return silo.Errorf(silo.CodeUnavailable, "cannot fetch the key from %s: %s; check the address, or pass the key file or fingerprint the installation publishes", raw, why)
}

func newReportKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Print the public keys that check this installation's reports, with their fingerprints",
		Long: `silo report key prints, as PEM, the public key this installation signs isolation reports with,
followed by the keys it signed with before (retired by silo report key rotate), each after a
comment line with its fingerprint. Publish this file, or at least the first fingerprint, where
customers can get it apart from any report: your trust page, or your security team. Customers
check a report with silo report verify FILE --key FINGERPRINT|KEYFILE|URL.

With --server it prints the keys of the server's installation.`,
		Example: `  silo report key > report-signing-key.pem
  silo report key --output json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pemText []byte
			c, err := remote(g)
			if err != nil {
				return err
			}
			if c != nil {
				if pemText, err = c.ReportKey(cmd.Context()); err != nil {
					return err
				}
			} else {
				if err := needDataDir(g); err != nil {
					return err
				}
				keys, err := report.PublishedKeys(g.dataDir)
				if err != nil {
					return err
				}
				pemText = report.PublicPEM(keys...)
			}
			fps, err := report.ParsePin(pemText)
			if err != nil {
				return err
			}
			return g.print(map[string]any{"fingerprint": fps[0], "retired": fps[1:], "pem": string(pemText)}, func(w io.Writer) {
				w.Write(pemText)
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Replace the report signing key; reports signed before keep verifying against the old key",
		Long: `silo report key rotate makes a new report signing key. The old public key is kept (and printed
by silo report key after the new one), its private part is destroyed, so reports signed before
keep verifying against it. Publish the new key before you hand out reports signed with it. It
works on the local data dir and refuses while silo up or silo server serves it.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := localOnly(g, "run silo report key rotate on the server's host, with the server stopped"); err != nil {
				return err
			}
			if err := notServed(g, "the server keeps the key it started with: stop that process first"); err != nil {
				return err
			}
			if err := needDataDir(g); err != nil {
				return err
			}
			old, nu, err := report.RotateKey(g.dataDir)
			if err != nil {
				return err
			}
			return g.print(map[string]any{"old": report.Fingerprint(old), "new": report.Fingerprint(nu)}, func(w io.Writer) {
				fmt.Fprintf(w, "report signing key rotated: %s → %s\n", report.Fingerprint(old), report.Fingerprint(nu))
				fmt.Fprintf(w, "publish the new key (silo report key); reports signed with the old key keep verifying against it\n")
			})
		},
	}
	cmd.AddCommand(rotate)
	return cmd
}

// needDataDir fails unless the data dir exists: the report key commands
// work on an installation and never create one.
func needDataDir(g *globals) error {
	if fi, err := os.Stat(g.dataDir); err != nil || !fi.IsDir() {
		return silo.Errorf(silo.CodeNotFound, "no silo installation at %s; pass --data-dir or set $SILO_DATA_DIR", g.dataDir)
	}
	return nil
}
