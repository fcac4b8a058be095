package render

import (
	"strings"
	"testing"
)

// BenchmarkHostileInputs renders a repository of two teams in which one
// team's directory holds the input named (BENCHMARKS.md, Hostile inputs).
// The refusals happen in the pre-parse, before kustomize reads the file;
// the "at the limit" cases are what a team may legitimately render.
func BenchmarkHostileInputs(b *testing.B) {
	laughs := "apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata: {name: lol}\nspec:\n  a: &a [l,l,l,l,l,l,l,l,l]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		laughs += "  " + n + ": &" + n + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ",") + "]\n"
		prev = n
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		lim   Limits
	}{
		{"billion laughs (refused)", map[string]string{"kustomization.yaml": "resources: [lol.yaml]\n", "lol.yaml": laughs}, Limits{}},
		{"10k nested flow mappings (refused)", map[string]string{"kustomization.yaml": "resources: [deep.yaml]\n",
			"deep.yaml": "kind: Backend\nspec: " + strings.Repeat("{a: ", 10_000) + "1" + strings.Repeat("}", 10_000) + "\n"}, Limits{}},
		{"8000 objects in one file (refused)", map[string]string{"kustomization.yaml": "resources: [many.yaml]\n", "many.yaml": backends("b", 8000)}, Limits{}},
		{"250 objects in one team", map[string]string{"kustomization.yaml": "resources: [many.yaml]\n", "many.yaml": backends("b", 250)}, Limits{}},
		{"500 objects in one team (the limit)", map[string]string{"kustomization.yaml": "resources: [many.yaml]\n", "many.yaml": backends("b", 500)}, Limits{}},
		{"1000 objects in one team (limit raised)", map[string]string{"kustomization.yaml": "resources: [many.yaml]\n", "many.yaml": backends("b", 1000)}, Limits{ObjectsPerTeam: 1000}},
	} {
		b.Run(c.name, func(b *testing.B) {
			fsys := limitFS(b, c.files)
			for b.Loop() {
				if _, err := Render(fsys, "overlays/dev", Options{Cache: NewCache(0), Limits: c.lim}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
