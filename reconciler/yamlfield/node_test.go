package yamlfield

import (
	"testing"

	yaml3 "go.yaml.in/yaml/v3"
)

// Line finds a field by its path; Same compares data whatever the style
// (flow or block, quoted or not, keys in any order), as kustomize's output
// differs from the file it read.
func TestLineAndSame(t *testing.T) {
	doc := []byte("# a comment\nspec:\n  rules:\n  - name: a\n  - name: b\n    backendRef: []\n")
	for _, c := range []struct {
		path Path
		want int
	}{
		{Path{{Key: "spec"}, {Key: "rules"}, {Index: 1}, {Key: "backendRef"}}, 6},
		{Path{{Key: "spec"}, {Key: "rules"}, {Index: 0}}, 4},
		{Path{{Key: "spec"}, {Key: "rules"}, {Index: 2}}, 0},
		{Path{{Key: "spec"}, {Key: "nope"}}, 0},
	} {
		if got := Line(doc, c.path); got != c.want {
			t.Errorf("Line(%s) = %d, want %d", c.path, got, c.want)
		}
	}
	parse := func(s string) *yaml3.Node {
		var d yaml3.Node
		if err := yaml3.Unmarshal([]byte(s), &d); err != nil {
			t.Fatal(err)
		}
		return d.Content[0]
	}
	a := parse("{name: x, port: 80, on: 'yes'}")
	for s, want := range map[string]bool{
		"port: 80\nname: \"x\"\n'on': 'yes'\n": true,
		"{name: x, port: '80', on: 'yes'}":     false, // a string is not a number
		"{name: x, port: 80, on: yes}":         false, // YAML 1.1: yes is a boolean
		"{name: x, port: 80}":                  false,
	} {
		if got := Same(a, parse(s)); got != want {
			t.Errorf("Same(%q) = %v, want %v", s, got, want)
		}
	}
}
