package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ProbeDepth is how many commits back Descends looks for the ancestor in a
// remote repository: a push of more commits than that at once, between two
// polls, is reported as not descending.
const ProbeDepth = 32

// probeRef is where the probe fetch keeps the ref it fetched.
const probeRef plumbing.ReferenceName = "refs/gitxds/probe"

// Descends reports whether rev's commit is ancestor's commit or has it in
// its history: false for a branch moved to a rewritten or unrelated history
// (a force-push). known is false when it cannot tell: on a URL, when
// ancestor's commit is not held any more (after a restart, or once memory
// was compacted) or the history between them is over the size limits.
//
// On a URL, when the commits held do not link rev to ancestor, it fetches
// rev's ref again with its last ProbeDepth commits into a throwaway
// storage (the objects held are not sent again), and looks there.
func (s *Source) Descends(ctx context.Context, rev Revision, ancestor plumbing.Hash) (descends, known bool, err error) {
	if rev.Hash == ancestor {
		return true, true, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if s.local != "" {
		repo, err := s.openLocal()
		if err != nil {
			return false, false, err
		}
		return reaches(repo, rev.Hash, ancestor, -1)
	}
	r := s.remote
	if !r.hasCommit(ancestor) || !r.hasCommit(rev.Hash) {
		return false, false, nil
	}
	if ok, _, err := reaches(r.repo, rev.Hash, ancestor, ProbeDepth); ok || err != nil {
		return ok, err == nil, err
	}
	if rev.Ref == "" {
		return false, false, nil
	}
	probe, err := r.probe(ctx, rev, ancestor)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return false, false, nil
		}
		return false, false, s.wrapRemote(fmt.Sprintf("history of %s in %s", rev.Short(), s.shown), err)
	}
	return reaches(probe, rev.Hash, ancestor, ProbeDepth)
}

// reaches walks the history of from, at most limit commits (negative: no
// limit), looking for to. Commits not held (the edge of a shallow history)
// end their path. known is false when the walk stopped at the limit.
func reaches(repo *git.Repository, from, to plumbing.Hash, limit int) (found, known bool, err error) {
	seen := map[plumbing.Hash]bool{from: true}
	queue := []plumbing.Hash{from}
	for len(queue) > 0 {
		if limit >= 0 && len(seen) > limit+1 {
			return false, false, nil
		}
		h := queue[0]
		queue = queue[1:]
		if h == to {
			return true, true, nil
		}
		c, err := repo.CommitObject(h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return false, false, err
		}
		for _, p := range c.ParentHashes {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false, true, nil
}

// probe fetches rev's ref with its last ProbeDepth commits into a throwaway
// storage seeded with the objects held, with a ref on ancestor so the
// server sends only what is not reachable from it.
func (r *remote) probe(ctx context.Context, rev Revision, ancestor plumbing.Hash) (*git.Repository, error) {
	adv, err := r.list(ctx)
	if err != nil {
		return nil, err
	}
	name, h, ok := matchRef(adv.lookup, rev.Ref)
	if !ok || h != rev.Hash {
		return nil, fmt.Errorf("%s moved while its history was read: %w", rev.Ref, ErrRefNotFound)
	}
	if name == plumbing.HEAD && adv.headTarget != "" {
		name = adv.headTarget
	}
	sto := memory.NewStorage()
	for _, obj := range r.sto.Objects {
		if _, err := sto.SetEncodedObject(obj); err != nil {
			return nil, err
		}
	}
	shallow, err := r.sto.Shallow()
	if err != nil {
		return nil, err
	}
	if err := sto.SetShallow(shallow); err != nil {
		return nil, err
	}
	if err := sto.SetReference(plumbing.NewHashReference("refs/gitxds/applied", ancestor)); err != nil {
		return nil, err
	}
	tmp := &remote{url: r.url, auth: r.auth, red: r.red, lim: r.lim}
	if err := tmp.reset(sto); err != nil {
		return nil, err
	}
	// Several commits' files, not one tree's: only the total is bounded.
	tmp.guard.limits = fetchLimits{maxFile: -1, maxFiles: orNoLimit(r.lim.MaxRepoSize), maxObject: orNoLimit(r.lim.MaxRepoSize)}
	err = tmp.origin.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", name, probeRef))},
		Depth:    ProbeDepth,
		Auth:     r.auth,
		Tags:     git.NoTags,
		Force:    true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, err
	}
	return tmp.repo, nil
}
