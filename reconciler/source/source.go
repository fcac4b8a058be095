// Package source is the source stage of the pipeline, the only one that does
// Git I/O: it polls a repository cheaply (an ls-remote, and a shallow fetch of
// the one ref only when it moved), resolves the revisions the offline commands
// name, and hands the tree of a commit to the render stage as an in-memory
// kustomize file system.
//
// A local path (a work tree or a bare repository) is opened directly with
// go-git, so no git binary is needed; a URL (file://, http(s)://, ssh:// or
// scp-like user@host:path) is fetched into memory. go-git's file:// transport
// runs the git CLI's upload-pack.
package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// DefaultTimeout bounds one Poll, Resolve or FS call.
const DefaultTimeout = 30 * time.Second

// Options configure a Source.
type Options struct {
	// URL is the repository: a local path (relative or absolute; a work tree
	// or a bare repository), or a file://, http(s)://, ssh:// or scp-like URL.
	// Credentials in the URL are used and never appear in errors.
	URL string
	// Ref is what Poll follows (Poll needs it; Resolve and FS do not): a
	// branch name as the user writes it ("main"),
	// else a tag name, a full ref name ("refs/heads/main") or "HEAD". A branch
	// wins over a tag of the same name.
	Ref string
	// Auth authenticates to a remote; nil uses what the URL carries.
	Auth transport.AuthMethod
	// Timeout bounds each Poll, Resolve and FS call (default 30s).
	Timeout time.Duration
	// MaxFileSize and MaxRepoSize bound FS: zero means 1 MiB per file and
	// 64 MiB in total, negative means no limit.
	MaxFileSize, MaxRepoSize int64
	// VerifyCommit, when set, is called by FS on the commit before its tree
	// is read; an error refuses the revision with an error wrapping
	// ErrUnverified (commit signature verification).
	VerifyCommit func(*object.Commit) error
}

// Source is one repository. Its methods are safe for concurrent use; calls
// are serialized.
type Source struct {
	opts   Options
	shown  string // the URL or path for messages, without credentials
	red    redactor
	local  string  // absolute path when the repository is on disk
	remote *remote // otherwise

	mu   sync.Mutex
	last Revision // what Poll returned last
	// refused are the commits whose fetch went over the size limits, with
	// the error: they are not fetched again (a commit never changes).
	refused map[plumbing.Hash]error
}

// maxRefused bounds Source.refused; the oldest entry goes first.
const maxRefused = 16

// refuse remembers that commit h is over the limits. Caller holds s.mu.
func (s *Source) refuse(h plumbing.Hash, err error) {
	if s.refused == nil {
		s.refused = map[plumbing.Hash]error{}
	}
	if len(s.refused) >= maxRefused {
		clear(s.refused) // rare: a new commit per refusal; forgetting costs a fetch
	}
	s.refused[h] = err
}

// New checks opts and returns a Source. It does no I/O: an unreachable
// repository is reported by the first Poll or Resolve.
func New(opts Options) (*Source, error) {
	if opts.URL == "" {
		return nil, errors.New("source: no repository URL or path")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	lim := Limits{MaxFileSize: opts.MaxFileSize, MaxRepoSize: opts.MaxRepoSize}.withDefaults()
	opts.MaxFileSize, opts.MaxRepoSize = lim.MaxFileSize, lim.MaxRepoSize

	s := &Source{opts: opts}
	shown, secrets := redactURL(opts.URL)
	s.shown = shown
	s.red = redactor{secrets: append(secrets, authSecrets(opts.Auth)...)}

	if isLocalPath(opts.URL) {
		abs, err := filepath.Abs(opts.URL)
		if err != nil {
			return nil, fmt.Errorf("source: %s: %w", opts.URL, err)
		}
		s.local = abs
		return s, nil
	}
	if _, err := transport.NewEndpoint(opts.URL); err != nil {
		return nil, s.red.errorf(nil, "source: invalid repository URL %s: %v", s.shown, err)
	}
	r, err := newRemote(opts.URL, opts.Auth, s.red, lim)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	s.remote = r
	return s, nil
}

// String is the repository's URL or path, without credentials.
func (s *Source) String() string { return s.shown }

// Limits are the size limits FS enforces.
func (s *Source) Limits() Limits {
	return Limits{MaxFileSize: s.opts.MaxFileSize, MaxRepoSize: s.opts.MaxRepoSize}
}

// Poll returns the commit Options.Ref points to now, and whether it differs
// from what the previous Poll returned (the first Poll reports a change). On
// a URL it lists the remote's refs first and fetches (shallow, that ref only)
// only when the ref moved to a commit it does not hold yet. Errors wrap
// ErrUnreachable, ErrAuth or ErrRefNotFound; a fetch that fails (a timeout,
// a dropped connection) leaves nothing of the commit behind, so the next
// Poll fetches it again.
//
// A commit whose fetch goes over the size limits is refused while it
// streams in: Poll returns its Revision with an error wrapping ErrTooLarge
// that names the limit (the revision is refused, the source is fine), and
// later Polls and FS return the same without fetching it again.
func (s *Source) Poll(ctx context.Context) (rev Revision, changed bool, err error) {
	if s.opts.Ref == "" {
		return Revision{}, false, errors.New("source: no ref to poll")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()

	var hash plumbing.Hash
	if s.local != "" {
		repo, err := s.openLocal()
		if err != nil {
			return Revision{}, false, err
		}
		_, h, ok := matchRef(localRefs(repo), s.opts.Ref)
		if !ok {
			return Revision{}, false, s.red.errorf(ErrRefNotFound, "poll %s: ref %q not found", s.shown, s.opts.Ref)
		}
		hash = h
	} else {
		refs, err := s.remote.list(ctx)
		if err != nil {
			return Revision{}, false, s.wrapRemote("poll "+s.shown, err)
		}
		name, h, ok := matchRef(refs.lookup, s.opts.Ref)
		if !ok {
			return Revision{}, false, s.red.errorf(ErrRefNotFound, "poll %s: ref %q not found", s.shown, s.opts.Ref)
		}
		if err, ok := s.refused[h]; ok {
			return s.polled(Revision{Ref: s.opts.Ref, Hash: h}, err)
		}
		if !s.remote.hasCommit(h) {
			fetched, err := s.remote.fetchRef(ctx, name, refs)
			if errors.Is(err, ErrTooLarge) {
				err = s.red.wrap(ErrTooLarge, fmt.Sprintf("poll %s: revision %s", s.shown, Revision{Ref: s.opts.Ref, Hash: h}.Short()), err)
				s.refuse(h, err)
				return s.polled(Revision{Ref: s.opts.Ref, Hash: h}, err)
			}
			if err != nil {
				return Revision{}, false, s.wrapRemote("poll "+s.shown, err)
			}
			h = fetched
			// Dropping old revisions is housekeeping: a failure costs memory only.
			_ = s.remote.compact(h, s.opts.MaxRepoSize)
		}
		hash = h
	}
	return s.polled(Revision{Ref: s.opts.Ref, Hash: hash}, nil)
}

// polled records rev as what Poll returns. Caller holds s.mu.
func (s *Source) polled(rev Revision, err error) (Revision, bool, error) {
	changed := rev != s.last
	s.last = rev
	return rev, changed, err
}

// Resolve returns the commit rev names, for the offline commands: a branch,
// a tag, a full ref name ("refs/pull/1/head"), "HEAD", or a full or
// abbreviated SHA (at least 4 hex digits), or an expression go-git's
// ResolveRevision understands ("main~2"). On a URL it fetches what is
// needed: a ref shallowly; a SHA no ref points to, or an expression, by
// fetching all branches and tags with their history. The Revision's Ref is
// rev as written, or empty for a SHA. The Timeout bounds the whole call.
func (s *Source) Resolve(ctx context.Context, rev string) (Revision, error) {
	if rev == "" {
		return Revision{}, s.red.errorf(ErrRefNotFound, "resolve %s: empty revision", s.shown)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()

	if s.local == "" {
		h, named, err := s.remote.resolve(ctx, rev)
		if err != nil {
			return Revision{}, s.wrapRemote(fmt.Sprintf("resolve %q in %s", rev, s.shown), err)
		}
		return newRevision(rev, named, h), nil
	}
	repo, err := s.openLocal()
	if err != nil {
		return Revision{}, err
	}
	if _, h, ok := matchRef(localRefs(repo), rev); ok {
		return newRevision(rev, true, h), nil
	}
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return Revision{}, s.red.errorf(ErrRefNotFound, "resolve %q in %s: %v", rev, s.shown, err)
	}
	return newRevision(rev, !isHex(rev), *h), nil
}

// FS returns the tree of rev's commit as an in-memory file system rooted at
// "/" (repository file platform/gateways.yaml is /platform/gateways.yaml),
// within the size limits: a file or a total over them is an error wrapping
// ErrTooLarge that names the file. Symbolic links to regular files inside
// the tree are copied as that file; other links and submodules are skipped.
// The file system is an *FS: its Special method says which links were
// skipped (with their target) and which files are Git LFS pointers.
// On a URL, a commit not fetched yet is fetched first.
func (s *Source) FS(ctx context.Context, rev Revision) (filesys.FileSystem, error) {
	if rev.IsZero() {
		return nil, errors.New("source: FS of the zero revision")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()

	var repo *git.Repository
	if s.local != "" {
		r, err := s.openLocal()
		if err != nil {
			return nil, err
		}
		repo = r
	} else {
		if err, ok := s.refused[rev.Hash]; ok {
			return nil, err
		}
		if !s.remote.hasCommit(rev.Hash) {
			if err := s.remote.fetchCommit(ctx, rev); err != nil {
				err = s.wrapRemote(fmt.Sprintf("fetch %s of %s", rev.Short(), s.shown), err)
				if errors.Is(err, ErrTooLarge) {
					s.refuse(rev.Hash, err)
				}
				return nil, err
			}
		}
		repo = s.remote.repo
	}
	commit, err := repo.CommitObject(rev.Hash)
	if err != nil {
		return nil, s.red.wrap(ErrRefNotFound, fmt.Sprintf("commit %s of %s", rev.Hash, s.shown), err)
	}
	if s.opts.VerifyCommit != nil {
		if err := s.opts.VerifyCommit(commit); err != nil {
			return nil, s.red.errorf(ErrUnverified, "revision %s: %v", rev.Short(), err)
		}
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, s.red.errorf(nil, "tree of %s in %s: %v", rev.Short(), s.shown, err)
	}
	fsys, err := treeFS(tree, s.Limits())
	if err != nil {
		kind := error(nil)
		if errors.Is(err, ErrTooLarge) {
			kind = ErrTooLarge
		}
		return nil, &sourceError{kind: kind, msg: s.red.scrub(fmt.Sprintf("revision %s: %v", rev.Short(), err))}
	}
	return fsys, nil
}

// wrapRemote classifies an error of the remote. A file:// repository that
// does not exist is unreachable rather than an authentication failure.
func (s *Source) wrapRemote(op string, err error) error {
	var kind error
	if strings.HasPrefix(s.opts.URL, "file://") && errors.Is(err, transport.ErrRepositoryNotFound) {
		kind = ErrUnreachable
	}
	return s.red.wrap(kind, op, err)
}

// newRevision is the Revision of commit h, reached by rev: by name, or by SHA
// (no ref).
func newRevision(rev string, named bool, h plumbing.Hash) Revision {
	if !named {
		rev = ""
	}
	return Revision{Ref: rev, Hash: h}
}

// openLocal opens the repository on disk afresh (so refs and packs written
// since are seen), a work tree or a bare repository.
func (s *Source) openLocal() (*git.Repository, error) {
	repo, err := git.PlainOpenWithOptions(s.local, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return nil, s.red.errorf(ErrUnreachable, "open %s: %v", s.shown, err)
	}
	return repo, nil
}

// isLocalPath reports whether u names a directory on disk rather than a URL.
func isLocalPath(u string) bool {
	if strings.Contains(u, "://") {
		return false
	}
	if _, err := os.Stat(u); err == nil {
		return true
	}
	// scp-like [user@]host:path, where no slash comes before the colon.
	if i := strings.Index(u, ":"); i > 0 && !strings.Contains(u[:i], "/") {
		return false
	}
	return true
}

func authSecrets(auth transport.AuthMethod) []string {
	switch a := auth.(type) {
	case *githttp.BasicAuth:
		return dedupe([]string{a.Password})
	case *githttp.TokenAuth:
		return dedupe([]string{a.Token})
	case *gitssh.Password:
		return dedupe([]string{a.Password})
	}
	return nil
}

// isHex reports whether s looks like a (possibly abbreviated) SHA-1.
func isHex(s string) bool {
	if len(s) < 4 || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
