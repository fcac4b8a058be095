package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/dataplane"
	"gitxds.dev/gitxds/testenv/stack"
)

// ownedRepo is the spine's repository with team echo owning its hostname
// (or not, owned=false) and team aaa (first by name) known to the platform.
func ownedRepo(ups map[string]string, owned bool) map[string]string {
	files := repo(ups["A"], ups["B"])
	files["platform/namespaces.yaml"] = namespaces(owned)
	return files
}

func namespaces(owned bool) string {
	ann := ""
	if owned {
		ann = "  annotations: {gitxds.dev/hostnames: " + host + "}\n"
	}
	return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: echo\n" + ann +
		"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: aaa\n"
}

// intruder is team aaa: a Backend at the address of upstream B and an
// HTTPRoute for echo's hostname with the given match.
func intruder(ups map[string]string, match string) map[string]*string {
	return map[string]*string{
		"teams/aaa/kustomization.yaml": ptr("namespace: aaa\nresources: [aaa.yaml]\n"),
		"teams/aaa/aaa.yaml": ptr(`apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata: {name: mine}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: ` + ups["B"][strings.LastIndex(ups["B"], ":")+1:] + `}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: steal}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [` + host + `]
  rules:
  - matches: [` + match + `]
    backendRefs: [{group: gitxds.dev, kind: Backend, name: mine}]
`),
		"overlays/dev/kustomization.yaml": ptr("resources: [../../platform, ../../teams/echo, ../../teams/aaa]\n"),
	}
}

func objectStatus(st status.Status, id string) (status.Object, bool) {
	for _, o := range st.Objects {
		if o.ObjectRef.String() == id {
			return o, true
		}
	}
	return status.Object{}, false
}

// TestOwnersTrafficUntouched: team echo serves echo.example.com to real
// gRPC clients that call continuously. Team aaa pushes a route for that
// hostname with a more specific match (which Gateway API precedence would
// serve first): echo owns the hostname, so the route is not attached and
// its status names the owner. Then the platform drops the ownership and
// aaa copies echo's match: echo, accepted first, keeps it (aaa is first by
// name). Not one call fails, and every call is answered by echo's backend.
func TestOwnersTrafficUntouched(t *testing.T) {
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr()}
	s, err := stack.Start(context.Background(), stack.Options{
		Files: ownedRepo(ups, true), Upstreams: ups, Interval: 100 * time.Millisecond, Log: testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	head := "main@sha1:" + must[string](t)(s.Repo.Head())
	must[status.Status](t)(s.WaitApplied(20*time.Second, head))
	g := clients(ctx, t, s, 2, "A")
	dp, err := dataplane.StartMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	traffic := dataplane.StartTraffic(dp, g.callers(), host, 10*time.Millisecond, 2*time.Second)
	defer traffic.Stop()

	// 1. A more specific match on echo's owned hostname.
	files := intruder(ups, `{path: {type: Exact, value: /grpc.testing.TestService/UnaryCall}}`)
	rev := must[string](t)(s.Commit("team aaa takes echo's hostname", files))
	st := must[status.Status](t)(s.WaitApplied(20*time.Second, rev))
	o, ok := objectStatus(st, "HTTPRoute aaa/steal")
	if c := status.Problem(o); !ok || c == nil || c.Reason != "HostnameNotOwned" || !strings.Contains(c.Message, `namespace "echo"`) {
		t.Errorf("the newcomer's status %+v does not name the owner (reason HostnameNotOwned)", o)
	}
	time.Sleep(500 * time.Millisecond) // calls after the push reached the clients

	// 2. Nobody owns it any more; aaa copies echo's match.
	files = intruder(ups, `{path: {type: PathPrefix, value: /}}`)
	files["platform/namespaces.yaml"] = ptr(namespaces(false))
	rev = must[string](t)(s.Commit("platform drops the ownership; aaa copies echo's match", files))
	st = must[status.Status](t)(s.WaitApplied(20*time.Second, rev))
	o, ok = objectStatus(st, "HTTPRoute aaa/steal")
	if c := status.Problem(o); !ok || c == nil || c.Reason != "Shadowed" || !strings.Contains(c.Message, "HTTPRoute echo/echo") || !strings.Contains(c.Message, "first accepted in revision "+head) {
		t.Errorf("the newcomer's status %+v does not name echo/echo, first accepted in %s", o, head)
	}
	time.Sleep(500 * time.Millisecond)
	traffic.Stop()

	answers := traffic.Answers()
	onlyAnswered(t, "owner's traffic", answers, ids(g.all()), "A")
	calls := 0
	for _, a := range answers {
		for _, n := range a {
			calls += n
		}
	}
	t.Logf("%d calls by %d clients", calls, len(g.all()))
}

// TestPrecedenceAcrossListeners: a catch-all listener and a *.example.com
// listener share port 8080. Team aaa's "/" for echo.example.com is on the
// catch-all listener, team echo's "/" on the wildcard listener: the most
// specific listener hostname comes first, so real gRPC clients calling
// echo.example.com reach echo's backend, whatever the listeners' order.
func TestPrecedenceAcrossListeners(t *testing.T) {
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr()}
	files := ownedRepo(ups, false)
	files["platform/gateways.yaml"] = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: platform}
spec:
  gatewayClassName: gitxds
  listeners:
  - {name: any, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - {name: wild, port: 8080, protocol: HTTP, hostname: "*.example.com", allowedRoutes: {namespaces: {from: All}}}
`
	files["teams/echo/routes.yaml"] = strings.Replace(routeTo("a"), "namespace: platform}", "namespace: platform, sectionName: wild}", 1)
	for name, content := range intruder(ups, `{path: {type: PathPrefix, value: /}}`) {
		files[name] = strings.Replace(*content, "namespace: platform}", "namespace: platform, sectionName: any}", 1)
	}
	s, err := stack.Start(context.Background(), stack.Options{Files: files, Upstreams: ups, Interval: 100 * time.Millisecond, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	head := "main@sha1:" + must[string](t)(s.Repo.Head())
	must[status.Status](t)(s.WaitApplied(20*time.Second, head))
	c, err := s.Client("client-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	assertAnswers(ctx, t, c, "A", 20)
}

// TestBackendAddressPolicy: a team's Backend at the cloud metadata address
// is refused (the built-in link-local rule), its route says so, and the
// requests for it get no answer from anywhere, while the rest is served.
func TestBackendAddressPolicy(t *testing.T) {
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr()}
	s := startStack(t, ups)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	head := "main@sha1:" + must[string](t)(s.Repo.Head())
	must[status.Status](t)(s.WaitApplied(20*time.Second, head))
	route := strings.Replace(routeTo("a"), "  rules:\n", `  rules:
  - matches: [{path: {type: PathPrefix, value: /}, headers: [{name: x-meta, value: "1"}]}]
    backendRefs: [{group: gitxds.dev, kind: Backend, name: metadata}]
`, 1)
	meta := `---
apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata: {name: metadata}
spec:
  endpoints: [{ip: {address: 169.254.169.254, port: 80}}]
`
	raw, err := os.ReadFile(filepath.Join(s.Repo.WorkDir(), "teams/echo/backends.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	backends := string(raw)
	rev := must[string](t)(s.Commit("a backend at the metadata address", map[string]*string{
		"teams/echo/backends.yaml": ptr(backends + meta), "teams/echo/routes.yaml": ptr(route)}))
	st := must[status.Status](t)(s.WaitApplied(20*time.Second, rev))
	be, _ := objectStatus(st, "Backend echo/metadata")
	if c := status.Problem(be); c == nil || c.Reason != "AddressNotAllowed" || !strings.Contains(c.Message, "link-local (169.254.0.0/16)") {
		t.Errorf("Backend status %+v; want AddressNotAllowed naming the link-local rule", be)
	}
	rt, _ := objectStatus(st, "HTTPRoute echo/echo")
	if c := status.Problem(rt); c == nil || c.Type != "ResolvedRefs" || !strings.Contains(c.Message, "link-local") {
		t.Errorf("route status %+v; want ResolvedRefs=False naming the rule", rt)
	}
	c, err := s.Client("client-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	assertAnswers(ctx, t, c, "A", 5)
	if got, err := c.Call(ctx, host, map[string]string{"x-meta": "1"}); err == nil {
		t.Errorf("a request for the refused backend was answered by %q", got)
	}
}
