package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The Taskfile is what README and the docs tell people to run: it must
// parse (an unquoted ": " in a description breaks every task), and every
// task must say what it does and run something.
func TestTaskfileParses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Taskfile.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Version string `json:"version"`
		Tasks   map[string]struct {
			Desc string `json:"desc"`
			Cmds []any  `json:"cmds"`
		} `json:"tasks"`
	}
	if err := yaml.UnmarshalStrict(b, &tf, yaml.DisallowUnknownFields); err != nil {
		// Unknown task fields (deps, env, dir...) are fine; a syntax error
		// is not.
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("Taskfile.yml: %v", err)
		}
	}
	if tf.Version != "3" || len(tf.Tasks) == 0 {
		t.Fatalf("Taskfile.yml: version %q, %d tasks", tf.Version, len(tf.Tasks))
	}
	for _, name := range []string{"demo", "test", "golden", "conformance", "kube-binaries", "image", "release"} {
		task, ok := tf.Tasks[name]
		if !ok {
			t.Errorf("task %s is gone (the docs name it)", name)
			continue
		}
		if task.Desc == "" || len(task.Cmds) == 0 {
			t.Errorf("task %s: desc %q, %d cmds", name, task.Desc, len(task.Cmds))
		}
	}
}

// TestGoldenTaskCoversEveryGolden: the golden task regenerates every
// golden, so every package whose tests use the golden harness
// (testenv/golden, the one -update flag) is one it runs with -update; the
// conformance report alone has its own task (it needs the suite's module).
func TestGoldenTaskCoversEveryGolden(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Taskfile.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tasks map[string]struct {
			Cmds []any `json:"cmds"`
		} `json:"tasks"`
	}
	if err := yaml.Unmarshal(b, &tf); err != nil {
		t.Fatal(err)
	}
	const module = "gitxds.dev/gitxds"
	regenerated := map[string]bool{}
	for _, task := range []string{"golden", "conformance"} {
		for _, c := range tf.Tasks[task].Cmds {
			cmd, _ := c.(string)
			args := strings.Fields(cmd)
			if len(args) < 2 || args[0] != "go" || args[1] != "test" || !slices.Contains(args, "-update") {
				continue
			}
			for _, a := range args {
				if p, ok := strings.CutPrefix(a, "./"); ok {
					regenerated[module+"/"+p] = true
				}
			}
		}
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const harness = module + "/testenv/golden"
	users := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] == harness || !slices.Contains(fields[1:], harness) {
			continue
		}
		users++
		if !regenerated[fields[0]] {
			t.Errorf("the tests of %s have goldens, and no task runs them with -update (add ./%s to the golden task)", fields[0], strings.TrimPrefix(fields[0], module+"/"))
		}
	}
	if users == 0 {
		t.Fatal("no package uses testenv/golden")
	}
}
