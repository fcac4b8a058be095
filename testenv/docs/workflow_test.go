package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// workflow is the part of the example GitHub Actions workflow checked here
// (YAML 1.2, as GitHub reads it: the key "on" is a string, not true).
type workflow struct {
	On struct {
		PullRequest struct {
			Paths []string `yaml:"paths"`
		} `yaml:"pull_request"`
	} `yaml:"on"`
	Env  map[string]string `yaml:"env"`
	Jobs map[string]struct {
		Strategy struct {
			Matrix struct {
				Overlay []string `yaml:"overlay"`
			} `yaml:"matrix"`
		} `yaml:"strategy"`
	} `yaml:"jobs"`
}

// globMatch matches a GitHub Actions path filter: "**" spans directories,
// "*" stays within one.
func globMatch(pattern, p string) bool {
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch {
		case strings.HasPrefix(pattern[i:], "**/"):
			re.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(pattern[i:], "**"):
			re.WriteString(".*")
			i++
		case pattern[i] == '*':
			re.WriteString("[^/]*")
		default:
			re.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(p)
}

// TestPreviewWorkflowExample: the example workflow's path filters cover every
// file of the example layout (repo-layout/, overlays/) and a user's layout
// (platform/, teams/), its overlays exist, and the gitxds it installs is a
// branch or commit, never a tag the repository does not have.
func TestPreviewWorkflowExample(t *testing.T) {
	rootOut, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skip("not in a git checkout")
	}
	root := strings.TrimSpace(string(rootOut))
	data, err := os.ReadFile(filepath.Join(root, "docs/github-actions-preview.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	files, err := exec.Command("git", "-C", root, "ls-files", "repo-layout", "overlays").Output()
	if err != nil {
		t.Fatal(err)
	}
	users := []string{"platform/gateways.yaml", "teams/shop/routes.yaml", "overlays/production/kustomization.yaml"}
	checked := 0
	for _, f := range append(strings.Fields(string(files)), users...) {
		matched := false
		for _, p := range w.On.PullRequest.Paths {
			matched = matched || globMatch(p, f)
		}
		if !matched {
			t.Errorf("no path filter of the workflow matches %s (filters %v)", f, w.On.PullRequest.Paths)
		}
		checked++
	}
	if checked == len(users) {
		t.Fatal("no file of the example layout found")
	}
	for name, j := range w.Jobs {
		for _, o := range j.Strategy.Matrix.Overlay {
			if _, err := os.Stat(filepath.Join(root, o, "kustomization.yaml")); err != nil {
				t.Errorf("job %s: overlay %s: %v", name, o, err)
			}
		}
	}
	ref := w.Env["GITXDS_REF"]
	if ref == "" {
		t.Fatal("the workflow sets no GITXDS_REF")
	}
	if strings.HasPrefix(ref, "v") {
		out, _ := exec.Command("git", "-C", root, "tag", "--list", ref).Output()
		if strings.TrimSpace(string(out)) != ref {
			t.Errorf("the workflow installs gitxds %s, a tag this repository does not have", ref)
		}
	}
	if !strings.Contains(string(data), "@${GITXDS_REF}") {
		t.Error("the workflow does not install gitxds at GITXDS_REF")
	}
}
