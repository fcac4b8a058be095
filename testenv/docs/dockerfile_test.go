package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerfileBuildable: every base image of deploy/Dockerfile is fully
// qualified (buildah and podman refuse short names without a registry
// alias), and .dockerignore keeps .git and bin/ out of the build context.
func TestDockerfileBuildable(t *testing.T) {
	rootOut, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skip("not in a git checkout")
	}
	root := strings.TrimSpace(string(rootOut))
	data, err := os.ReadFile(filepath.Join(root, "deploy/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	froms := 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.EqualFold(f[0], "FROM") {
			continue
		}
		froms++
		host, _, ok := strings.Cut(f[1], "/")
		if !ok || !strings.ContainsAny(host, ".:") {
			t.Errorf("deploy/Dockerfile: base image %q is not fully qualified (registry/repository:tag)", f[1])
		}
	}
	if froms == 0 {
		t.Fatal("deploy/Dockerfile has no FROM")
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(ignore), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".git", "bin/"} {
		if !lines[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}
