package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/kubeapi"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/upstream"
	"gitxds.dev/gitxds/testenv/xdsclient"
)

// serviceRepo is a platform Gateway and team ns's standard Gateway API
// routes to Service web port 8080: an HTTPRoute and a GRPCRoute, with
// backendRefs as any Gateway API guide writes them (no group, no kind).
func serviceRepo(ns string) map[string]string {
	return map[string]string{
		"platform/kustomization.yaml": "resources: [namespaces.yaml, gateways.yaml]\n",
		"platform/namespaces.yaml":    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + ns + "\n",
		"platform/gateways.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: platform}
spec:
  gatewayClassName: gitxds
  listeners:
  - {name: http, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
`,
		"teams/" + ns + "/kustomization.yaml": "namespace: " + ns + "\nresources: [routes.yaml]\n",
		"teams/" + ns + "/routes.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [web.example.com]
  rules:
  - backendRefs: [{name: web, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [grpc.example.com]
  rules:
  - backendRefs: [{name: web, port: 8080}]
`,
		"overlays/dev/kustomization.yaml": "resources: [../../platform, ../../teams/" + ns + "]\n",
	}
}

// Kubernetes refuses loopback addresses in EndpointSlices ("may not be in
// the loopback range"), and tests reach nothing but loopback: the slices
// list the upstreams at addresses of TEST-NET-1 (RFC 5737, never routed),
// and the clients' dialer sends a connection to one of them to 127.0.0.1,
// same port. No packet leaves loopback.
var testNet = netip.MustParsePrefix("192.0.2.0/24")

func testNetAddr(i int) string { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String() }

func loopbackDialer(ctx context.Context, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !testNet.Contains(ap.Addr()) {
		return nil, fmt.Errorf("test dialer: %s is not a TEST-NET-1 address of an upstream", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()).String())
}

// webService is Service web: port 8080, named grpc, whose target port
// differs per EndpointSlice (every upstream listens on its own port of
// 127.0.0.1), so endpoints are found through the port's name.
func webService(ns string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "grpc", Port: 8080, Protocol: corev1.ProtocolTCP, AppProtocol: ptr("grpc")},
		}},
	}
}

// upstreamSlice is an EndpointSlice of Service web holding upstream u, at
// TEST-NET-1 address number i.
func upstreamSlice(ns string, u *upstream.Server, i int, ready, serving, terminating bool) *discoveryv1.EndpointSlice {
	port := int32(u.Port())
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-" + u.Name(), Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("grpc"), Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{testNetAddr(i)},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating}}},
	}
}

// TestServiceEndpointsFromKubernetes: standard routes to a Service are
// served to real gRPC-Go xDS clients from the EndpointSlices of a real
// API server, and follow an endpoint added, one marked not ready, one
// draining (serving and terminating) and one deleted, each within a
// second, with no commit: the applied revision and the Set each node is
// served stay the same. It measures how long an EndpointSlice change takes
// to reach the clients' calls (BENCHMARKS.md).
func TestServiceEndpointsFromKubernetes(t *testing.T) {
	srv := kubeapi.Start(t)
	// Unthrottled: client-go's default of 5 requests a second would time
	// the test's own writes, not gitxds.
	kc := rest.CopyConfig(srv.Config)
	kc.QPS, kc.Burst = 1000, 1000
	cs := must[kubernetes.Interface](t)(kubernetes.NewForConfig(kc))
	ns := srv.Namespace(t, "shop")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ups := map[string]*upstream.Server{}
	num := map[string]int{"a": 1, "b": 2, "c": 3}
	for name := range num {
		ups[name] = upstream.StartT(t, name)
	}
	slice := func(name string, ready, serving, terminating bool) *discoveryv1.EndpointSlice {
		return upstreamSlice(ns, ups[name], num[name], ready, serving, terminating)
	}
	slices := cs.DiscoveryV1().EndpointSlices(ns)
	must[*corev1.Service](t)(cs.CoreV1().Services(ns).Create(ctx, webService(ns), metav1.CreateOptions{}))
	for _, name := range []string{"a", "b"} {
		must[*discoveryv1.EndpointSlice](t)(slices.Create(ctx, slice(name, true, true, false), metav1.CreateOptions{}))
	}

	s, err := stack.Start(context.Background(), stack.Options{Files: serviceRepo(ns), Interval: time.Hour, Kube: cs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	head := must[string](t)(s.Repo.Head())
	rev := "main@sha1:" + head
	st := must[status.Status](t)(s.WaitApplied(30*time.Second, rev))
	for _, o := range status.Rejected(st.Objects) {
		t.Fatalf("rejected: %s", status.Line(o))
	}
	c := must[*clientT](t)(xdsclient.New(xdsclient.Options{ServerAddr: s.Daemon.XDSAddr, NodeID: "node-1", Insecure: true,
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(loopbackDialer)}}))
	defer c.Close()

	// answered waits until n calls in a row to each target are answered
	// by upstreams of want only, all of them, and returns when that run
	// began or when its last upstream first answered, whichever is later.
	targets := []string{"web.example.com", "grpc.example.com"}
	answered := func(want ...string) (time.Time, error) {
		allowed := map[string]bool{}
		for _, w := range want {
			allowed[w] = true
		}
		const n = 12
		deadline := time.Now().Add(10 * time.Second)
		var since time.Time
		for run, seen := 0, map[string]bool{}; ; {
			start := time.Now()
			ok := true
			for _, target := range targets {
				id, err := c.Call(ctx, target, nil)
				if err != nil || !allowed[id] {
					ok = false
				} else if !seen[id] {
					seen[id] = true
					if len(seen) == len(want) && run > 0 {
						since = start
					}
				}
			}
			if !ok {
				run, since, seen = 0, time.Time{}, map[string]bool{}
			} else {
				if run == 0 {
					since = start
				}
				run++
			}
			if run >= n && len(seen) == len(want) {
				return since, nil
			}
			if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("not answered by exactly %v within 10s (seen %v)", want, seen)
			}
		}
	}
	if _, err := answered("a", "b"); err != nil {
		t.Fatalf("initial endpoints: %v", err)
	}

	// change applies one EndpointSlice change and returns how long until
	// the calls are answered by want only.
	change := func(what string, apply func() error, want ...string) time.Duration {
		t.Helper()
		start := time.Now()
		if err := apply(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		at, err := answered(want...)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		d := max(at.Sub(start), 0)
		if d > time.Second {
			t.Errorf("%s: took %s to reach the clients, want at most 1s", what, d)
		}
		t.Logf("%s: %s", what, d)
		return d
	}
	update := func(name string, ready, serving, terminating bool) func() error {
		return func() error {
			_, err := slices.Update(ctx, slice(name, ready, serving, terminating), metav1.UpdateOptions{})
			return err
		}
	}
	var lat []time.Duration
	lat = append(lat, change("add endpoint c", func() error {
		_, err := slices.Create(ctx, slice("c", true, true, false), metav1.CreateOptions{})
		return err
	}, "a", "b", "c"))
	lat = append(lat, change("a not ready", update("a", false, false, false), "b", "c"))
	lat = append(lat, change("a ready again", update("a", true, true, false), "a", "b", "c"))
	lat = append(lat, change("a draining (serving, terminating)", update("a", false, true, true), "b", "c"))
	lat = append(lat, change("delete endpoint b", func() error {
		return slices.Delete(ctx, "web-b", metav1.DeleteOptions{})
	}, "c"))
	for i := range 10 {
		lat = append(lat, change("c not ready, a ready "+strconv.Itoa(i), func() error {
			if err := update("a", true, true, false)(); err != nil {
				return err
			}
			return update("c", false, false, false)()
		}, "a"))
		lat = append(lat, change("c ready "+strconv.Itoa(i), update("c", true, true, false), "a", "c"))
	}

	// Discovery, not configuration: no revision, no rollout.
	st = s.Status()
	if st.LastAppliedRevision != rev || st.LastAttemptedRevision != rev {
		t.Errorf("revision moved without a commit: applied %s, attempted %s, want %s", st.LastAppliedRevision, st.LastAttemptedRevision, rev)
	}
	if set := s.Daemon.XDS.Served("node-1"); set == nil || set.Revision != rev {
		t.Errorf("node-1 is served %v, want the Set of %s", set, rev)
	}
	if n, ok := s.Daemon.XDS.Node("node-1"); !ok || len(n.Failed) > 0 {
		t.Errorf("node-1 rejected a Set: %+v", n.Failed)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("EndpointSlice change to gRPC clients' calls, %d changes: median %s, max %s", len(lat), lat[len(lat)/2], lat[len(lat)-1])
}
