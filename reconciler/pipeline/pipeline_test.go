package pipeline

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/golden"
)

// TestExampleOverlays runs the whole pipeline on the bundled example
// repository (repo-layout/ + overlays/): every object of every environment
// is accepted, and the status plus the xDS per type match the golden files
// testdata/example-<env>.golden.yaml (golden, rewritten by
// go test ./reconciler/pipeline -update).
func TestExampleOverlays(t *testing.T) {
	fsys, err := source.WorktreeFS("../..", source.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var goldens []string
	for _, env := range []string{"dev", "staging", "production"} {
		path := filepath.Join("testdata", "example-"+env+".golden.yaml")
		goldens = append(goldens, path)
		t.Run(env, func(t *testing.T) {
			b, err := New(render.Options{}).Run(fsys, "overlays/"+env, "example", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range b.Rejected() {
				t.Errorf("rejected: %s", status.Line(o))
			}
			golden.File(t, path, exampleGolden(t, b))
		})
	}
	golden.Orphans(t, "testdata/example-*.golden.yaml", goldens)
}

// scopedDiff is what the scoped Envoy class serves differently from the
// per-port one: only the types whose versions differ.
func scopedDiff(set *snapshot.Set) *snapshot.Resources {
	r, out := set.Classes[snapshot.EnvoyScoped], &snapshot.Resources{}
	differs := func(t string) bool {
		return set.Version(snapshot.EnvoyScoped, t) != set.Version(snapshot.Envoy, t)
	}
	if differs(resource.ListenerType) {
		out.Listeners = r.Listeners
	}
	if differs(resource.RouteType) {
		out.Routes = r.Routes
	}
	if differs(resource.ClusterType) {
		out.Clusters = r.Clusters
	}
	if differs(resource.EndpointType) {
		out.Endpoints = r.Endpoints
	}
	if differs(resource.ScopedRouteType) {
		out.ScopedRoutes = r.ScopedRoutes
	}
	if differs(resource.SecretType) {
		out.Secrets = r.Secrets
	}
	return out
}

// exampleGolden is the status of every object, then the xDS of each class
// per type (of the scoped Envoy class, what differs from the per-port one).
func exampleGolden(t *testing.T, b *Result) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString("# status\n")
	for _, o := range b.Model.Status {
		c := o.Conditions
		var parts []string
		for _, x := range c {
			parts = append(parts, x.Type+"="+string(x.Status)+"/"+x.Reason)
		}
		buf.WriteString("# " + o.File + ": " + o.ObjectRef.String() + ": " + strings.Join(parts, " ") + "\n")
	}
	for _, class := range snapshot.Classes {
		res := b.Set.Classes[class]
		if class == snapshot.EnvoyScoped {
			res = scopedDiff(b.Set)
		}
		one := snapshot.New(b.Revision, map[snapshot.Class]*snapshot.Resources{class: res})
		js, err := snapshot.RenderJSON(one)
		if err != nil {
			t.Fatal(err)
		}
		y, err := yaml.JSONToYAML(js)
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("---\n# class: " + string(class) + "\n")
		buf.Write(y)
	}
	return buf.Bytes()
}

// The example production overlay denies loopback and the Kubernetes API to
// Backends (repo-layout/platform/production); dev, with the built-in rules
// only, allows both.
func TestExampleProductionAddressPolicy(t *testing.T) {
	fsys, err := source.WorktreeFS("../..", source.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	patch := func(overlay string) string {
		return `resources: [../` + overlay + `]
patches:
- target: {kind: Backend, namespace: payments, name: payments-v1}
  patch: |-
    - op: replace
      path: /spec/endpoints
      value: [{ip: {address: 127.0.0.1, port: 19101}}]
- target: {kind: Backend, namespace: payments, name: payments-v2}
  patch: |-
    - op: replace
      path: /spec/endpoints
      value: [{fqdn: {hostname: kubernetes.default.svc.cluster.local, port: 443}}]
`
	}
	for overlay, wantRefused := range map[string]bool{"production": true, "dev": false} {
		dir := "overlays/test-" + overlay
		if err := fsys.MkdirAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := fsys.WriteFile(dir+"/kustomization.yaml", []byte(patch(overlay))); err != nil {
			t.Fatal(err)
		}
		b, err := New(render.Options{}).Run(fsys, dir, "example", nil)
		if err != nil {
			t.Fatal(err)
		}
		refused := map[string]string{}
		for _, o := range b.Rejected() {
			if c := status.Problem(o); c != nil && c.Reason == "AddressNotAllowed" {
				refused[o.Name] = c.Message
			}
		}
		if wantRefused && (len(refused) != 2 || !strings.Contains(refused["payments-v1"], "127.0.0.0/8") || !strings.Contains(refused["payments-v2"], "kubernetes.default.svc*")) {
			t.Errorf("%s: refused %v; want payments-v1 (loopback) and payments-v2 (Kubernetes API)", overlay, refused)
		}
		if !wantRefused && len(refused) != 0 {
			t.Errorf("%s: refused %v; want none (no policy but the built-in rules)", overlay, refused)
		}
	}
}
