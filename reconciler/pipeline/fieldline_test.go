package pipeline

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/status"
)

// An object that does not decode is reported with the line of the field in
// its source file, though kustomize writes the object anew (block style,
// namespace set, comments gone); with no line when the field's
// surroundings are not what the file says (a patch changed them).
func TestFieldErrorLineInTheSourceFile(t *testing.T) {
	const routes = `# The shop's routes.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  rules:
  # the catalog
  - matches: [{path: {type: PathPrefix, value: /catalog}}]
    backendRefs: [{group: gitxds.dev, kind: Backend, name: web}]
  - matches:
    - path: {type: PathPrefix, value: /}
    backendRef:
    - {group: gitxds.dev, kind: Backend, name: web}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: patched}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  rules:
  - backendRefs:
    - {group: gitxds.dev, kind: Backend, name: web, port: "80"}
`
	const backends = `apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata: {name: web}
spec:
  endpoints:
  - ip: {address: 10.0.0.1, port: "8080"}
`
	files := map[string]string{
		"platform/kustomization.yaml": "resources: [gateways.yaml]\n",
		"platform/gateways.yaml": `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: platform}
spec:
  gatewayClassName: gitxds
  listeners:
  - {name: http, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
`,
		"teams/shop/kustomization.yaml": `namespace: shop
resources: [routes.yaml, backends.yaml]
patches:
- target: {kind: HTTPRoute, name: patched}
  patch: |-
    - op: add
      path: /spec/rules/0/backendRefs/0/weight
      value: 2
`,
		"teams/shop/routes.yaml":          routes,
		"teams/shop/backends.yaml":        backends,
		"overlays/dev/kustomization.yaml": "resources: [../../platform, ../../teams/shop]\n",
	}
	fsys := filesys.MakeFsInMemory()
	for p, data := range files {
		if err := fsys.WriteFile("/"+p, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	for _, whole := range []bool{false, true} {
		b, err := New(render.Options{Whole: whole, Cache: render.NewCache(16)}).Run(fsys, "overlays/dev", "test", nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, o := range b.Rejected() {
			got[o.ObjectRef.String()] = status.Line(o)
		}
		want := map[string]string{
			"HTTPRoute shop/web": `teams/shop/routes.yaml:13: HTTPRoute shop/web: Invalid: spec.rules[1].backendRef: unknown field (did you mean "backendRefs"?)`,
			// The team's patch changed the backendRef that holds the
			// port: the file does not say what was rendered there.
			"HTTPRoute shop/patched": `teams/shop/routes.yaml: HTTPRoute shop/patched: Invalid: spec.rules[0].backendRefs[0].port: expected integer, got string "80"`,
			"Backend shop/web":       `teams/shop/backends.yaml:6: Backend shop/web: Invalid: spec.endpoints[0].ip.port: expected integer, got string "8080"`,
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("whole=%v %s:\n got %s\nwant %s", whole, k, got[k], w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("whole=%v rejected: %s", whole, strings.Join(mapValues(got), "\n"))
		}
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
