package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/testenv/gitserver"
)

func TestFSSizeLimits(t *testing.T) {
	t.Parallel()
	srv, repo, _ := newRepo(t, gitserver.Options{})
	must(t, repo.WriteFiles(map[string]string{
		"teams/a/big.yaml":  strings.Repeat("x", 3000),
		"teams/b/big2.yaml": strings.Repeat("y", 3000),
	}))
	if _, err := repo.Commit("big files"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		file, sum int64
		// wantErr is a substring of the error of FS from a path, or of
		// Poll from a URL, which refuses while fetching; "" for success.
		wantErr, wantFetchErr string
	}{
		{"file limit", 2048, -1, "teams/a/big.yaml is 3000 bytes, over the per-file limit of 2048 bytes",
			"a file of 3000 bytes is over the per-file limit of 2048 bytes (refused while fetching)"},
		{"repo limit", -1, 4000, "over its limit of 4000 bytes at teams/",
			"the repository goes over its limit of 4000 bytes (refused while fetching"},
		{"within", 4096, 8192, "", ""},
		{"defaults", 0, 0, "", ""},
	}
	for name, loc := range locations(repo) {
		remote := strings.Contains(loc, "://")
		for _, c := range cases {
			src := mustSource(t, Options{URL: loc, Ref: "main", MaxFileSize: c.file, MaxRepoSize: c.sum})
			rev, _, err := src.Poll(context.Background())
			if remote && c.wantFetchErr != "" {
				if !errors.Is(err, ErrTooLarge) || !strings.Contains(fmtErr(err), c.wantFetchErr) || rev.IsZero() {
					t.Errorf("%s, %s: poll = %s, %v; want the revision and ErrTooLarge containing %q", name, c.name, rev, err, c.wantFetchErr)
				}
				// Polled again, or read, the refused commit is not fetched again.
				fetches := srv.Counts().UploadPack
				if _, _, again := src.Poll(context.Background()); again == nil || again.Error() != err.Error() {
					t.Errorf("%s, %s: second poll: %v, want %v", name, c.name, again, err)
				}
				if _, err := src.FS(context.Background(), rev); !errors.Is(err, ErrTooLarge) {
					t.Errorf("%s, %s: FS after a refused fetch: %v, want ErrTooLarge", name, c.name, err)
				}
				if n := srv.Counts().UploadPack; n != fetches {
					t.Errorf("%s, %s: %d fetches after the refusal, want none", name, c.name, n-fetches)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.FS(context.Background(), rev)
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("%s, %s: %v", name, c.name, err)
			case c.wantErr != "" && (!errors.Is(err, ErrTooLarge) || !strings.Contains(fmtErr(err), c.wantErr)):
				t.Errorf("%s, %s: err = %v, want ErrTooLarge containing %q", name, c.name, err, c.wantErr)
			}
		}
	}
}

func TestFSSymlinks(t *testing.T) {
	t.Parallel()
	_, repo, _ := newRepo(t, gitserver.Options{})
	links := map[string]string{ // link -> target
		"overlays/dev/gateways.yaml": "../../platform/gateways.yaml", // inside: copied
		"overlays/dev/chain.yaml":    "gateways.yaml",                // link to a link: copied
		"overlays/dev/platform":      "../../platform",               // a directory: skipped
		"overlays/dev/passwd":        "/etc/passwd",                  // absolute: skipped
		"overlays/dev/escape.yaml":   "../../../outside.yaml",        // leaves the tree: skipped
		"overlays/dev/dangling.yaml": "missing.yaml",                 // nothing: skipped
		"overlays/dev/loop-a":        "loop-b",                       // a loop: skipped
		"overlays/dev/loop-b":        "loop-a",
	}
	for link, target := range links {
		must(t, repo.Symlink(target, link))
	}
	if _, err := repo.Commit("links"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/overlays/dev/chain.yaml",
		"/overlays/dev/gateways.yaml",
		"/platform/gateways.yaml",
		"/teams/a/route.yaml",
	}
	for name, loc := range locations(repo) {
		src := mustSource(t, Options{URL: loc, Ref: "main"})
		rev, _, err := src.Poll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		fsys := mustFS(t, src, rev)
		if got := files(t, fsys); !slices.Equal(got, want) {
			t.Errorf("%s: files %v, want %v", name, got, want)
		}
		wantFile(t, fsys, "/overlays/dev/chain.yaml", gatewaysV1)
		wantSpecial(t, name, fsys.(*FS), skipped)
	}

	// The same rules for a work tree on disk.
	fsys, err := WorktreeFS(repo.WorkDir(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := files(t, fsys); !slices.Equal(got, want) {
		t.Errorf("work tree: files %v, want %v", got, want)
	}
	wantSpecial(t, "work tree", fsys, skipped)
}

// skipped is what FS says of the links TestFSSymlinks does not follow.
var skipped = map[string]string{
	"/overlays/dev/platform":      "a symbolic link (to ../../platform); symbolic links to directories are not followed",
	"/overlays/dev/passwd":        "a symbolic link (to /etc/passwd); symbolic links out of the repository are not followed",
	"/overlays/dev/escape.yaml":   "a symbolic link (to ../../../outside.yaml); symbolic links out of the repository are not followed",
	"/overlays/dev/dangling.yaml": "a symbolic link (to missing.yaml), which leads to nothing in the repository",
	"/overlays/dev/loop-a":        "a symbolic link (to loop-b), which loops",
	"/overlays/dev/loop-b":        "a symbolic link (to loop-a), which loops",
}

func wantSpecial(t *testing.T, name string, fsys *FS, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if got, ok := fsys.Special(p); !ok || got != w {
			t.Errorf("%s: Special(%s) = %q, %v; want %q", name, p, got, ok, w)
		}
	}
	for _, p := range []string{"/overlays/dev/gateways.yaml", "/platform/gateways.yaml", "/nothing"} {
		if got, ok := fsys.Special(p); ok {
			t.Errorf("%s: Special(%s) = %q, want nothing special", name, p, got)
		}
	}
}

// A Git LFS pointer is held as the small file it is, and Special says so.
func TestFSLFSPointer(t *testing.T) {
	t.Parallel()
	_, repo, _ := newRepo(t, gitserver.Options{})
	const pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n"
	must(t, repo.WriteFiles(map[string]string{"teams/a/big.yaml": pointer, "teams/a/notes.yaml": "# version https://git-lfs.github.com/spec/v1\n"}))
	must(t, repo.Symlink("big.yaml", "teams/a/link.yaml"))
	if _, err := repo.Commit("lfs"); err != nil {
		t.Fatal(err)
	}
	lfs := map[string]string{
		"/teams/a/big.yaml":  "a Git LFS pointer; LFS content is not fetched",
		"/teams/a/link.yaml": "a Git LFS pointer; LFS content is not fetched",
	}
	check := func(name string, fsys *FS) {
		t.Helper()
		wantFile(t, fsys, "/teams/a/big.yaml", pointer)
		for p, w := range lfs {
			if got, ok := fsys.Special(p); !ok || got != w {
				t.Errorf("%s: Special(%s) = %q, %v; want %q", name, p, got, ok, w)
			}
		}
		if got, ok := fsys.Special("/teams/a/notes.yaml"); ok {
			t.Errorf("%s: a file mentioning LFS is %q", name, got)
		}
	}
	for name, loc := range locations(repo) {
		src := mustSource(t, Options{URL: loc, Ref: "main"})
		rev, _, err := src.Poll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		check(name, mustFS(t, src, rev).(*FS))
	}
	fsys, err := WorktreeFS(repo.WorkDir(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	check("work tree", fsys)
}

func TestWorktreeFS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o644))
	}
	write("platform/gateways.yaml", gatewaysV1)
	write(".git/config", "[core]\n")
	write("teams/a/.git", "gitdir: elsewhere\n") // a submodule's .git file
	write("teams/a/route.yaml", "kind: HTTPRoute\n")
	write(".gitignore", "*.swp\n/build/\n")
	write("teams/a/.route.yaml.swp", "editor junk")
	write("build/huge.bin", strings.Repeat("b", 2<<20))

	fsys, err := WorktreeFS(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := files(t, fsys), []string{"/.gitignore", "/platform/gateways.yaml", "/teams/a/route.yaml"}; !slices.Equal(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	wantFile(t, fsys, "/platform/gateways.yaml", gatewaysV1)

	write("teams/b/huge.yaml", strings.Repeat("z", 5000))
	_, err = WorktreeFS(dir, Limits{MaxFileSize: 4096})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "teams/b/huge.yaml") {
		t.Errorf("err = %v, want ErrTooLarge naming teams/b/huge.yaml", err)
	}
	_, err = WorktreeFS(dir, Limits{MaxRepoSize: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}

// files lists every file of fsys, sorted.
func files(t *testing.T, fsys filesys.FileSystem) []string {
	t.Helper()
	var out []string
	err := fsys.Walk("/", func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
