package stack

import (
	"fmt"
	"strings"
)

// EchoHost is the hostname of the echo repository's route.
const EchoHost = "echo.example.com"

// EchoRepo is a small repository in the docs/architecture.md §1 layout: a platform with one
// Gateway, team echo with Backends a and b (at the given addresses) and an
// HTTPRoute for EchoHost to a, and overlays/dev over both.
func EchoRepo(backendA, backendB string) map[string]string {
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
		"teams/echo/backends.yaml": fmt.Sprintf(`apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata: {name: a}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: %s}}]
---
apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata: {name: b}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: %s}}]
`, port(backendA), port(backendB)),
		"teams/echo/routes.yaml":          EchoRoute("a"),
		"overlays/dev/kustomization.yaml": "resources: [../../platform, ../../teams/echo]\n",
	}
}

func port(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

// EchoRoute is team echo's HTTPRoute, sending everything to backend.
func EchoRoute(backend string) string {
	return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [` + EchoHost + `]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{group: gitxds.dev, kind: Backend, name: ` + backend + `}]
`
}
