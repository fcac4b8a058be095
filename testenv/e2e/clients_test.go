package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/testenv/dataplane"
	"gitxds.dev/gitxds/testenv/grpcjs"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/xdsclient"
)

// caller is what the end-to-end tests need of a real xDS client: gRPC-Go
// (package xdsclient) and grpc-js-xds (package grpcjs) both are one.
type caller interface {
	NodeID() string
	Call(ctx context.Context, target string, md map[string]string) (string, error)
	WaitFor(ctx context.Context, target, serverID string, md map[string]string) error
	Distribution(ctx context.Context, target string, n int, md map[string]string) (map[string]int, error)
}

// clientKinds are the real xDS client implementations every test of
// TestGRPCFeatures runs against. grpc-js-xds skips when node or its
// node_modules is missing, unless GITXDS_REQUIRE_GRPCJS=1 (.ci/run).
var clientKinds = []struct {
	name  string
	start func(t *testing.T, s *stack.Stack, nodeID string) caller
}{
	{"grpc-go", func(t *testing.T, s *stack.Stack, nodeID string) caller {
		return xdsclient.NewT(t, xdsclient.Options{ServerAddr: s.Daemon.XDSAddr, NodeID: nodeID})
	}},
	{"grpc-js", func(t *testing.T, s *stack.Stack, nodeID string) caller {
		return grpcjs.NewT(t, grpcjs.Options{ServerAddr: s.Daemon.XDSAddr, NodeID: nodeID})
	}},
}

// The clients of the subtests are closed when their subtest ends: the
// steps that follow use clients of their own, opened here for the whole
// test.
func sharedClients(t *testing.T, s *stack.Stack, ran map[string]caller) map[string]caller {
	t.Helper()
	out := map[string]caller{}
	for _, k := range clientKinds {
		if ran[k.name] != nil {
			out[k.name] = k.start(t, s, "shared-"+k.name)
		}
	}
	return out
}

// waitFor is c.WaitFor for at most 10 s.
func waitFor(ctx context.Context, c caller, target, serverID string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.WaitFor(ctx, target, serverID, nil)
}

// changeUnderTraffic: both clients call echo.example.com without pause
// while a commit moves it from A to B; no call fails, and both end on B.
func changeUnderTraffic(ctx context.Context, t *testing.T, s *stack.Stack, cs map[string]caller) {
	for name, c := range cs {
		if err := waitFor(ctx, c, host, "A"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]map[string]int{}
	var failures []string
	raced := 0
	for name, c := range cs {
		answers[name] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id, err := c.Call(ctx, host, nil)
				mu.Lock()
				switch {
				case err != nil && name == "grpc-go" && strings.Contains(err.Error(), grpcGoClusterRace):
					raced++
				case err != nil:
					failures = append(failures, name+": "+grpcstatus.Convert(err).String())
				default:
					answers[name][id]++
				}
				mu.Unlock()
			}
		}()
	}
	rev := must[string](t)(s.Commit("route to b", map[string]*string{"teams/echo/routes.yaml": ptr(routeTo("b"))}))
	must[status.Status](t)(s.WaitApplied(20*time.Second, rev))
	for name, c := range cs {
		if err := waitFor(ctx, c, host, "B"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	time.Sleep(200 * time.Millisecond) // calls after the move, too
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d calls failed during the change, first: %s", len(failures), failures[0])
	}
	t.Logf("answers during the change: %v", answers)
	if raced > 0 {
		t.Logf("gRPC-Go: %d calls failed with %q (its own resolver/balancer race, see grpcGoClusterRace)", raced, grpcGoClusterRace)
	}
}

// grpcGoClusterRace: see dataplane.GRPCGoClusterRace. Such calls are
// counted, not failed; any other failure fails the test.
const grpcGoClusterRace = dataplane.GRPCGoClusterRace

// brokenCommit: unparseable YAML is refused; both clients keep B.
func brokenCommit(ctx context.Context, t *testing.T, s *stack.Stack, cs map[string]caller) {
	bad := must[string](t)(s.Commit("broken yaml", map[string]*string{"teams/echo/backends.yaml": ptr("kind: Backend\n  metadata: [\n")}))
	st := must[status.Status](t)(s.WaitAttempted(20*time.Second, bad))
	if rc := readyCond(t, st); rc.Status != metav1.ConditionFalse {
		t.Fatalf("broken YAML: Ready %s %q, want False", rc.Status, rc.Message)
	}
	for name, c := range cs {
		for i := 0; i < 10; i++ {
			if got, err := c.Call(ctx, host, nil); err != nil || got != "B" {
				t.Fatalf("%s after a broken commit: %q %v, want B", name, got, err)
			}
		}
	}
	fixed := must[string](t)(s.Revert(bad))
	must[status.Status](t)(s.WaitApplied(20*time.Second, fixed))
}

// redirectRoute is an HTTPRoute whose only rule redirects.
const redirectRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: moved}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [moved.example.com]
  rules:
  - filters: [{type: RequestRedirect, requestRedirect: {hostname: echo.example.com, statusCode: 301}}]
`

// redirectRule: a valid redirect rule reaches gRPC nodes as something
// every client accepts (gRFC A28 allows only route and
// non_forwarding_action): the revision is applied with no NACK, calls to
// the redirected host fail with UNAVAILABLE, and other routes still answer.
func redirectRule(ctx context.Context, t *testing.T, s *stack.Stack, cs map[string]caller) {
	files := map[string]*string{
		"teams/echo/moved.yaml":         ptr(redirectRoute),
		"teams/echo/kustomization.yaml": ptr("namespace: echo\nresources: [backends.yaml, routes.yaml, more.yaml, moved.yaml]\n"),
	}
	rev := must[string](t)(s.Commit("a redirect rule", files))
	st := must[status.Status](t)(s.WaitAttempted(20*time.Second, rev))
	if st.LastAppliedRevision != rev {
		rc := readyCond(t, st)
		t.Fatalf("redirect rule not applied: Ready %s %s %q", rc.Status, rc.Reason, rc.Message)
	}
	for name, c := range cs {
		if err := waitFor(ctx, c, host, "B"); err != nil {
			t.Errorf("%s: echo.example.com after the redirect rule: %v", name, err)
		}
		if _, err := c.Call(ctx, "moved.example.com", nil); grpcstatus.Code(err) != codes.Unavailable {
			t.Errorf("%s: call to the redirected host: %v, want UNAVAILABLE", name, err)
		}
	}
}

// allACKed: every node of the test ACKed every type it subscribed to at
// the version it is served, and never NACKed anything.
func allACKed(t *testing.T, s *stack.Stack, cs map[string]caller) {
	// The last change may still be on its way to a node: wait (bounded)
	// until every node has ACKed what it is served, then check.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		pending := false
		for _, n := range s.Daemon.XDS.Nodes() {
			pending = pending || !n.HasACKed(n.Served)
		}
		if !pending {
			break
		}
	}
	for _, n := range s.Daemon.XDS.Nodes() {
		nodeACKed(t, n)
	}
	for name, c := range cs {
		if _, ok := s.Daemon.XDS.Node(c.NodeID()); !ok {
			t.Errorf("%s node %s not connected", name, c.NodeID())
		}
	}
}

// nodeACKed: node n ACKed every type it subscribed to at the version it
// is served, and NACKed nothing.
func nodeACKed(t *testing.T, n xds.NodeInfo) {
	t.Helper()
	for typ, ts := range n.Types {
		if ts.LastNACK != nil {
			t.Errorf("node %s (%s) NACKed %s: %s", n.ID, n.UserAgent, typ, ts.LastNACK.Error)
		}
	}
	if !n.HasACKed(n.Served) {
		t.Errorf("node %s (%s) has not ACKed what it is served: %+v", n.ID, n.UserAgent, n.Types)
	}
	if !n.Types[resource.RouteType].Requested {
		t.Errorf("node %s (%s) subscribed to no route configuration", n.ID, n.UserAgent)
	}
	t.Logf("node %s (%s): ACKed all it is served, no NACK", n.ID, strings.TrimSpace(n.UserAgent))
}
