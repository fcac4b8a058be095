package source

import (
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// refLookup returns the commit a full ref name points to (tags peeled).
type refLookup func(plumbing.ReferenceName) (plumbing.Hash, bool)

// refCandidates are the full ref names a name the user wrote may mean, in
// order: "HEAD" and full names as written; otherwise a branch, then a tag,
// then a name under refs/ ("pull/1/head").
func refCandidates(name string) []plumbing.ReferenceName {
	if name == "HEAD" || strings.HasPrefix(name, "refs/") {
		return []plumbing.ReferenceName{plumbing.ReferenceName(name)}
	}
	return []plumbing.ReferenceName{
		plumbing.NewBranchReferenceName(name),
		plumbing.NewTagReferenceName(name),
		plumbing.ReferenceName("refs/" + name),
	}
}

// matchRef finds the ref name means and the commit it points to.
func matchRef(lookup refLookup, name string) (plumbing.ReferenceName, plumbing.Hash, bool) {
	for _, c := range refCandidates(name) {
		if h, ok := lookup(c); ok {
			return c, h, true
		}
	}
	return "", plumbing.ZeroHash, false
}

// localRefs looks refs up in a repository on disk.
func localRefs(repo *git.Repository) refLookup {
	return func(name plumbing.ReferenceName) (plumbing.Hash, bool) {
		ref, err := repo.Reference(name, true)
		if err != nil {
			return plumbing.ZeroHash, false
		}
		h, err := peel(repo, ref.Hash())
		if err != nil {
			return plumbing.ZeroHash, false
		}
		return h, true
	}
}
