// Package findings is the example SaaS app that silo up runs: a
// security-findings product. Its silo.yaml gives every tenant functions to
// ingest findings (enriched from the threat-intel table that the production
// account exports to all tenants, and marked remediable when the tenant has
// set its github-token secret), list and filter them, and a smoke function
// for rollouts. The functions live in functions/, the shared model in
// internal/finding, the production seed data in seed/.
//
// This package holds only the app's end-to-end tests, which drive it through
// silotest over real HTTP.
package findings
