package render

import (
	"errors"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// seedFiles are the YAML files of every render test case (each attack of the
// confinement issue among them), as fuzz seeds.
func seedFiles(f *testing.F) [][]byte {
	var out [][]byte
	for _, c := range loadCases(f) {
		for _, s := range c.repoFiles() {
			out = append(out, s.Data)
		}
	}
	return out
}

// FuzzParseYAML: the pre-parse never panics, and what it accepts holds no
// alias, no nesting deeper than the limit and no more documents than the
// limit.
func FuzzParseYAML(f *testing.F) {
	for _, d := range seedFiles(f) {
		f.Add(d)
	}
	lim := Limits{Depth: 8, ObjectsPerFile: 4}.withDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := lim.parseYAML("f.yaml", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != "f.yaml" {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(docs) > lim.ObjectsPerFile {
			t.Fatalf("%d documents accepted, limit %d", len(docs), lim.ObjectsPerFile)
		}
		for _, d := range docs {
			if err := lim.checkNode("f.yaml", d); err != nil {
				t.Fatalf("accepted a document that fails its own check: %v", err)
			}
		}
	})
}

// readRecorder is a file system that records every path the render reads
// or asks about.
type readRecorder struct {
	filesys.FileSystem
	mu   sync.Mutex
	seen []string
}

func (r *readRecorder) note(p string) {
	r.mu.Lock()
	r.seen = append(r.seen, path.Clean(p))
	r.mu.Unlock()
}
func (r *readRecorder) ReadFile(p string) ([]byte, error) { r.note(p); return r.FileSystem.ReadFile(p) }
func (r *readRecorder) Exists(p string) bool              { r.note(p); return r.FileSystem.Exists(p) }
func (r *readRecorder) IsDir(p string) bool               { r.note(p); return r.FileSystem.IsDir(p) }
func (r *readRecorder) Glob(p string) ([]string, error)   { r.note(p); return r.FileSystem.Glob(p) }

// FuzzConfinement: generated kustomizations of team a, over a fixed tree
// with another team, the platform and files outside both. Whatever they
// say, the render never reads or probes a path outside teams/a/ and the
// overlay, and every object it renders comes from teams/a/.
func FuzzConfinement(f *testing.F) {
	f.Add([]byte("resources: [r.yaml]\n"), []byte("resources: [../r.yaml]\n"))
	f.Add([]byte("resources: [../../b]\nnamePrefix: x-\n"), []byte(""))
	f.Add([]byte("resources: [sub]\n"), []byte("resources: [../../../platform]\n"))
	f.Add([]byte("components: [sub]\n"), []byte("kind: Component\nresources: [../../b/r.yaml]\n"))
	f.Add([]byte("transformers: [sub]\n"), []byte("resources: [t.yaml]\n"))
	f.Add([]byte("configMapGenerator:\n- name: c\n  files: [../../../secret/key]\n"), []byte(""))
	f.Add([]byte("patches:\n- path: ../../b/r.yaml\n"), []byte(""))
	f.Add([]byte("resources: [sub]\n"), []byte("openapi: {path: ../../../secret/schema.json}\n"))
	f.Add([]byte("generators:\n- |-\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n  metadata: {name: g}\n  files: [/etc/passwd]\n"), []byte(""))
	for _, d := range seedFiles(f) {
		f.Add(d, d)
	}
	f.Fuzz(func(t *testing.T, top, sub []byte) {
		fsys := filesys.MakeFsInMemory()
		files := map[string]string{
			"/overlays/dev/kustomization.yaml": "resources: [../../teams/a]\n",
			"/teams/a/kustomization.yaml":      string(top),
			"/teams/a/sub/kustomization.yaml":  string(sub),
			"/teams/a/r.yaml":                  "apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata: {name: a}\n",
			"/teams/a/sub/t.yaml":              "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: t}\nlabels: {x: y}\nfieldSpecs: [{path: metadata/labels, create: true}]\n",
			"/teams/b/kustomization.yaml":      "resources: [r.yaml]\n",
			"/teams/b/r.yaml":                  "apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata: {name: b}\n",
			"/platform/kustomization.yaml":     "resources: [p.yaml]\n",
			"/platform/p.yaml":                 "apiVersion: gitxds.dev/v1alpha1\nkind: RolloutPolicy\nmetadata: {name: default}\n",
			"/secret/key":                      "secret\n",
			"/secret/schema.json":              "{}\n",
		}
		for p, c := range files {
			if err := fsys.WriteFile(p, []byte(c)); err != nil {
				t.Fatal(err)
			}
		}
		rec := &readRecorder{FileSystem: fsys}
		var res *Result
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			res, err = Render(rec, "overlays/dev", Options{Cache: NewCache(0), Limits: Limits{ObjectsPerTeam: 50}})
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("render of\n%q\n%q\ntakes more than 5 s", top, sub)
		}
		allowed := func(p string) bool {
			return p == "/" || p == "/overlays" || p == "/teams" || p == "/teams/a" ||
				strings.HasPrefix(p, "/teams/a/") || strings.HasPrefix(p, "/overlays/dev")
		}
		if i := slices.IndexFunc(rec.seen, func(p string) bool { return !allowed(p) }); i >= 0 {
			t.Fatalf("the render read or probed %s (err=%v)", rec.seen[i], err)
		}
		if err != nil {
			return
		}
		for _, o := range res.Objects {
			if !strings.HasPrefix(o.File, "teams/a/") {
				t.Fatalf("%s rendered from %s", o.ID(), o.File)
			}
		}
	})
}
