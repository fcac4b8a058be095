package source

import (
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

// treeFS copies the files of tree into an in-memory file system rooted at
// "/". Symbolic links to regular files inside the tree are copied as the file
// they point to; links to directories, to paths outside the tree or to
// nothing are skipped. Submodules are skipped.
func treeFS(tree *object.Tree, lim Limits) (filesys.FileSystem, error) {
	budget := sizeBudget{lim: lim.withDefaults()}
	mem := filesys.MakeFsInMemory()
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
		target, ok, err := resolveTreeLink(tree, entries, link)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := copyBlob(tree, mem, &budget, link, entries[target]); err != nil {
				return nil, err
			}
		}
	}
	return mem, nil
}

// copyBlob writes the blob of entry to /dst in mem, within budget.
func copyBlob(tree *object.Tree, mem filesys.FileSystem, budget *sizeBudget, dst string, entry object.TreeEntry) error {
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
	return nil
}

// resolveTreeLink follows the symbolic link at name to a regular file of the
// tree. ok is false when the link leaves the tree, points to a directory, to
// nothing, or loops.
func resolveTreeLink(tree *object.Tree, entries map[string]object.TreeEntry, name string) (target string, ok bool, err error) {
	cur := name
	for range maxSymlinkHops {
		entry, found := entries[cur]
		if !found {
			return "", false, nil // a directory, or nothing
		}
		if entry.Mode != filemode.Symlink {
			return cur, true, nil
		}
		f, err := tree.TreeEntryFile(&entry)
		if err != nil {
			return "", false, fmt.Errorf("%s: %w", cur, err)
		}
		if f.Size > 4096 {
			return "", false, nil // not a plausible link target
		}
		dest, err := f.Contents()
		if err != nil {
			return "", false, fmt.Errorf("%s: %w", cur, err)
		}
		if path.IsAbs(dest) {
			return "", false, nil
		}
		next := path.Clean(path.Join(path.Dir(cur), dest))
		if next == ".." || strings.HasPrefix(next, "../") || next == "." {
			return "", false, nil
		}
		cur = next
	}
	return "", false, nil
}

// WorktreeFS copies the files of the local directory dir into an in-memory
// file system rooted at "/", within lim — for rendering an uncommitted work
// tree: what `git add --all` would commit. Every .git directory or file is
// skipped, and so are the files the .gitignore files under dir (and
// .git/info/exclude) ignore. Symbolic links are followed when they lead to a
// regular file inside dir and skipped otherwise, as FS does for a commit.
func WorktreeFS(dir string, lim Limits) (filesys.FileSystem, error) {
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
	mem := filesys.MakeFsInMemory()
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
			target, ok := insideLink(root, p)
			if !ok {
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
		return mem.WriteFile("/"+name, data)
	})
	if err != nil {
		return nil, err
	}
	return mem, nil
}

// insideLink resolves the symbolic link p and reports whether it leads to a
// regular file inside root.
func insideLink(root, p string) (string, bool) {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", false
	}
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if part == ".git" {
			return "", false
		}
	}
	info, err := os.Stat(target)
	if err != nil || !info.Mode().IsRegular() {
		return "", false
	}
	return target, true
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
