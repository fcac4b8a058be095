// Package layout knows the directories of a gitxds config repository and who
// owns each: platform/ is the platform team's, teams/<team>/ is <team>'s, and
// an overlay (overlays/<env>/) is the platform's composition of the two.
//
// It is the one place that decides which area a path lies in; the render's
// confinement check and the model's ownership rules both ask it.
package layout

import (
	"path"
	"strings"
)

// Kind of an area of the repository.
type Kind int

const (
	// Other is any directory outside platform/, teams/<team>/ and overlays/.
	Other Kind = iota
	// Platform is a platform/ directory.
	Platform
	// Team is a teams/<team>/ directory.
	Team
	// Overlay is a directory below overlays/.
	Overlay
)

func (k Kind) String() string {
	switch k {
	case Platform:
		return "platform"
	case Team:
		return "team"
	case Overlay:
		return "overlay"
	}
	return "other"
}

// Area is the part of the repository a path lies in.
type Area struct {
	Kind Kind
	// Team is the team's name (Kind Team), e.g. "payments".
	Team string
	// Root is the area's directory relative to the repository root, e.g.
	// "teams/payments" or "repo-layout/platform"; "" for Other.
	Root string
}

// Of returns the area of a path relative to the repository root (a file or
// a directory, slash-separated). The first path element named "platform",
// "teams" or "overlays" decides, so the layout may sit below a directory of
// the repository (repo-layout/teams/payments/...). A path that is absolute or
// leaves the repository is Other.
func Of(p string) Area {
	if p == "" || path.IsAbs(p) {
		return Area{}
	}
	parts := strings.Split(path.Clean(p), "/")
	for i, e := range parts {
		switch e {
		case "..":
			return Area{}
		case "platform":
			return Area{Kind: Platform, Root: strings.Join(parts[:i+1], "/")}
		case "teams":
			if i+1 < len(parts) {
				return Area{Kind: Team, Team: parts[i+1], Root: strings.Join(parts[:i+2], "/")}
			}
			return Area{}
		case "overlays":
			return Area{Kind: Overlay, Root: strings.Join(parts[:i+1], "/")}
		}
	}
	return Area{}
}

// Contains reports whether repository path p lies in the area (is its root
// or below it). Nothing lies in Other.
func (a Area) Contains(p string) bool {
	if a.Root == "" {
		return false
	}
	p = path.Clean(p)
	return p == a.Root || strings.HasPrefix(p, a.Root+"/")
}

// Confined reports whether a kustomization in this area may reach only
// paths inside it: a team's and the platform's may; an overlay may reach the
// whole repository.
func (a Area) Confined() bool { return a.Kind == Platform || a.Kind == Team }

// Dir is how messages name the area: "teams/payments/".
func (a Area) Dir() string { return a.Root + "/" }
