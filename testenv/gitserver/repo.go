package gitserver

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// baseDate is the author and committer date of a repository's first commit;
// every later commit, tag or revert is one minute after the previous one.
var baseDate = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Repo is a work repository pushing to one bare repository of a Server. Its
// methods are safe for concurrent use.
type Repo struct {
	server *Server
	name   string
	bare   string
	work   string
	home   string

	mu     sync.Mutex
	branch string // the branch Commit pushes to
	tick   int    // commits, tags and reverts made so far: the clock
}

// Name is the repository's name, as given to CreateRepo.
func (r *Repo) Name() string { return r.name }

// URL is the repository's smart-HTTP URL, URL()/NAME.git.
func (r *Repo) URL() string { return r.server.URL() + "/" + r.name + ".git" }

// BareDir is the bare repository the server serves (a local path a Source can
// open directly).
func (r *Repo) BareDir() string { return r.bare }

// WorkDir is the work tree files are written to.
func (r *Repo) WorkDir() string { return r.work }

// CurrentBranch is the branch Commit commits to and pushes (main unless
// Checkout switched it).
func (r *Repo) CurrentBranch() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.branch
}

// WriteFiles writes files into the work tree, keyed by slash-separated path
// relative to the repository root, creating directories as needed. The
// change is published by Commit.
func (r *Repo) WriteFiles(files map[string]string) error {
	for name, content := range files {
		p, err := r.path(name)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("gitserver: %w", err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return fmt.Errorf("gitserver: %w", err)
		}
	}
	return nil
}

// CopyTree copies the regular files under srcDir (skipping .git) into the
// work tree under dstPrefix ("" or "." for the root).
func (r *Repo) CopyTree(srcDir, dstPrefix string) error {
	dst, err := r.path(dstPrefix)
	if err != nil {
		return err
	}
	return filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(srcDir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o644)
	})
}

// Remove removes a file or directory (recursively) from the work tree.
func (r *Repo) Remove(name string) error {
	p, err := r.path(name)
	if err != nil {
		return err
	}
	if p == r.work {
		return fmt.Errorf("gitserver: refusing to remove the work tree root")
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("gitserver: %w", err)
	}
	return nil
}

// Symlink creates a symbolic link at name (relative to the repository root)
// pointing to target, as given.
func (r *Repo) Symlink(target, name string) error {
	p, err := r.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("gitserver: %w", err)
	}
	if err := os.Symlink(target, p); err != nil {
		return fmt.Errorf("gitserver: %w", err)
	}
	return nil
}

// Commit stages every change in the work tree, commits it (an empty commit
// when nothing changed) on the current branch and pushes that branch to the
// server. It returns the new commit's SHA.
func (r *Repo) Commit(msg string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.gitLocked("add", "--all"); err != nil {
		return "", err
	}
	r.tick++
	if _, err := r.gitLocked("commit", "--quiet", "--allow-empty", "--no-verify", "-m", msg); err != nil {
		return "", err
	}
	return r.pushLocked()
}

// Revert reverts commit sha on the current branch (git revert) and pushes.
// It returns the new commit's SHA.
func (r *Repo) Revert(sha string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tick++
	if _, err := r.gitLocked("revert", "--no-edit", sha); err != nil {
		return "", err
	}
	return r.pushLocked()
}

// Reset moves the current branch to sha (git reset --hard) and force-pushes
// it: the branch moves backwards or sideways.
func (r *Repo) Reset(sha string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.gitLocked("reset", "--quiet", "--hard", sha); err != nil {
		return err
	}
	_, err := r.gitLocked("push", "--quiet", "--force", "origin", "HEAD:refs/heads/"+r.branch)
	return err
}

// Head is the SHA of the work tree's HEAD commit.
func (r *Repo) Head() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.headLocked()
}

// Branch creates branch name at HEAD and pushes it. The current branch does
// not change.
func (r *Repo) Branch(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.gitLocked("branch", name); err != nil {
		return err
	}
	_, err := r.gitLocked("push", "--quiet", "origin", "refs/heads/"+name+":refs/heads/"+name)
	return err
}

// Checkout switches the work tree to branch name, creating it at HEAD when
// it does not exist. Later commits go to, and are pushed to, that branch.
func (r *Repo) Checkout(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.gitLocked("rev-parse", "--verify", "--quiet", "refs/heads/"+name); err != nil {
		if _, err := r.gitLocked("checkout", "--quiet", "-b", name); err != nil {
			return err
		}
	} else if _, err := r.gitLocked("checkout", "--quiet", name); err != nil {
		return err
	}
	r.branch = name
	return nil
}

// Tag creates a tag at HEAD and pushes it: a lightweight tag when msg is
// empty, an annotated one otherwise.
func (r *Repo) Tag(name, msg string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	args := []string{"tag", name}
	if msg != "" {
		r.tick++
		args = []string{"tag", "--annotate", "-m", msg, name}
	}
	if _, err := r.gitLocked(args...); err != nil {
		return err
	}
	_, err := r.gitLocked("push", "--quiet", "origin", "refs/tags/"+name+":refs/tags/"+name)
	return err
}

// PushRef pushes HEAD to the full ref name refname on the server, e.g.
// "refs/pull/1/head" the way a forge publishes a pull request.
func (r *Repo) PushRef(refname string) error {
	if !strings.HasPrefix(refname, "refs/") {
		return fmt.Errorf("gitserver: PushRef wants a full ref name, got %q", refname)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.gitLocked("push", "--quiet", "--force", "origin", "HEAD:"+refname)
	return err
}

// Git runs the git CLI in the work tree with the repository's isolated
// environment and returns its trimmed standard output.
func (r *Repo) Git(args ...string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gitLocked(args...)
}

func (r *Repo) gitLocked(args ...string) (string, error) { return r.git(r.work, args...) }

func (r *Repo) pushLocked() (string, error) {
	if _, err := r.gitLocked("push", "--quiet", "origin", "HEAD:refs/heads/"+r.branch); err != nil {
		return "", err
	}
	return r.headLocked()
}

func (r *Repo) headLocked() (string, error) {
	sha, err := r.gitLocked("rev-parse", "--verify", "--quiet", "HEAD")
	if err != nil {
		return "", errNoCommit
	}
	return sha, nil
}

// git runs the git CLI in dir with a fixed identity and the repository's
// clock as author and committer date.
func (r *Repo) git(dir string, args ...string) (string, error) {
	date := baseDate.Add(time.Duration(r.tick) * time.Minute).Format(time.RFC3339)
	cmd := exec.Command("git", append([]string{
		"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
		"-c", "core.autocrlf=false", "-c", "advice.detachedHead=false",
	}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(isolatedEnv(r.home),
		"GIT_AUTHOR_NAME=gitxds test", "GIT_AUTHOR_EMAIL=test@gitxds.dev", "GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_NAME=gitxds test", "GIT_COMMITTER_EMAIL=test@gitxds.dev", "GIT_COMMITTER_DATE="+date,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("gitserver: git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// path maps a slash-separated path relative to the repository root to the
// work tree, refusing paths that leave it.
func (r *Repo) path(name string) (string, error) {
	clean := filepath.Clean(filepath.FromSlash(name))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("gitserver: path %q leaves the repository", name)
	}
	if clean == ".git" || strings.HasPrefix(clean, ".git"+string(filepath.Separator)) {
		return "", fmt.Errorf("gitserver: path %q is inside .git", name)
	}
	return filepath.Join(r.work, clean), nil
}
