package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
)

// Format 1 reports, issued before format 2, keep verifying: their content
// type and page template are kept here unchanged, because a report is
// checked by rendering its content again and comparing every byte.

type reportV1 struct {
	Format     int            `json:"format"`
	Tenant     silo.AccountID `json:"tenant"`
	Name       string         `json:"name"`
	Kind       silo.Kind      `json:"kind"`
	State      silo.State     `json:"state"`
	Release    string         `json:"release"`
	Generated  time.Time      `json:"generated"`
	Summary    []string       `json:"summary"`
	Contents   Contents       `json:"contents"`
	Access     []Access       `json:"access"`
	Shared     []Shared       `json:"shared"`
	Encryption Encryption     `json:"encryption"`
	Proof      proofV1        `json:"proof"`
	Probe      probeV1        `json:"probe"`
	PublicKey  string         `json:"public_key"`
}

type proofV1 struct {
	Status          isolation.Status `json:"status"`
	At              time.Time        `json:"at"`
	Accounts        int              `json:"accounts"`
	Edges           int              `json:"edges"`
	Violations      int              `json:"violations"`
	Counterexamples []string         `json:"counterexamples"`
}

type probeV1 struct {
	Status   string     `json:"status"`
	At       *time.Time `json:"at"`
	Attempts int        `json:"attempts"`
	Controls int        `json:"controls"`
}

type signedV1 struct {
	Report    reportV1 `json:"report"`
	Signature string   `json:"signature"`
}

var pageV1 = template.Must(template.New("report-v1").Funcs(template.FuncMap{
	"day": day,
	"join": func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ", ")
	},
	"fp":    KeyFingerprint,
	"empty": func(s []string) bool { return len(s) == 0 },
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
ul.summary li { margin-bottom: 0.5rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; }
th, td { text-align: left; vertical-align: top; padding: 0.3rem 0.5rem; border-bottom: 1px solid #ddd; }
th { background: #f3f3f3; }
code { font-family: "DejaVu Sans Mono", Menlo, monospace; font-size: 0.85rem; word-break: break-all; }
.ok { color: #17602a; font-weight: bold; }
.bad { color: #a11b1b; font-weight: bold; }
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
<tr><td>{{.Who}}</td><td>{{.Can}}</td><td><code>{{.Origin}}</code></td></tr>
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

<h2>How your secrets are encrypted</h2>
<table>
<tr><td>Method</td><td>{{.R.Encryption.Algorithm}}</td></tr>
<tr><td>Data key fingerprint</td><td><code>{{.R.Encryption.Fingerprint}}</code></td></tr>
<tr><td>Data key protected by</td><td>{{.R.Encryption.WrappedBy}}</td></tr>
</table>

<h2>Proof and probes</h2>
<table>
<tr><td>Last proof</td><td>{{if eq (print .R.Proof.Status) "proved"}}<span class="ok">proved</span>{{else}}<span class="bad">{{.R.Proof.Status}}</span>{{end}} on {{day .R.Proof.At}}, over {{.R.Proof.Accounts}} accounts and {{.R.Proof.Edges}} access paths</td></tr>
{{- range .R.Proof.Counterexamples}}
<tr><td>Problem</td><td class="bad">{{.}}</td></tr>
{{- end}}
<tr><td>Last live probe</td><td>{{.R.Probe.Status}}{{if .R.Probe.At}} on {{day .R.Probe.At}}: {{.R.Probe.Attempts}} attacks, {{.R.Probe.Controls}} controls{{end}}</td></tr>
</table>

<footer>
<p>This report is signed by the silo installation that produced it (ed25519 key fingerprint <code>{{fp .R.PublicKey}}</code>). Anyone can check that it was not changed with <code>silo report verify FILE</code>.</p>
</footer>
` + scriptOpen + `{{.Embedded}}` + scriptClose + `
</body>
</html>
`))

func (s signedV1) html() ([]byte, error) {
	emb, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	var buf bytes.Buffer
	err = pageV1.Execute(&buf, struct {
		R        reportV1
		Embedded template.JS
	}{s.Report, template.JS(emb)})
	if err != nil {
		return nil, fmt.Errorf("render report: %w", err)
	}
	return buf.Bytes(), nil
}
