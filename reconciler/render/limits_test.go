package render

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// limitFS is a repository of two teams: payments renders, search holds the
// files given.
func limitFS(t testing.TB, search map[string]string) filesys.FileSystem {
	t.Helper()
	fsys := filesys.MakeFsInMemory()
	write(t, fsys, "/teams/payments/kustomization.yaml", "namespace: payments\nresources: [b.yaml]\n")
	write(t, fsys, "/teams/payments/b.yaml", "apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata: {name: b}\n")
	write(t, fsys, "/overlays/dev/kustomization.yaml", "resources:\n- ../../teams/payments\n- ../../teams/search\n")
	for p, c := range search {
		write(t, fsys, "/teams/search/"+p, c)
	}
	return fsys
}

func backends(prefix string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata: {name: %s%d}\n", prefix, i)
	}
	return b.String()
}

// TestLimits: each limit refuses the team over it, naming the file and the
// limit, and the other team renders.
func TestLimits(t *testing.T) {
	for name, c := range map[string]struct {
		files map[string]string
		want  string
	}{
		"nesting": {
			files: map[string]string{
				"kustomization.yaml": "resources: [deep.yaml]\n",
				"deep.yaml":          "kind: Backend\nspec: " + strings.Repeat("{a: ", 10_000) + "1" + strings.Repeat("}", 10_000) + "\n",
			},
			want: "teams/search/deep.yaml: line 2: nested more than 64 levels deep, the limit",
		},
		"block nesting": {
			files: map[string]string{
				"kustomization.yaml": "resources: [deep.yaml]\n",
				"deep.yaml":          "kind: Backend\nspec:\n" + blockNest(100),
			},
			want: "nested more than 64 levels deep, the limit",
		},
		"objects per file": {
			files: map[string]string{
				"kustomization.yaml": "resources: [many.yaml]\n",
				"many.yaml":          backends("b", DefaultObjectsPerFile+1),
			},
			want: "teams/search/many.yaml: the file has more than 1000 YAML documents, the limit per file; split it",
		},
		"objects per team": {
			files: map[string]string{
				"kustomization.yaml": "resources: [a.yaml, b.yaml]\n",
				"a.yaml":             backends("a", 300),
				"b.yaml":             backends("b", 201),
			},
			want: "teams/search/kustomization.yaml: teams/search/ lists 501 objects, more than the limit of 500 per team",
		},
		"file size": {
			files: map[string]string{
				"kustomization.yaml": "resources: [big.yaml]\n",
				"big.yaml":           "kind: Backend\nmetadata: {name: big}\n# " + strings.Repeat("x", DefaultFileBytes) + "\n",
			},
			want: "teams/search/big.yaml: the file has 1048615 bytes, over the limit of 1048576 bytes per file",
		},
		"generator file size": {
			files: map[string]string{
				"kustomization.yaml": "configMapGenerator:\n- name: c\n  files: [big.txt]\n",
				"big.txt":            strings.Repeat("x", DefaultFileBytes+1),
			},
			want: "teams/search/big.txt: the file has 1048577 bytes, over the limit",
		},
		"alias in kustomization": {
			files: map[string]string{
				"kustomization.yaml": "resources: &r [b.yaml]\ncomponents: *r\n",
			},
			want: "teams/search/kustomization.yaml: line 2: YAML alias *r: aliases are not allowed",
		},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := Render(limitFS(t, c.files), "overlays/dev", Options{Cache: NewCache(0)})
			if err != nil {
				t.Fatalf("render failed as a whole: %v", err)
			}
			if len(res.Failed) != 1 || res.Failed[0].Team.Team != "search" {
				t.Fatalf("failed = %v, want team search", res.Failed)
			}
			if got := res.Failed[0].Err.Error(); !strings.Contains(got, c.want) {
				t.Errorf("error:\n%s\nwant it to contain:\n%s", got, c.want)
			}
			if !errors.Is(res.Failed[0].Err, ErrLimit) {
				t.Errorf("error does not match ErrLimit: %v", res.Failed[0].Err)
			}
			if len(res.Objects) != 1 || res.Objects[0].Name != "b" {
				t.Errorf("objects = %v, want payments' Backend b alone", objectLines(res))
			}
		})
	}
}

func blockNest(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(strings.Repeat(" ", i+1) + "a:\n")
	}
	b.WriteString(strings.Repeat(" ", n+1) + "b: 1\n")
	return b.String()
}

// TestLimitsConfigurable: a smaller limit applies.
func TestLimitsConfigurable(t *testing.T) {
	fsys := limitFS(t, map[string]string{"kustomization.yaml": "resources: [a.yaml]\n", "a.yaml": backends("a", 3)})
	res, err := Render(fsys, "overlays/dev", Options{Cache: NewCache(0), Limits: Limits{ObjectsPerTeam: 2}})
	if err != nil || len(res.Failed) != 1 {
		t.Fatalf("want search refused at 2 objects per team: %v %v", res, err)
	}
	res, err = Render(fsys, "overlays/dev", Options{Cache: NewCache(0), Limits: Limits{ObjectsPerTeam: 3}})
	if err != nil || len(res.Failed) != 0 || len(res.Objects) != 4 {
		t.Fatalf("want everything at 3 objects per team: %v %v", res, err)
	}
}
