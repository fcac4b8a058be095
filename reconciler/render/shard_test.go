package render

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"

	"gitxds.dev/gitxds/testenv/repogen"
)

// renderBoth renders overlay sharded (with a fresh cache) and whole, and
// fails the test unless both give the same objects, provenance and YAML, or
// the same error. It returns the sharded result (nil on error) and error.
func renderBoth(t *testing.T, fsys filesys.FileSystem, overlay string, opts Options, errorsMayDiffer ...bool) (*Result, error) {
	t.Helper()
	opts.Cache = NewCache(0)
	sh, shErr := Render(fsys, overlay, opts)
	opts.Whole = true
	wh, whErr := Render(fsys, overlay, opts)
	switch {
	case shErr == nil && whErr != nil && len(sh.Failed) > 0:
		// A whole build isolates only the teams whose walk or build fails
		// on its own; the sharded one also those whose shard fails after
		// the build (a duplicate, a forged origin).
		t.Logf("whole build fails where the sharded one leaves out %d team(s): %v", len(sh.Failed), whErr)
		return sh, nil
	case (shErr == nil) != (whErr == nil):
		t.Fatalf("one fails, the other does not:\nsharded: %v\nwhole:   %v", shErr, whErr)
	case shErr != nil:
		if fmt.Sprint(shErr) != fmt.Sprint(whErr) && !(len(errorsMayDiffer) > 0 && errorsMayDiffer[0]) {
			t.Fatalf("errors differ:\nsharded: %v\nwhole:   %v", shErr, whErr)
		}
		return nil, shErr
	}
	if got, want := objectLines(sh), objectLines(wh); got != want {
		t.Errorf("objects differ:\nsharded:\n%s\nwhole:\n%s", got, want)
	}
	if got, want := sh.YAML(), wh.YAML(); !bytes.Equal(got, want) {
		t.Errorf("YAML differs:\nsharded:\n%s\nwhole:\n%s", got, want)
	}
	if strings.Join(sh.Warnings, "\n") != strings.Join(wh.Warnings, "\n") {
		t.Errorf("warnings differ: %q vs %q", sh.Warnings, wh.Warnings)
	}
	return sh, nil
}

// TestShardedEqualsWholeCases: every testdata case, sharded and whole.
func TestShardedEqualsWholeCases(t *testing.T) {
	for _, c := range loadCases(t) {
		t.Run(c.name, func(t *testing.T) {
			res, err := renderBoth(t, c.fs(t), c.opts.Overlay, Options{MaxObjects: c.opts.MaxObjects})
			if err == nil {
				t.Logf("shards=%d whole=%q", res.Shards, res.WholeReason)
			}
		})
	}
}

// featureRepo is a small docs/architecture.md §1 repository whose object names differ
// between teams, so that overlays may move everything into one namespace.
var featureRepo = map[string]string{
	"platform/kustomization.yaml": `resources:
- namespaces.yaml
- gateways.yaml
`,
	"platform/namespaces.yaml": `apiVersion: v1
kind: Namespace
metadata:
  name: a
  labels: {gateway-access: public}
---
apiVersion: v1
kind: Namespace
metadata:
  name: b
`,
	"platform/gateways.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: platform
spec:
  gatewayClassName: gitxds
  listeners:
  - {name: public, port: 8080, protocol: HTTP, hostname: "*.example.com"}
`,
	"teams/a/kustomization.yaml": `namespace: a
resources:
- routes.yaml
- pod.yaml
`,
	"teams/a/routes.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: a-web
  labels: {app: web}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [a.example.com]
  rules:
  - backendRefs: [{group: gitxds.dev, kind: Backend, name: a-web}]
---
apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata:
  name: a-web
spec:
  endpoints: [{ip: {address: 10.0.0.1, port: 8080}}]
`,
	"teams/a/pod.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: a-debug
spec:
  containers:
  - name: debug
    image: busybox:1.36
`,
	"teams/b/kustomization.yaml": `namespace: b
resources:
- routes.yaml
`,
	"teams/b/routes.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: b-api
  labels: {app: api}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [b.example.com]
  rules:
  - backendRefs: [{group: gitxds.dev, kind: Backend, name: b-api}]
---
apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata:
  name: b-api
spec:
  endpoints: [{fqdn: {hostname: api.b.svc, port: 9000}}]
`,
	// b2 renders an object with the id of one of b's.
	"teams/b2/kustomization.yaml": `namespace: b
resources:
- routes.yaml
`,
	"teams/b2/routes.yaml": `apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata:
  name: b-api
spec:
  endpoints: [{ip: {address: 10.0.0.9, port: 9000}}]
`,
	// d's Backend has the name of a's: they collide only once an overlay
	// moves both into one namespace.
	"teams/d/kustomization.yaml": `namespace: d
resources:
- backend.yaml
`,
	"teams/d/backend.yaml": `apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata:
  name: a-web
spec:
  endpoints: [{ip: {address: 10.0.0.5, port: 8080}}]
`,
	"teams/c/kustomization.yaml": `namespace: c
resources:
- cm.yaml
`,
	"teams/c/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data: {k: v}
`,
	"components/debug/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
labels:
- pairs: {debug: "true"}
patches:
- target: {kind: HTTPRoute}
  patch: |-
    - op: add
      path: /metadata/annotations
      value: {debug: "on"}
`,
	"components/extra/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
- extra.yaml
`,
	"components/extra/extra.yaml": `apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata:
  name: extra
  namespace: a
spec:
  endpoints: [{ip: {address: 10.0.0.3, port: 80}}]
`,
}

const featureBases = `resources:
- ../../platform
- ../../teams/a
- ../../teams/b
`

// teamBases: without platform/, whose two Namespace objects kustomize's
// namespace transformer would rename to the same name.
const teamBases = `resources:
- ../../teams/a
- ../../teams/b
`

// overlayFiles are written into every overlay directory (kustomize loads
// patch files only from the kustomization's own tree).
var overlayFiles = map[string]string{
	"gateway-class.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: platform
spec:
  gatewayClassName: gitxds-dev
`,
	"extra.yaml": `apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata:
  name: from-overlay
  namespace: b
spec:
  endpoints: [{ip: {address: 10.0.0.4, port: 80}}]
`,
}

// featureOverlays: name -> (kustomization of overlays/<name>, whether it is
// built as shards). When the overlay does not build, sharded and whole must
// fail alike; with several errors in the repository at once they may name
// different ones first (errorsMayDiffer, shard.go).
var featureOverlays = []struct {
	name            string
	kust            string
	sharded         bool
	errorsMayDiffer bool
}{
	{"plain", featureBases, true, false},
	{"json-patch-target", featureBases + `patches:
- target: {kind: Backend, name: a-web}
  patch: |-
    - op: replace
      path: /spec/endpoints/0/ip/port
      value: 9090
`, true, false},
	{"smp-target-file", featureBases + `patches:
- target: {kind: Gateway}
  path: gateway-class.yaml
`, true, false},
	{"smp-by-id", featureBases + `patches:
- path: gateway-class.yaml
`, false, false},
	{"patches-strategic-merge", featureBases + `patchesStrategicMerge:
- gateway-class.yaml
`, false, false},
	{"patches-json6902", featureBases + `patchesJson6902:
- target: {group: gateway.networking.k8s.io, version: v1, kind: HTTPRoute, name: b-api}
  patch: |-
    - op: add
      path: /spec/hostnames/-
      value: api.b.example.com
`, true, false},
	{"labels-annotations", featureBases + `labels:
- pairs: {env: dev}
  includeSelectors: true
- pairs: {tier: edge}
commonLabels:
  owner: gitops
commonAnnotations:
  note: hello
`, true, false},
	{"namespace", teamBases + `namespace: everything
`, true, false},
	{"namespace-renames-namespaces", featureBases + `namespace: everything
`, true, false},
	{"name-prefix-suffix", featureBases + `namePrefix: dev-
nameSuffix: -v1
`, true, false},
	{"images", featureBases + `images:
- name: busybox
  newName: registry.example.com/busybox
  newTag: "1.37"
`, true, false},
	{"replacements", featureBases + `replacements:
- source: {kind: Namespace, name: a, fieldPath: metadata.labels.gateway-access}
  targets:
  - select: {kind: Backend}
    fieldPaths: [metadata.annotations.access]
    options: {create: true}
`, false, false},
	{"component", featureBases + `components:
- ../../components/debug
`, true, false},
	{"component-with-resources", featureBases + `components:
- ../../components/extra
`, false, false},
	{"sort-fifo", featureBases + `sortOptions:
  order: fifo
`, true, false},
	{"sort-legacy-custom", featureBases + `sortOptions:
  order: legacy
  legacySortOptions:
    orderFirst: [Backend, Namespace]
    orderLast: [Gateway]
`, true, false},
	{"build-metadata", featureBases + `buildMetadata: [originAnnotations, transformerAnnotations, managedByLabel]
namePrefix: x-
`, true, false},
	{"file-resource", featureBases + `- extra.yaml
`, true, false},
	{"legacy-bases", `resources:
- ../../platform
bases:
- ../../teams/a
- ../../teams/b
`, true, false},
	{"duplicate-across-bases", featureBases + `- ../../teams/b2
`, true, false},
	{"same-base-twice", featureBases + `- ../../teams/a
`, true, false},
	{"namespace-conflict", featureBases + `- ../../teams/b2
namespace: b
`, true, true},
	{"collide-after-namespace", teamBases + `- ../../teams/d
namespace: one
`, true, false},
	{"configmap-in-base", featureBases + `- ../../teams/c
`, false, false},
	{"config-map-generator", featureBases + `configMapGenerator:
- name: gen
  literals: [a=b]
`, false, false},
	{"everything-per-object", teamBases + `namespace: all
namePrefix: p-
labels:
- pairs: {env: dev}
commonAnnotations: {a: b}
images:
- {name: busybox, newTag: "2"}
components:
- ../../components/debug
patches:
- target: {kind: Backend}
  patch: |-
    - op: add
      path: /metadata/labels
      value: {backend: "yes"}
`, true, false},
}

func featureFS(t *testing.T) (filesys.FileSystem, string) {
	t.Helper()
	fsys := filesys.MakeFsInMemory()
	dir := t.TempDir()
	files := map[string]string{}
	for k, v := range featureRepo {
		files[k] = v
	}
	for _, o := range featureOverlays {
		files["overlays/"+o.name+"/kustomization.yaml"] = o.kust
		for f, data := range overlayFiles {
			files["overlays/"+o.name+"/"+f] = data
		}
	}
	for p, data := range files {
		if err := fsys.WriteFile("/"+p, []byte(data)); err != nil {
			t.Fatal(err)
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return fsys, dir
}

// TestShardedFeatures renders overlays using the kustomize features users
// put in overlays, sharded, whole and with kubectl kustomize (when on
// PATH): the YAML must be the same bytes, and each overlay must be built
// the way shard.go documents (as shards, or whole).
func TestShardedFeatures(t *testing.T) {
	fsys, dir := featureFS(t)
	_, kubectlErr := exec.LookPath("kubectl")
	for _, o := range featureOverlays {
		t.Run(o.name, func(t *testing.T) {
			overlay := "overlays/" + o.name
			res, err := renderBoth(t, fsys, overlay, Options{}, o.errorsMayDiffer)
			var want []byte
			var kerr error
			if kubectlErr == nil {
				cmd := exec.Command("kubectl", "kustomize", filepath.Join(dir, filepath.FromSlash(overlay)))
				cmd.Env = append(os.Environ(), "KUBECONFIG=/dev/null")
				want, kerr = cmd.Output()
			}
			if err != nil {
				if kubectlErr == nil && kerr == nil {
					t.Fatalf("render failed, kubectl kustomize did not: %v", err)
				}
				t.Logf("error (as the whole build): %v", err)
				return
			}
			if len(res.Failed) > 0 {
				t.Logf("teams left out (kubectl kustomize fails the whole overlay): %v", res.Failed)
				return
			}
			if kubectlErr == nil {
				if kerr != nil {
					t.Fatalf("kubectl kustomize failed, render did not: %v", kerr)
				}
				got := res.YAML()
				if o.name == "build-metadata" {
					// gitxds keeps the annotations the overlay asked for, with
					// the paths a build of the overlay prints; the managed-by
					// label names the kustomize version.
					got, want = nil, nil
				}
				if !bytes.Equal(got, want) {
					t.Errorf("differs from kubectl kustomize\n--- render:\n%s\n--- kubectl:\n%s", got, want)
				}
			}
			if sharded := res.Shards > 0; sharded != o.sharded {
				t.Errorf("sharded=%v, want %v (whole: %s)", sharded, o.sharded, res.WholeReason)
			}
			t.Logf("shards=%d whole=%q", res.Shards, res.WholeReason)
		})
	}
}

// TestShardedGenerated: generated repositories, sharded vs whole vs kubectl.
func TestShardedGenerated(t *testing.T) {
	for _, spec := range []repogen.Spec{{Teams: 2, Routes: 1}, {Teams: 7, Routes: 4, Backends: 2}, {Teams: 12, Routes: 3, Overlays: []string{"dev", "prod"}}} {
		t.Run(fmt.Sprintf("%dx%d", spec.Teams, spec.Routes), func(t *testing.T) {
			files := repogen.Generate(spec)
			fsys, err := files.FS()
			if err != nil {
				t.Fatal(err)
			}
			res, err := renderBoth(t, fsys, "overlays/dev", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Shards != spec.Teams+1 {
				t.Errorf("shards = %d, want %d (%s)", res.Shards, spec.Teams+1, res.WholeReason)
			}
			if len(res.Objects) != spec.Objects() {
				t.Errorf("objects = %d, want %d", len(res.Objects), spec.Objects())
			}
			checkObjects(t, res, false)
			if _, err := exec.LookPath("kubectl"); err == nil {
				dir := t.TempDir()
				if err := files.WriteDir(dir); err != nil {
					t.Fatal(err)
				}
				if want := kubectlKustomize(t, filepath.Join(dir, "overlays", "dev")); !bytes.Equal(res.YAML(), want) {
					t.Errorf("differs from kubectl kustomize")
				}
			}
		})
	}
}

// TestShardCache: a one-team change rebuilds one shard, and the result is
// the whole build's.
func TestShardCache(t *testing.T) {
	spec := repogen.Spec{Teams: 6, Routes: 3}
	fsys, err := repogen.Generate(spec).FS()
	if err != nil {
		t.Fatal(err)
	}
	c := NewCache(0)
	first, err := Render(fsys, "overlays/dev", Options{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	if first.Shards != 7 || first.ShardsCached != 0 {
		t.Fatalf("first render: shards %d, cached %d", first.Shards, first.ShardsCached)
	}
	if err := repogen.ChangeRoute(spec, 2, 1, 1).WriteFS(fsys); err != nil {
		t.Fatal(err)
	}
	second, err := Render(fsys, "overlays/dev", Options{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	if second.ShardsCached != 6 {
		t.Errorf("after a one-team change: %d of %d shards cached, want 6", second.ShardsCached, second.Shards)
	}
	whole, err := Render(fsys, "overlays/dev", Options{Whole: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(second.YAML(), whole.YAML()) || objectLines(second) != objectLines(whole) {
		t.Errorf("cached render differs from a whole build")
	}
	if !bytes.Contains(second.YAML(), []byte(repogen.RoutePrefix(1, 1))) {
		t.Errorf("the change is not rendered")
	}
	// The overlay's own files are part of every shard's key.
	if err := fsys.WriteFile("/overlays/dev/kustomization.yaml", append(repogen.Generate(spec)["overlays/dev/kustomization.yaml"], "commonLabels: {env: dev}\n"...)); err != nil {
		t.Fatal(err)
	}
	third, err := Render(fsys, "overlays/dev", Options{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	if third.ShardsCached != 0 || !bytes.Contains(third.YAML(), []byte("env: dev")) {
		t.Errorf("an overlay change must rebuild every shard: cached %d", third.ShardsCached)
	}
}

// TestShardedProjectExample: the project's example repository, sharded vs
// whole (TestKubectlEquivalenceProjectExample compares with kubectl).
func TestShardedProjectExample(t *testing.T) {
	fsys, overlays := projectExample(t)
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			res, err := renderBoth(t, fsys, overlay, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Shards == 0 {
				t.Errorf("not sharded: %s", res.WholeReason)
			}
		})
	}
}

// freshShardKustomization is shardKustomization as it was before the
// editor: a fresh parse per shard. The editor must give the same bytes.
func freshShardKustomization(data []byte, entries []string) ([]byte, error) {
	rn, err := kyaml.Parse(string(data))
	if err != nil {
		return nil, err
	}
	if _, err := rn.Pipe(kyaml.Clear("bases")); err != nil {
		return nil, err
	}
	list := kyaml.NewListRNode()
	for _, e := range entries {
		if err := list.PipeE(kyaml.Append(kyaml.NewStringRNode(e).YNode())); err != nil {
			return nil, err
		}
	}
	if err := rn.PipeE(kyaml.SetField("resources", list)); err != nil {
		return nil, err
	}
	s, err := rn.String()
	return []byte(s), err
}

// TestShardEditorReuse: one editor used for every shard of an overlay gives,
// shard after shard, the bytes of a fresh parse and edit.
func TestShardEditorReuse(t *testing.T) {
	kusts := map[string]string{
		"flow-and-comments": `# the dev overlay
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../../platform, ../../teams/a] # inline comment
namespace: x
`,
		"bases-only": `bases:
- ../../platform
- ../../teams/a
commonLabels: {env: dev}
`,
		"bases-and-resources": `resources:
  - ../../platform
bases:
  - ../../teams/a
patches:
- target: {kind: HTTPRoute}
  patch: |-
    - op: add
      path: /metadata/labels/x
      value: "y"
`,
		"null-resources": "resources:\nnamespace: dev\n",
		"quoted":         "resources:\n- \"../../platform\"\n- 'yes'\n- \"on\"\n",
	}
	for _, c := range loadCases(t) {
		for _, s := range c.repoFiles() {
			if strings.HasSuffix(s.Name, "kustomization.yaml") {
				kusts[c.name+"/"+s.Name] = string(s.Data)
			}
		}
	}
	for _, o := range featureOverlays {
		kusts["feature/"+o.name] = o.kust
	}
	entries := [][]string{{"../../platform"}, {"../../teams/a"}, {"yes"}, {"a", "b"}, {"../../teams/b"}, {}}
	for name, k := range kusts {
		ed, err := newShardEditor([]byte(k))
		if _, ferr := freshShardKustomization([]byte(k), nil); (err == nil) != (ferr == nil) {
			t.Errorf("%s: editor error %v, fresh error %v", name, err, ferr)
			continue
		} else if err != nil {
			continue
		}
		for _, e := range entries {
			got, err := ed.kustomization(e)
			want, werr := freshShardKustomization([]byte(k), e)
			if (err == nil) != (werr == nil) {
				t.Fatalf("%s %q: editor error %v, fresh error %v", name, e, err, werr)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %q: editor gives\n%s\nfresh parse gives\n%s", name, e, got, want)
			}
		}
	}
}
