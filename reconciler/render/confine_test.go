package render

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizationFields classifies every field of types.Kustomization: the
// walker checks the ones that name files or directories or run something;
// the others name nothing. A kustomize upgrade that adds a field fails this
// test until the field is classified (and, if it names paths, checked).
var kustomizationFields = map[string]string{
	"resources": "checked", "bases": "checked", "components": "checked",
	"crds": "checked", "configurations": "checked", "openapi": "checked",
	"patchesStrategicMerge": "checked", "patchesJson6902": "checked", "patches": "checked",
	"replacements": "checked", "configMapGenerator": "checked", "secretGenerator": "checked",
	"generators": "checked", "transformers": "checked", "validators": "checked",
	"helmGlobals": "refused", "helmCharts": "refused", "helmChartInflationGenerator": "refused",
	"commonAnnotations": "checked",

	"metadata": "none", "namePrefix": "none", "nameSuffix": "none", "namespace": "none",
	"commonLabels": "none", "labels": "none", "images": "none", "imageTags": "none",
	"replicas": "none", "vars": "none", "sortOptions": "none",
	"generatorOptions": "none", "buildMetadata": "none",
}

func TestKustomizationFieldsClassified(t *testing.T) {
	typ := reflect.TypeOf(types.Kustomization{})
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if f.Anonymous {
			continue // TypeMeta
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if _, ok := kustomizationFields[name]; !ok {
			t.Errorf("types.Kustomization field %q (%s) is not classified: does it name files?", name, f.Name)
		}
	}
}

// TestBuildRefusesPlugins runs the build stage alone, without the walker, to
// show the second line of defence: kustomize itself, as configured, refuses
// exec plugins and helm.
func TestBuildRefusesPlugins(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"exec plugin": {
			"/k/kustomization.yaml": "transformers:\n- sed.yaml\n",
			"/k/sed.yaml":           "apiVersion: example.com/v1\nkind: Sed\nmetadata:\n  name: sed\n",
		},
		"container function": {
			"/k/kustomization.yaml": "generators:\n- fn.yaml\n",
			"/k/fn.yaml": "apiVersion: example.com/v1\nkind: Gen\nmetadata:\n  name: gen\n" +
				"  annotations:\n    config.kubernetes.io/function: |\n      container:\n        image: example.com/gen:v1\n",
		},
		"helm": {
			"/k/kustomization.yaml": "helmCharts:\n- name: chart\n  repo: https://charts.example.com\n",
		},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := filesys.MakeFsInMemory()
			for p, c := range files {
				if err := fsys.WriteFile(p, []byte(c)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := build(fsys, "/k", false); err == nil {
				t.Fatal("build ran a plugin")
			} else {
				t.Log(err)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	fsys := filesys.MakeFsInMemory()
	write(t, fsys, "/overlays/dev/kustomization.yaml", "commonLabels: {env: dev}\nresources: [ns.yaml]\n")
	write(t, fsys, "/overlays/dev/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
	res, err := Render(fsys, "overlays/dev", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0], "overlays/dev/kustomization.yaml: Warning: 'commonLabels' is deprecated") {
		t.Errorf("warnings: %q", res.Warnings)
	}
}

// TestConcurrentRenders renders in parallel (run with -race): builds share
// kustomize's process-wide OpenAPI state, which build serializes.
func TestConcurrentRenders(t *testing.T) {
	fsys := filesys.MakeFsInMemory()
	write(t, fsys, "/overlays/dev/kustomization.yaml", "resources: [ns.yaml]\nnamePrefix: dev-\n")
	write(t, fsys, "/overlays/dev/ns.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
	first, err := Render(fsys, "overlays/dev", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := Render(fsys, "overlays/dev", Options{})
			if err == nil && string(res.YAML()) != string(first.YAML()) {
				err = errors.New("renders differ")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "teams/a/routes.yaml", Object: "HTTPRoute a/web", Err: errors.New("boom")}
	if got, want := e.Error(), "teams/a/routes.yaml: HTTPRoute a/web: boom"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e = refuse("teams/a/kustomization.yaml", ErrRemote, "resource %q is remote", "https://x")
	if !errors.Is(e, ErrRemote) || errors.Is(e, ErrPlugin) {
		t.Errorf("errors.Is: %v", e)
	}
	if got, want := e.Error(), `teams/a/kustomization.yaml: resource "https://x" is remote`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func write(t testing.TB, fsys filesys.FileSystem, p, content string) {
	t.Helper()
	if err := fsys.WriteFile(p, []byte(content)); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAPISchemaDoesNotLeak renders an overlay with a custom schema
// (listeners merge by name), then one without: the second must not see the
// first one's schema, which kustomize keeps in process-wide state.
func TestOpenAPISchemaDoesNotLeak(t *testing.T) {
	var c *testCase
	for _, x := range loadCases(t) {
		if x.name == "openapi-listeners" {
			c = x
		}
	}
	if c == nil {
		t.Fatal("no openapi-listeners case")
	}
	fsys := c.fs(t)
	k, err := fsys.ReadFile("/overlays/dev/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	noSchema := strings.Replace(string(k), "openapi:\n  path: schema.json\n", "", 1)
	write(t, fsys, "/overlays/plain/kustomization.yaml", noSchema)
	for i, tc := range []struct {
		overlay      string
		keepInternal bool
	}{{"overlays/dev", true}, {"overlays/plain", false}, {"overlays/dev", true}} {
		res, err := Render(fsys, tc.overlay, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(res.YAML()), "name: internal"); got != tc.keepInternal {
			t.Errorf("render %d (%s): internal listener kept=%v, want %v\n%s", i, tc.overlay, got, tc.keepInternal, res.YAML())
		}
	}
}

// TestKustomizationMemoUnmodified renders every case twice, sharded and
// whole, then checks that every kustomization the memo holds for their
// files still equals a fresh parse (renders share them and must only read
// them), and that a second render gives the first one's result.
func TestKustomizationMemoUnmodified(t *testing.T) {
	cases := loadCases(t)
	for _, c := range cases {
		for _, whole := range []bool{false, true} {
			fsys := c.fs(t)
			opts := Options{MaxObjects: c.opts.MaxObjects, Whole: whole, Cache: NewCache(0)}
			first, ferr := Render(fsys, c.opts.Overlay, opts)
			opts.Cache = NewCache(0)
			second, serr := Render(fsys, c.opts.Overlay, opts)
			if fmt.Sprint(ferr) != fmt.Sprint(serr) {
				t.Errorf("%s: errors differ: %v, then %v", c.name, ferr, serr)
			} else if ferr == nil && (!bytes.Equal(first.YAML(), second.YAML()) || objectLines(first) != objectLines(second) ||
				strings.Join(first.Warnings, "\n") != strings.Join(second.Warnings, "\n")) {
				t.Errorf("%s: a second render differs", c.name)
			}
		}
	}
	checked := 0
	for _, c := range cases {
		for _, s := range c.repoFiles() {
			pk, ok := kustomizationMemo.get(sha256.Sum256(s.Data))
			if !ok {
				continue
			}
			fresh, err := parseKustomization(s.Name, s.Data, Limits{}.withDefaults())
			if err != nil {
				t.Errorf("%s %s: memoized, but does not parse: %v", c.name, s.Name, err)
				continue
			}
			if !reflect.DeepEqual(pk, fresh) {
				t.Errorf("%s %s: the memoized kustomization was modified:\n%+v\nfresh:\n%+v", c.name, s.Name, pk.k, fresh.k)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Errorf("only %d kustomizations checked", checked)
	}
}
