package store

import (
	silo "github.com/silo-run/silo"
)

// This file holds what the store knows of where a release came from
// (Release.Origin): the kinds of origin, how storing a release again
// upgrades its origin, and the rule for a developer's builds (checkDev,
// part of CheckShip).

// The kinds of a release's origin (Origin.Kind).
const (
	// OriginDeploy: built to be shipped, by silo deploy, silo apply or
	// silo up, or uploaded to a server.
	OriginDeploy = "deploy"
	// OriginBuild: built by silo build (or by silo plan, to plan it) from
	// the spec file Origin.From.
	OriginBuild = "build"
	// OriginDev: built by silo dev for the developer account Origin.From;
	// it runs only in developer accounts (CheckShip).
	OriginDev = "dev"
)

// Origin says how a release came to be stored. A release stored before
// origins were recorded has none (the zero Origin).
type Origin struct {
	Kind string `json:"kind"`           // OriginDeploy, OriginBuild or OriginDev
	From string `json:"from,omitempty"` // the spec file of a build, the account of a dev build
}

// DevOrigin is the origin of a build of silo dev for developer account id.
func DevOrigin(id silo.AccountID) Origin { return Origin{Kind: OriginDev, From: string(id)} }

// String describes o in a few words: "deploy", "build of other.yaml",
// "dev build for dev-alice", "unrecorded".
func (o Origin) String() string {
	switch o.Kind {
	case "":
		return "unrecorded"
	case OriginBuild:
		return "build of " + o.From
	case OriginDev:
		return "dev build for " + o.From
	}
	return o.Kind
}

// DevOnly reports whether o marks a developer's build that nothing else
// stored: silo dev's.
func (o Origin) DevOnly() bool { return o.Kind == OriginDev }

// originRank orders the kinds of origin: a release stored again with an
// origin of a higher rank takes it (Replaces).
var originRank = map[string]int{OriginDev: 0, "": 1, OriginBuild: 2, OriginDeploy: 3}

// Replaces returns the kinds of origin o replaces when a release stored
// with one of them is stored again with o: those ranked below it, in the
// order dev, unrecorded, build, deploy. Releases are content-addressed, so
// a silo dev build of the sources that silo deploy builds is the same
// release: deploying (or building) it clears its dev-only mark, while a
// dev build of a release stored otherwise leaves its origin as it was.
func (o Origin) Replaces() []string {
	r, ok := originRank[o.Kind]
	if !ok {
		return nil
	}
	var out []string
	for _, k := range []string{OriginDev, "", OriginBuild, OriginDeploy} {
		if originRank[k] < r {
			out = append(out, k)
		}
	}
	return out
}

// CheckOrigin reports, as a silo.CodeInvalid error, an origin of an
// unknown kind.
func CheckOrigin(o Origin) error {
	if _, ok := originRank[o.Kind]; !ok {
		return silo.Errorf(silo.CodeInvalid, "release origin %q is not one of deploy, build, dev", o.Kind)
	}
	return nil
}

// checkDev is CheckShip's rule for a developer's build: a release only
// silo dev stored (Origin.DevOnly) runs only in developer accounts; it is
// never made current or rolled out.
func checkDev(rel Release, to *silo.Account) error {
	if !rel.Origin.DevOnly() || to != nil && to.Kind == silo.KindDeveloper {
		return nil
	}
	what := "made current or rolled out"
	if to != nil {
		what = "applied to account " + string(to.ID)
	}
	return silo.Errorf(silo.CodeInvalid, "release %s is a developer's build from silo dev of %s, not a release of the project; it cannot be %s. Deploy from the project instead: silo deploy in the directory holding silo.yaml builds it and records it as a release", rel.ID, rel.Origin.From, what)
}
