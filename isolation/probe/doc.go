// Package probe is silo's live probe suite (silo verify --probe): it attacks
// a running deployment and reports attempts (accesses that must fail) against
// controls (accesses that must succeed). Every attempt is paired with a
// control on the same surface, so a harness that can see nothing cannot
// pass: a run whose controls fail is itself a failure (Report.OK).
//
// Run creates two throwaway environment accounts, A and B, and deploys to
// each only the probe function (testdata/probe, a Go sdk/fn guest) with a
// table, a bucket, config and a secret; it plants random markers in both,
// then attacks the surfaces below:
//
//   - gateway: over real HTTP, written byte for byte (no client-side
//     cleaning): A's key on B by host and by path, in Authorization and
//     X-Api-Key; host confusion (case, trailing dot, ports, foreign and
//     nested domains, host and /t/ path disagreeing, X-Forwarded-Host,
//     Forwarded); path confusion ("..", %2e%2e, ..%2f, "//", encoded
//     slashes and backslashes); no, revoked and malformed keys; a suspended
//     tenant. Controls: each key on its own tenant in every form.
//
//   - host-calls: A's function names B's table, bucket, config, secret and
//     the exports through every host call (kv get/put/delete/scan, blob
//     get/put/delete/list, config, secret, export get/scan) with the
//     traversal corpus, as resource names and as object keys. A read
//     succeeds as an attack if one of B's markers comes back; a write if
//     its value turns up in B (read back through B's own function) or
//     production; a delete if B's planted keys are gone. Controls: A reads
//     and writes its own resources.
//
//   - tenant-to-production: A writes production tables, export tables and
//     buckets by name and traversal. Control: A reads the exports.
//
//   - production-to-tenants: the guest runs in the production account as a
//     function granted, by name, every tenant name of the corpus, through
//     the real decision point and guarded host (production is not reachable
//     through the gateway). Controls: it reads production's own tables.
//
//   - residue: A's instance leaves a marker in a global and on its heap; B's
//     and production's instances of the same module must not see it (nor
//     find it in fresh memory); A's next warm invocation does. Then A's
//     instance is closed and B's next instance starts on the memory it
//     left (the runtime recycles memories, zeroed): it must find nothing.
//
//   - hostile-modules: in a throwaway account of its own, it deploys
//     modules (written byte by byte, no toolchain) declaring 256 full-size
//     tables, 256 element segments of 5,000 references, or 800,000
//     globals: what would make the host allocate 68 MiB or more outside
//     the linear memory at every instantiation. Each must be refused at
//     deploy; they are never invoked. Controls: the same constructions
//     within the runtime's per-instance budget deploy and answer through
//     the gateway.
//
//   - deletion: in another throwaway account, D, it writes canaries into
//     D's table, bucket and log (through D's function) and secret (through
//     the control plane), and reads them back as D (controls). Then it
//     deletes D: the provider must neither list it nor hold its resources,
//     the control plane's teardown check must find nothing, its log must
//     read back empty and its log file be gone from disk (records sealed
//     under the destroyed key do not read back, so reading alone cannot
//     tell), and its key must be refused. An account re-created with the
//     same ID must find no canary through any read, no old line in its log,
//     and refuse the old key; its own fresh values, secret and log line read
//     back (controls).
//
//   - report: it fetches A's signed isolation report (Target.Report) and
//     forges copies claiming to be B's: edited with the genuine signature
//     kept; re-signed with a key of the forger's own that it embeds;
//     re-signed carrying the installation's key; carrying the forger's key
//     but naming the installation's fingerprint as signer. The report
//     verifier (report.VerifyReport, then report.CheckSigner against the
//     published keys, Target.ReportKeys) must refuse each, and say "not
//     checked", never trusted, when no key is pinned. Controls: the genuine
//     report verifies and its signer is a published key; the self-signed
//     forgery is intact by itself, so its refusal comes from the key
//     comparison.
//
// Finally every probe account is deleted and verified gone (the teardown
// surface), also when the run fails; as environment accounts with a TTL
// they are reaped should even that fail.
//
// It imports the root silo package, the control, engine, isolation,
// isolation/report, logs, provider, runtime and store packages and
// internal/build. It must not
// import platform (Control is satisfied by *platform.Platform), the gateway
// or any store or provider implementation outside tests.
package probe
