package render

import "sigs.k8s.io/kustomize/kyaml/filesys"

// SpecialFiles is implemented by a file system that knows the repository
// entries it holds otherwise than as the file they name (source.FS does):
// symbolic links it did not follow, Git LFS pointers. The walk asks it, so
// that a refusal says what the entry is rather than "no such file".
type SpecialFiles interface {
	// Special says what the entry at p (an absolute path, as ReadFile
	// takes) is, e.g. "a symbolic link (to /etc/passwd); symbolic links out
	// of the repository are not followed".
	Special(p string) (what string, ok bool)
}

// special asks fsys, or the file system an overrideFS wraps, what the
// repository entry p is.
func special(fsys filesys.FileSystem, p string) (string, bool) {
	if o, ok := fsys.(overrideFS); ok {
		fsys = o.FileSystem
	}
	if s, ok := fsys.(SpecialFiles); ok {
		return s.Special(abs(p))
	}
	return "", false
}
