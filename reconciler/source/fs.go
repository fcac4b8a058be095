package source

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/object"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Default size limits.
const (
	DefaultMaxFileSize int64 = 1 << 20  // 1 MiB
	DefaultMaxRepoSize int64 = 64 << 20 // 64 MiB
)

// Limits bound what is copied into an in-memory file system. Zero means the
// default, negative means no limit.
type Limits struct {
	// MaxFileSize is the size limit of one file (default 1 MiB).
	MaxFileSize int64
	// MaxRepoSize is the size limit of all files together (default 64 MiB).
	MaxRepoSize int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxFileSize == 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxRepoSize == 0 {
		l.MaxRepoSize = DefaultMaxRepoSize
	}
	return l
}

// sizeBudget enforces Limits while files are added, naming the file that
// goes over.
type sizeBudget struct {
	lim   Limits
	total int64
}

func (b *sizeBudget) add(name string, size int64) error {
	if b.lim.MaxFileSize >= 0 && size > b.lim.MaxFileSize {
		return fmt.Errorf("%w: %s is %d bytes, over the per-file limit of %d bytes", ErrTooLarge, name, size, b.lim.MaxFileSize)
	}
	b.total += size
	if b.lim.MaxRepoSize >= 0 && b.total > b.lim.MaxRepoSize {
		return fmt.Errorf("%w: the repository goes over its limit of %d bytes at %s", ErrTooLarge, b.lim.MaxRepoSize, name)
	}
	return nil
}

// maxSymlinkHops bounds how many symbolic links one path may go through.
const maxSymlinkHops = 40

// FS is an in-memory copy of a repository tree. Besides the files, it
// knows the entries it holds otherwise than as the file they name, so that
// a refusal can say what happened instead of "no such file": symbolic links
// it did not follow, and Git LFS pointers (a small text file standing for
// content that lives elsewhere). It implements render.SpecialFiles.
type FS struct {
	filesys.FileSystem
	special map[string]string // by absolute path
}

func newFS() *FS {
	return &FS{FileSystem: filesys.MakeFsInMemory(), special: map[string]string{}}
}

// Special says what the entry at p (an absolute path, as ReadFile takes) is
// when it is not held as the file it names: "a symbolic link (to
// /etc/passwd); symbolic links out of the repository are not followed", "a
// Git LFS pointer; LFS content is not fetched".
func (f *FS) Special(p string) (what string, ok bool) {
	what, ok = f.special[path.Join("/", p)]
	return what, ok
}

// note records what the repository entry name (relative to the root) is.
func (f *FS) note(name, what string) { f.special[path.Join("/", name)] = what }

// lfsPointer is what a Git LFS pointer file starts with; pointer files are
// under 1024 bytes (git-lfs docs/spec.md). The older prefix is hawser's.
var lfsPointer = [][]byte{[]byte("version https://git-lfs.github.com/spec/v1\n"), []byte("version https://hawser.github.com/spec/v1\n")}

// isLFSPointer reports whether data is a Git LFS pointer file.
func isLFSPointer(data []byte) bool {
	if len(data) >= 1024 {
		return false
	}
	for _, p := range lfsPointer {
		if bytes.HasPrefix(data, p) {
			return true
		}
	}
	return false
}

const lfsWhat = "a Git LFS pointer; LFS content is not fetched"

// treeFS copies the files of tree into an in-memory file system rooted at
// "/". Symbolic links to regular files inside the tree are copied as the file
// they point to; links to directories, to paths outside the tree or to
// nothing are skipped (and noted). Submodules are skipped.
func treeFS(tree *object.Tree, lim Limits) (*FS, error) {
	budget := sizeBudget{lim: lim.withDefaults()}
	mem := newFS()
	entries := map[string]object.TreeEntry{} // every non-directory entry, by path
	var links []string

	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, entry, err := w.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tree: %w", err)
		}
		switch entry.Mode {
		case filemode.Dir, filemode.Submodule:
			continue
		case filemode.Symlink:
			entries[name] = entry
			links = append(links, name)
			continue
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			entries[name] = entry
			if err := copyBlob(tree, mem, &budget, name, entry); err != nil {
				return nil, err
			}
		}
	}

	for _, link := range links {
		target, why, err := resolveTreeLink(tree, entries, link)
		if err != nil {
			return nil, err
		}
		if why != "" {
			mem.note(link, fmt.Sprintf("a symbolic link (to %s)%s", linkTarget(tree, entries[link]), why))
			continue
		}
		if err := copyBlob(tree, mem, &budget, link, entries[target]); err != nil {
			return nil, err
		}
	}
	return mem, nil
}

// Why a symbolic link is not followed, as resolveTreeLink says it.
const (
	linkOut     = "; symbolic links out of the repository are not followed"
	linkDir     = "; symbolic links to directories are not followed"
	linkNothing = ", which leads to nothing in the repository"
	linkLoop    = ", which loops"
)

// linkTarget is what the symbolic link entry points to, as written.
func linkTarget(tree *object.Tree, entry object.TreeEntry) string {
	f, err := tree.TreeEntryFile(&entry)
	if err != nil || f.Size > 4096 {
		return "?"
	}
	dest, err := f.Contents()
	if err != nil {
		return "?"
	}
	return dest
}

// copyBlob writes the blob of entry to /dst in mem, within budget.
func copyBlob(tree *object.Tree, mem *FS, budget *sizeBudget, dst string, entry object.TreeEntry) error {
	f, err := tree.TreeEntryFile(&entry)
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	if err := budget.add(dst, f.Size); err != nil {
		return err
	}
	r, err := f.Reader()
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, f.Size+1))
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	if err := mem.WriteFile("/"+dst, data); err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	if isLFSPointer(data) {
		mem.note(dst, lfsWhat)
	}
	return nil
}

// resolveTreeLink follows the symbolic link at name to a regular file of the
// tree. why says why it is not followed when the link leaves the tree,
// points to a directory, to nothing, or loops (one of the link* texts).
func resolveTreeLink(tree *object.Tree, entries map[string]object.TreeEntry, name string) (target, why string, err error) {
	cur := name
	for range maxSymlinkHops {
		entry, found := entries[cur]
		if !found {
			if _, err := tree.FindEntry(cur); err == nil {
				return "", linkDir, nil
			}
			return "", linkNothing, nil
		}
		if entry.Mode != filemode.Symlink {
			return cur, "", nil
		}
		f, err := tree.TreeEntryFile(&entry)
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", cur, err)
		}
		if f.Size > 4096 {
			return "", linkNothing, nil // not a plausible link target
		}
		dest, err := f.Contents()
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", cur, err)
		}
		if path.IsAbs(dest) {
			return "", linkOut, nil
		}
		next := path.Clean(path.Join(path.Dir(cur), dest))
		if next == ".." || strings.HasPrefix(next, "../") {
			return "", linkOut, nil
		}
		if next == "." {
			return "", linkDir, nil
		}
		cur = next
	}
	return "", linkLoop, nil
}

// WorktreeFS copies the files of the local directory dir into an in-memory
// file system rooted at "/", within lim — for rendering an uncommitted work
// tree: what `git add --all` would commit. Every .git directory or file is
// skipped, and so are the files the .gitignore files under dir (and
// .git/info/exclude) ignore. Symbolic links are followed when they lead to a
// regular file inside dir and skipped otherwise, as FS does for a commit.
func WorktreeFS(dir string, lim Limits) (*FS, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		return nil, err
	}
	patterns, err := gitignore.ReadPatterns(osfs.New(root), nil)
	if err != nil {
		return nil, fmt.Errorf("reading .gitignore files: %w", err)
	}
	ignored := gitignore.NewMatcher(patterns)
	budget := sizeBudget{lim: lim.withDefaults()}
	mem := newFS()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" && p != root {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if ignored.Match(strings.Split(name, "/"), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		src := p
		if d.Type()&fs.ModeSymlink != 0 {
			target, why := insideLink(root, p)
			if why != "" {
				dest, _ := os.Readlink(p)
				mem.note(name, fmt.Sprintf("a symbolic link (to %s)%s", dest, why))
				return nil
			}
			src = target
		} else if !d.Type().IsRegular() {
			return nil // sockets, devices, pipes
		}
		info, err := os.Stat(src)
		if err != nil {
			return err
		}
		if err := budget.add(name, info.Size()); err != nil {
			return err
		}
		data, err := readFileLimited(src, info.Size())
		if err != nil {
			return err
		}
		if isLFSPointer(data) {
			mem.note(name, lfsWhat)
		}
		return mem.WriteFile("/"+name, data)
	})
	if err != nil {
		return nil, err
	}
	return mem, nil
}

// insideLink resolves the symbolic link p to a regular file inside root; why
// says why not otherwise (one of the link* texts).
func insideLink(root, p string) (target, why string) {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return "", linkLoop
		}
		// Out of the repository, or to nothing in it?
		dest, err := os.Readlink(p)
		if err != nil {
			return "", linkNothing
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(p), dest)
		}
		if rel, err := filepath.Rel(root, dest); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", linkOut
		}
		return "", linkNothing
	}
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", linkOut
	}
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if part == ".git" {
			return "", linkOut
		}
	}
	info, err := os.Stat(target)
	if err != nil {
		return "", linkNothing
	}
	if info.IsDir() {
		return "", linkDir
	}
	if !info.Mode().IsRegular() {
		return "", linkNothing
	}
	return target, ""
}

// readFileLimited reads a file whose size was checked, refusing to read
// more than that size if it grew meanwhile.
func readFileLimited(p string, size int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > size {
		return nil, fmt.Errorf("%s changed while being read", p)
	}
	return data, nil
}
