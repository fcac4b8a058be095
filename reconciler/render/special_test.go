package render

import (
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// specialFS is an in-memory file system that knows special entries, as
// source.FS does.
type specialFS struct {
	filesys.FileSystem
	special map[string]string
}

func (s specialFS) Special(p string) (string, bool) {
	what, ok := s.special[p]
	return what, ok
}

// A reference to an entry the file system holds otherwise than as a file
// (a symbolic link not followed, a Git LFS pointer) is refused saying what
// it is, not "no such file".
func TestSpecialFilesRefusedForWhatTheyAre(t *testing.T) {
	const (
		link = "a symbolic link (to /etc/passwd); symbolic links out of the repository are not followed"
		dir  = "a symbolic link (to ../../platform); symbolic links to directories are not followed"
		lfs  = "a Git LFS pointer; LFS content is not fetched"
	)
	cases := []struct {
		name, kustomization, want string
	}{
		{"link to a file", "resources: [passwd.yaml]\n", `overlays/dev/kustomization.yaml: resource "passwd.yaml" is ` + link},
		{"link to a directory", "resources: [platform]\n", `overlays/dev/kustomization.yaml: resource "platform" is ` + dir},
		{"link as a patch", "resources: [ns.yaml]\npatches: [{path: passwd.yaml}]\n", `overlays/dev/kustomization.yaml: patch "passwd.yaml" is ` + link},
		{"LFS pointer resource", "resources: [big.yaml]\n", `overlays/dev/kustomization.yaml: resource "big.yaml" is ` + lfs},
		{"LFS pointer patch", "resources: [ns.yaml]\npatches: [{path: big.yaml}]\n", `overlays/dev/kustomization.yaml: patch "big.yaml" is ` + lfs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := filesys.MakeFsInMemory()
			write(t, mem, "/overlays/dev/kustomization.yaml", c.kustomization)
			write(t, mem, "/overlays/dev/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
			write(t, mem, "/overlays/dev/big.yaml", "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")
			fsys := specialFS{FileSystem: mem, special: map[string]string{
				"/overlays/dev/passwd.yaml": link,
				"/overlays/dev/platform":    dir,
				"/overlays/dev/big.yaml":    lfs,
			}}
			_, err := Render(fsys, "overlays/dev", Options{})
			if err == nil || err.Error() != c.want || !errors.Is(err, ErrNotFound) {
				t.Errorf("err = %v,\nwant %s (ErrNotFound)", err, c.want)
			}
			// Without what the file system knows, the refusal is the old one.
			if _, err := Render(mem, "overlays/dev", Options{}); err != nil && strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("a plain file system: %v", err)
			}
		})
	}
}
