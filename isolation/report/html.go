package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"

	silo "github.com/silo-run/silo"
)

const (
	scriptOpen  = `<script type="application/json" id="silo-signed-report">`
	scriptClose = `</script>`
)

// breakable escapes s for HTML and lets the browser wrap it after the
// punctuation that separates its parts, so a long provenance such as
// "silo.yaml functions.ingest.tables.findings" wraps between parts, never
// inside a word.
func breakable(s string) template.HTML {
	var b strings.Builder
	for _, r := range s {
		b.WriteString(template.HTMLEscapeString(string(r)))
		switch r {
		case '.', '/', ':', ',', '_', '-', '=', '[', '(':
			b.WriteString("<wbr>")
		}
	}
	return template.HTML(b.String())
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"day": day,
	"join": func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ", ")
	},
	"breakable": breakable,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Isolation report: {{.R.Name}}</title>
<style>
body { font-family: Georgia, "Times New Roman", serif; color: #1a1a1a; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #bbb; padding-bottom: 0.2rem; margin-top: 2rem; }
.sub { color: #555; margin-top: 0; }
ul.summary li, ol li, dl dd { margin-bottom: 0.5rem; }
dl dt { font-weight: bold; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; }
th, td { text-align: left; vertical-align: top; padding: 0.3rem 0.5rem; border-bottom: 1px solid #ddd; }
th { background: #f3f3f3; }
code { font-family: "DejaVu Sans Mono", Menlo, monospace; font-size: 0.85rem; }
code.hex { word-break: break-all; }
td.origin code { word-break: normal; overflow-wrap: normal; }
.ok { color: #17602a; font-weight: bold; }
.bad { color: #a11b1b; font-weight: bold; }
.warn { color: #7a5200; font-weight: bold; }
footer { margin-top: 2.5rem; font-size: 0.85rem; color: #444; border-top: 1px solid #bbb; padding-top: 0.6rem; }
@media print { body { margin: 0; max-width: none; } h2 { page-break-after: avoid; } table { page-break-inside: avoid; } }
</style>
</head>
<body>
<h1>Isolation report: {{.R.Name}}</h1>
<p class="sub">Account <code>{{.R.Tenant}}</code> · generated {{day .R.Generated}} · release <code>{{.R.Release}}</code></p>

<h2>In short</h2>
<ul class="summary">
{{- range .R.Summary}}
<li>{{.}}</li>
{{- end}}
</ul>

<h2>What lives in your account</h2>
<table>
<tr><th>Kind</th><th>Names</th></tr>
<tr><td>Tables</td><td>{{join .R.Contents.Tables}}</td></tr>
<tr><td>Storage buckets</td><td>{{join .R.Contents.Buckets}}</td></tr>
<tr><td>Configuration values</td><td>{{join .R.Contents.Config}}</td></tr>
<tr><td>Secrets (names only)</td><td>{{join .R.Contents.Secrets}}</td></tr>
<tr><td>Functions</td><td>{{join .R.Contents.Functions}}</td></tr>
<tr><td>Web routes</td><td>{{join .R.Contents.Routes}}</td></tr>
</table>

<h2>Who can reach it</h2>
<p>Only the following can reach anything in your account. Each line says why.</p>
<table>
<tr><th>Who</th><th>Can</th><th>Because of</th></tr>
{{- range .R.Access}}
<tr><td>{{.Who}}</td><td>{{.Can}}</td><td class="origin"><code>{{breakable .Origin}}</code></td></tr>
{{- end}}
</table>

<h2>What you read from the shared account</h2>
{{- if .R.Shared}}
<table>
<tr><th>Shared resource</th><th>Read by</th><th>Access</th></tr>
{{- range .R.Shared}}
<tr><td>{{.Export}}</td><td>{{join .ReadBy}}</td><td>{{.Mode}}</td></tr>
{{- end}}
</table>
{{- else}}
<p>Nothing.</p>
{{- end}}

<h2>{{if lt .R.Format 4}}How your secrets are encrypted{{else}}How your data is encrypted{{end}}</h2>
<table>
<tr><td>Method</td><td>{{.R.Encryption.Algorithm}}</td></tr>
<tr><td>Data key fingerprint</td><td><code class="hex">{{.R.Encryption.Fingerprint}}</code></td></tr>
<tr><td>Data key protected by</td><td>{{.R.Encryption.WrappedBy}}</td></tr>
</table>

<h2>The rules that are checked</h2>
<dl>
<dt>I1 · Your data is yours</dt>
<dd>{{if lt .R.Format 4}}Only your own functions and your own API keys can read or change what is in your account. They can also read, never change, what the shared production account publishes for every customer.{{else}}Only your API keys and the code your provider deploys to your account can read or change what is in your account; that code can also read, never change, what the shared production account publishes for every customer.{{end}}</dd>
<dt>I2 · The shared account cannot reach you</dt>
<dd>Nothing in the shared production account can read or change anything in your account or any other customer's.</dd>
<dt>I3 · Operators manage, they do not read</dt>
<dd>The operators' control plane creates, updates and deletes your account, deploys to it and issues its keys, but none of its operations returns your data, and your secrets can be written through it but never read back.</dd>
<dt>I4 · Your keys work for you only</dt>
<dd>An API key works for one account only; a key of another customer is refused on yours, and yours on theirs.</dd>
<dt>I5 · Deletion is final</dt>
<dd>Deleting your account destroys the key your data is encrypted under and deletes the rest, so it cannot be recovered, and a new account with the same name inherits nothing.</dd>
</dl>

<h2>Proof and probes</h2>
<table>
<tr><td>Last proof</td><td>{{if eq (print .R.Proof.Status) "proved"}}<span class="ok">proved</span>: every rule above held{{else if eq (print .R.Proof.Status) "violated"}}<span class="bad">not proved</span>: problems found{{else}}<span class="warn">incomplete</span>: the proof could not be completed{{end}}, on {{day .R.Proof.At}}</td></tr>
{{- range .R.Proof.Counterexamples}}
<tr><td>Problem involving your account</td><td class="bad">{{.}}</td></tr>
{{- end}}
<tr><td>Last live probe</td><td>{{with .R.Probe}}{{if .At}}{{if eq .Status "passed"}}<span class="ok">passed</span>{{else if eq .Status "breached"}}<span class="bad">breached</span>{{else}}<span class="warn">{{.Status}}</span>{{end}} on {{day .At}}: {{.Attempts}} attempts to cross accounts, {{.Breaches}} succeeded; {{.Controls}} control checks, {{.ControlsFailed}} failed{{if .NotApplicable}}; {{.NotApplicable}} did not apply{{end}}{{else}}not run{{end}}{{end}}</td></tr>
{{- with .R.Audit}}
<tr><td>Operators' audit log</td><td>{{if .Intact}}<span class="ok">intact</span>: verified up to its last recorded entry{{else}}<span class="bad">NOT intact</span>: the check of its hash chain failed{{end}}</td></tr>
{{- end}}
</table>
<p>The proof reads every permission recorded for every account and checks each rule above against all of them. The live probes attack a running installation from two throwaway accounts: each attempt tries to reach the other account's data, and each control check is an access that must work, to show the probes can see; a failed control check means the probes could not check something, not that anything was reached.</p>

<h2>What this report does not cover</h2>
<ul>
<li>Anyone with administrator (root) access to the machines or cloud accounts silo runs on, or to its master key: they can read data and change silo itself.</li>
<li>What the functions in your account do with your data, and anyone who holds one of your API keys. Your provider's operators choose the code deployed to your account and can issue keys for it; this report lists the functions and keys as they were when it was generated, and the operators' actions are recorded in their audit log.</li>
<li>The software silo is built on (the operating system, the Go runtime, the WebAssembly engine, the cloud provider): a flaw there is outside what these checks can see.</li>
<li>Attacks the probes do not try: denial of service, timing side channels, and any surface not listed in the probe suite.</li>
<li>Anything after {{day .R.Generated}}: the report describes the installation as it was then.</li>
</ul>

<h2>How to check this report</h2>
<ol>
<li>Get the signing key's fingerprint from your provider through a channel other than this file, for example their trust page or their security team. This report says it was signed by the key with fingerprint <code class="hex">{{.R.Signer}}</code>; that claim alone proves nothing, because anyone can make a report that names any key.</li>
<li>Run <code>silo report verify FILE --key FINGERPRINT</code> (silo is open source), with the fingerprint from step 1, or with the public key file or https address your provider publishes.</li>
<li>Rely on the report only if it answers that the report is intact and signed by the key you gave. Without --key it only checks that the file is consistent with itself, says so, and exits with status 3.</li>
</ol>

<footer>
<p>Signed by the silo installation that produced it with ed25519 key <code class="hex">{{.R.Signer}}</code> (SHA-256 fingerprint of the public key).</p>
</footer>
` + scriptOpen + `{{.Embedded}}` + scriptClose + `
</body>
</html>
`))

// HTML returns the printable page of a signed report. It is a pure function
// of s: the same report always renders to the same bytes, which is what
// VerifyReport relies on. The signed report is embedded in a
// <script type="application/json"> block.
func (s Signed) HTML() ([]byte, error) {
	emb, err := json.Marshal(s) // escapes <, > and &, so it cannot close the script
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	var buf bytes.Buffer
	err = page.Execute(&buf, struct {
		R        Report
		Embedded template.JS
	}{s.Report, template.JS(emb)})
	if err != nil {
		return nil, fmt.Errorf("render report: %w", err)
	}
	return buf.Bytes(), nil
}

// embeddedJSON returns the signed report a page carries.
func embeddedJSON(data []byte) ([]byte, error) {
	s := string(data)
	i := strings.Index(s, scriptOpen)
	if i < 0 {
		return nil, silo.Errorf(silo.CodeFailedCheck, "the page carries no signed report; it is not a silo isolation report or it was edited")
	}
	rest := s[i+len(scriptOpen):]
	j := strings.Index(rest, scriptClose)
	if j < 0 {
		return nil, silo.Errorf(silo.CodeFailedCheck, "the page's signed report is cut off; it was edited")
	}
	return []byte(rest[:j]), nil
}
