package render

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kubectlKustomize runs `kubectl kustomize` on dir, or skips the test when
// kubectl is not on PATH.
func kubectlKustomize(t *testing.T, dir string) []byte {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	cmd := exec.Command(kubectl, "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// No kubeconfig, no network: kustomize needs neither for local trees.
	cmd.Env = append(os.Environ(), "KUBECONFIG=/dev/null")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.Bytes())
	}
	return out
}

// TestKubectlEquivalence renders every case that succeeds and compares
// Result.YAML byte for byte with `kubectl kustomize` on the same tree written
// to disk (origin annotations excepted, which gitxds removes).
func TestKubectlEquivalence(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not on PATH")
	}
	for _, c := range loadCases(t) {
		if _, isErr := c.Want("error"); isErr {
			continue
		}
		if _, failed := c.Want("failed"); failed {
			continue // kubectl kustomize fails the whole overlay
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, s := range c.repoFiles() {
				p := filepath.Join(dir, filepath.FromSlash(s.Name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, s.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := kubectlKustomize(t, filepath.Join(dir, filepath.FromSlash(c.opts.Overlay)))
			res, err := Render(c.fs(t), c.opts.Overlay, Options{MaxObjects: c.opts.MaxObjects})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.YAML(); !bytes.Equal(got, want) {
				t.Errorf("Render differs from kubectl kustomize\n--- render:\n%s\n--- kubectl:\n%s", got, want)
			}
		})
	}
}

// TestKubectlEquivalenceProjectExample renders the project's own example
// repository (repo-layout/ and overlays/) the way the daemon sees it.
func TestKubectlEquivalenceProjectExample(t *testing.T) {
	fsys, overlays := projectExample(t)
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			res, err := Render(fsys, overlay, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Objects) == 0 {
				t.Fatal("no objects")
			}
			checkObjects(t, res, false)
			if got, want := res.YAML(), kubectlKustomize(t, filepath.Join("../..", filepath.FromSlash(overlay))); !bytes.Equal(got, want) {
				t.Errorf("Render differs from kubectl kustomize\n--- render:\n%s\n--- kubectl:\n%s", got, want)
			}
		})
	}
}

// projectExample loads the project's own example repository (repo-layout/
// and overlays/) into memory, the way the daemon sees it, and returns its
// overlays (e.g. "overlays/dev").
func projectExample(t *testing.T) (filesys.FileSystem, []string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := filepath.Glob(filepath.Join(root, "overlays", "*", "kustomization.yaml"))
	if len(ks) == 0 {
		t.Skip("no overlays/*/kustomization.yaml in the project")
	}
	fsys := filesys.MakeFsInMemory()
	for _, top := range []string{"repo-layout", "overlays"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			return fsys.WriteFile("/"+filepath.ToSlash(rel), data)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var overlays []string
	for _, k := range ks {
		rel, _ := filepath.Rel(root, filepath.Dir(k))
		overlays = append(overlays, filepath.ToSlash(rel))
	}
	return fsys, overlays
}
