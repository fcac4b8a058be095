package source

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// remote is a repository behind a URL, fetched into memory. Callers
// serialize access (Source.mu).
type remote struct {
	url  string
	auth transport.AuthMethod
	red  redactor
	lim  Limits

	sto    *memory.Storage
	guard  *guardedStorage // sto as go-git's fetch sees it
	repo   *git.Repository
	origin *git.Remote
}

func newRemote(url string, auth transport.AuthMethod, red redactor, lim Limits) (*remote, error) {
	r := &remote{url: url, auth: auth, red: red, lim: lim.withDefaults()}
	if err := r.reset(memory.NewStorage()); err != nil {
		return nil, err
	}
	return r, nil
}

// reset makes sto the storage of r.
func (r *remote) reset(sto *memory.Storage) error {
	if _, err := sto.Reference(plumbing.HEAD); err != nil {
		if err := sto.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.Master)); err != nil {
			return err
		}
	}
	guard := &guardedStorage{Storage: sto, limits: noFetchLimits}
	repo, err := git.Open(guard, nil)
	if err != nil {
		return err
	}
	origin, err := repo.Remote("origin")
	if errors.Is(err, git.ErrRemoteNotFound) {
		origin, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.url}})
	}
	if err != nil {
		return err
	}
	r.sto, r.guard, r.repo, r.origin = sto, guard, repo, origin
	return nil
}

// shallowLimits are the limits of a shallow fetch of one commit: its files
// are the tree FS copies, so the size limits apply while they stream in.
func (r *remote) shallowLimits() fetchLimits {
	return fetchLimits{maxFile: orNoLimit(r.lim.MaxFileSize), maxFiles: orNoLimit(r.lim.MaxRepoSize), maxObject: orNoLimit(r.lim.MaxRepoSize)}
}

// historyLimits are the limits of a fetch of whole histories, whose files
// are not one tree: only an object over the repository limit (which no tree
// within the limits can hold) is refused.
func (r *remote) historyLimits() fetchLimits {
	return fetchLimits{maxFile: -1, maxFiles: -1, maxObject: orNoLimit(r.lim.MaxRepoSize)}
}

func orNoLimit(n int64) int64 {
	if n < 0 {
		return -1
	}
	return n
}

// advertised is the remote's refs as an ls-remote lists them.
type advertised struct {
	hashes     map[plumbing.ReferenceName]plumbing.Hash // tags peeled to their commit
	headTarget plumbing.ReferenceName                   // the branch HEAD points to, if said
}

func (a advertised) lookup(name plumbing.ReferenceName) (plumbing.Hash, bool) {
	h, ok := a.hashes[name]
	return h, ok
}

// list is the ls-remote: one ref advertisement, no pack.
func (r *remote) list(ctx context.Context) (advertised, error) {
	refs, err := r.origin.ListContext(ctx, &git.ListOptions{Auth: r.auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return advertised{}, err
	}
	a := advertised{hashes: map[plumbing.ReferenceName]plumbing.Hash{}}
	peeled := map[plumbing.ReferenceName]plumbing.Hash{}
	var head *plumbing.Reference
	for _, ref := range refs {
		name := ref.Name()
		switch {
		case name == plumbing.HEAD:
			head = ref
		case strings.HasSuffix(name.String(), "^{}"):
			peeled[plumbing.ReferenceName(strings.TrimSuffix(name.String(), "^{}"))] = ref.Hash()
		case ref.Type() == plumbing.HashReference:
			a.hashes[name] = ref.Hash()
		}
	}
	for name, h := range peeled {
		a.hashes[name] = h
	}
	if head != nil {
		if head.Type() == plumbing.SymbolicReference {
			a.headTarget = head.Target()
			if h, ok := a.hashes[head.Target()]; ok {
				a.hashes[plumbing.HEAD] = h
			}
		} else {
			a.hashes[plumbing.HEAD] = head.Hash()
		}
	}
	return a, nil
}

func (r *remote) hasCommit(h plumbing.Hash) bool {
	_, err := r.repo.CommitObject(h)
	return err == nil
}

// fetchRef fetches the remote ref name at depth 1 and returns the commit it
// points to.
func (r *remote) fetchRef(ctx context.Context, name plumbing.ReferenceName, adv advertised) (plumbing.Hash, error) {
	if name == plumbing.HEAD && adv.headTarget != "" {
		name = adv.headTarget
	}
	local := localRefName(name)
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", name, local))
	// go-git records the new shallow commits before it reads the pack: a
	// failed fetch puts the list back, as the pack's objects are discarded.
	shallow, err := r.sto.Shallow()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	r.guard.limits = r.shallowLimits()
	err = r.origin.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{spec},
		Depth:    1,
		Auth:     r.auth,
		Tags:     git.NoTags,
		Force:    true,
	})
	r.guard.limits = noFetchLimits
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		_ = r.sto.SetShallow(shallow) // a memory storage cannot fail
		return plumbing.ZeroHash, err
	}
	ref, err := r.repo.Reference(local, true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("%s after fetch: %w", name, err)
	}
	return peel(r.repo, ref.Hash())
}

// localRefName is where a fetched remote ref is kept: under its own name,
// HEAD under refs/remote-head.
func localRefName(name plumbing.ReferenceName) plumbing.ReferenceName {
	if name == plumbing.HEAD {
		return "refs/remote-head"
	}
	return name
}

// resolve implements Source.Resolve on a URL; named is false when rev was
// taken as a SHA.
func (r *remote) resolve(ctx context.Context, rev string) (h plumbing.Hash, named bool, err error) {
	adv, err := r.list(ctx)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	if name, h, ok := matchRef(adv.lookup, rev); ok {
		if r.hasCommit(h) {
			return h, true, nil
		}
		h, err := r.fetchRef(ctx, name, adv)
		return h, true, err
	}
	if isHex(rev) {
		if h, ok, err := r.findCommit(rev); ok || err != nil {
			return h, false, err
		}
		prefix := strings.ToLower(rev)
		for name, h := range adv.hashes {
			if strings.HasPrefix(h.String(), prefix) {
				h, err := r.fetchRef(ctx, name, adv)
				return h, false, err
			}
		}
	}
	// A SHA no ref points to, or an expression like main~2: fetch every
	// branch and tag with their history.
	if err := r.fetchAll(ctx, adv); err != nil {
		return plumbing.ZeroHash, false, err
	}
	if isHex(rev) {
		h, ok, err := r.findCommit(rev)
		if err == nil && !ok {
			err = fmt.Errorf("no commit %s in any branch or tag: %w", rev, ErrRefNotFound)
		}
		return h, false, err
	}
	hp, err := r.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("%w: %v", ErrRefNotFound, err)
	}
	return *hp, true, nil
}

// fetchCommit makes rev's commit available: through its ref when that still
// points to it, else through a fetch of every branch and tag.
func (r *remote) fetchCommit(ctx context.Context, rev Revision) error {
	adv, err := r.list(ctx)
	if err != nil {
		return err
	}
	if rev.Ref != "" {
		if name, h, ok := matchRef(adv.lookup, rev.Ref); ok && h == rev.Hash {
			_, err := r.fetchRef(ctx, name, adv)
			return err
		}
	}
	if err := r.fetchAll(ctx, adv); err != nil {
		return err
	}
	if !r.hasCommit(rev.Hash) {
		return fmt.Errorf("commit %s is in no branch or tag: %w", rev.Hash, ErrRefNotFound)
	}
	return nil
}

// findCommit looks for the commit whose SHA starts with prefix among those
// fetched already.
func (r *remote) findCommit(prefix string) (plumbing.Hash, bool, error) {
	prefix = strings.ToLower(prefix)
	if len(prefix) == 40 {
		h := plumbing.NewHash(prefix)
		return h, r.hasCommit(h), nil
	}
	var found []plumbing.Hash
	for h := range r.sto.Commits {
		if strings.HasPrefix(h.String(), prefix) {
			found = append(found, h)
		}
	}
	switch len(found) {
	case 0:
		return plumbing.ZeroHash, false, nil
	case 1:
		return found[0], true, nil
	default:
		return plumbing.ZeroHash, false, fmt.Errorf("short SHA %s is ambiguous (%d commits)", prefix, len(found))
	}
}

// fetchAll fetches every branch and tag with full history into a fresh
// storage (a shallow storage cannot be deepened reliably), then carries over
// the objects and refs fetched before that the new storage lacks, so earlier
// revisions stay readable.
func (r *remote) fetchAll(ctx context.Context, adv advertised) error {
	old := r.sto
	fresh := &remote{url: r.url, auth: r.auth, red: r.red, lim: r.lim}
	if err := fresh.reset(memory.NewStorage()); err != nil {
		return err
	}
	fresh.guard.limits = r.historyLimits()
	err := fresh.origin.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
		Auth:     r.auth,
		Tags:     git.NoTags,
		Force:    true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return err
	}
	var shallow []plumbing.Hash
	oldShallow, _ := old.Shallow()
	for _, h := range oldShallow {
		if fresh.sto.HasEncodedObject(h) != nil {
			shallow = append(shallow, h) // kept from before, still without parents
		}
	}
	for h, obj := range old.Objects {
		if fresh.sto.HasEncodedObject(h) != nil {
			if _, err := fresh.sto.SetEncodedObject(obj); err != nil {
				return err
			}
		}
	}
	for name, ref := range old.ReferenceStorage {
		if _, err := fresh.sto.Reference(name); err != nil && ref.Type() == plumbing.HashReference {
			if err := fresh.sto.SetReference(ref); err != nil {
				return err
			}
		}
	}
	if err := fresh.sto.SetShallow(shallow); err != nil {
		return err
	}
	if adv.headTarget != "" {
		if err := fresh.sto.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, adv.headTarget)); err != nil {
			return err
		}
	}
	return r.reset(fresh.sto)
}

// compact drops every object but those of commit keep and its tree once the
// objects held weigh more than limit (64 MiB when limit is negative), so a
// long-running poller does not keep every revision it ever fetched.
func (r *remote) compact(keep plumbing.Hash, limit int64) error {
	if limit <= 0 {
		limit = DefaultMaxRepoSize
	}
	var total int64
	for _, obj := range r.sto.Objects {
		total += obj.Size()
	}
	if total <= limit {
		return nil
	}
	commit, err := r.repo.CommitObject(keep)
	if err != nil {
		return err
	}
	fresh := memory.NewStorage()
	if err := copyObject(r.sto, fresh, commit.Hash); err != nil {
		return err
	}
	if err := copyTree(r.sto, fresh, commit.TreeHash); err != nil {
		return err
	}
	for _, ref := range r.sto.ReferenceStorage {
		if ref.Type() != plumbing.HashReference {
			continue
		}
		if ref.Hash() == keep {
			_ = fresh.SetReference(ref)
		} else if tag, err := r.repo.TagObject(ref.Hash()); err == nil && tag.Target == keep {
			if err := copyObject(r.sto, fresh, tag.Hash); err != nil {
				return err
			}
			_ = fresh.SetReference(ref)
		}
	}
	if err := fresh.SetShallow([]plumbing.Hash{keep}); err != nil {
		return err
	}
	fresh.ConfigStorage = r.sto.ConfigStorage
	return r.reset(fresh)
}

func copyObject(from, to *memory.Storage, h plumbing.Hash) error {
	obj, err := from.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return err
	}
	_, err = to.SetEncodedObject(obj)
	return err
}

func copyTree(from, to *memory.Storage, h plumbing.Hash) error {
	if to.HasEncodedObject(h) == nil {
		return nil
	}
	if err := copyObject(from, to, h); err != nil {
		return err
	}
	tree, err := object.GetTree(from, h)
	if err != nil {
		return err
	}
	for _, e := range tree.Entries {
		switch {
		case e.Mode.IsFile():
			if err := copyObject(from, to, e.Hash); err != nil {
				return err
			}
		case e.Mode == filemode.Dir:
			if err := copyTree(from, to, e.Hash); err != nil {
				return err
			}
		}
	}
	return nil
}

// peel returns the commit h is, or the commit the annotated tag h points to.
func peel(repo *git.Repository, h plumbing.Hash) (plumbing.Hash, error) {
	for range 10 {
		if _, err := repo.CommitObject(h); err == nil {
			return h, nil
		}
		tag, err := repo.TagObject(h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("object %s is neither a commit nor a tag: %w", h, err)
		}
		h = tag.Target
	}
	return plumbing.ZeroHash, fmt.Errorf("tag chain at %s too long", h)
}
