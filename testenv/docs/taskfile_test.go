package docs

import (
	"os"
	"path/filepath"
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
