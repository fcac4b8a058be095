// Package echorepo is the small config repository the tests build: a
// platform with one Gateway, team echo with its Backends and an HTTPRoute
// for Host, and overlays/dev over both, in the layout of
// docs/architecture.md section 1. It imports nothing of gitxds, so the
// reconciler's and the daemon's own tests use it as testenv/stack does.
package echorepo

// Host is the hostname of team echo's route.
const Host = "echo.example.com"

// Overlay is the overlay Files builds.
const Overlay = "overlays/dev"

// Files is the repository, with backends as teams/echo/backends.yaml (one
// or more Backend documents) and team echo's route to route.
func Files(backends, route string) map[string]string {
	return map[string]string{
		"platform/kustomization.yaml": "resources: [namespaces.yaml, gateways.yaml]\n",
		"platform/namespaces.yaml":    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: echo\n",
		"platform/gateways.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: platform}
spec:
  gatewayClassName: gitxds
  listeners:
  - {name: http, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
`,
		"teams/echo/kustomization.yaml": "namespace: echo\nresources: [backends.yaml, routes.yaml]\n",
		"teams/echo/backends.yaml":      backends,
		"teams/echo/routes.yaml":        Route(route),
		Overlay + "/kustomization.yaml": "resources: [../../platform, ../../teams/echo]\n",
	}
}

// Backend is a Backend document named name with one endpoint,
// 127.0.0.1:port. Join several with "---\n".
func Backend(name, port string) string {
	return `apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata: {name: ` + name + `}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: ` + port + `}}]
`
}

// Route is team echo's HTTPRoute for Host, sending everything to the
// Backend named backend.
func Route(backend string) string {
	return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [` + Host + `]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{group: gitxds.dev, kind: Backend, name: ` + backend + `}]
`
}
