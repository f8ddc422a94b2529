// Package sdk carries the source of the function SDK (package sdk/fn, its
// ABI and its JSON string encoder) inside the silo binary, so that `silo init` can give a project
// outside a silo checkout a module to build its functions against, with no
// download.
//
// It imports only embed; function authors import sdk/fn, never this package.
package sdk

import "embed"

// Source holds sdk/fn, sdk/fn/abi and sdk/jsonstr, rooted at "fn" and
// "jsonstr".
//
//go:embed fn/*.go fn/abi/*.go jsonstr/*.go
var Source embed.FS
