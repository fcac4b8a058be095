package e2e

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/stack"
)

// featureRepo: a GRPCRoute with a header match and a 75/25 split, an
// HTTPRoute with a request timeout, and a BackendTrafficPolicy retrying
// UNAVAILABLE — what proxyless gRPC supports.
func featureRepo(addr map[string]string) map[string]string {
	backend := func(name string) string {
		return fmt.Sprintf("apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata: {name: %s}\nspec:\n  endpoints: [{ip: {address: 127.0.0.1, port: %s}}]\n---\n",
			strings.ToLower(name), addr[name][strings.LastIndex(addr[name], ":")+1:])
	}
	files := stack.EchoRepo(addr["A"], addr["B"])
	files["teams/echo/kustomization.yaml"] = "namespace: echo\nresources: [backends.yaml, routes.yaml, more.yaml]\n"
	files["teams/echo/more.yaml"] = backend("C") + backend("Slow") + backend("Flaky") + `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: split}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [split.example.com]
  rules:
  - matches:
    - method: {service: grpc.testing.TestService}
      headers: [{name: x-canary, value: "true"}]
    backendRefs: [{group: gitxds.dev, kind: Backend, name: c}]
  - matches: [{method: {service: grpc.testing.TestService}}]
    backendRefs:
    - {group: gitxds.dev, kind: Backend, name: a, weight: 75}
    - {group: gitxds.dev, kind: Backend, name: b, weight: 25}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: slow}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [slow.example.com]
  rules:
  - backendRefs: [{group: gitxds.dev, kind: Backend, name: slow}]
    timeouts: {request: 300ms}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: flaky}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [flaky.example.com]
  rules:
  - backendRefs: [{group: gitxds.dev, kind: Backend, name: flaky}]
---
apiVersion: gitxds.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: flaky-retry}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: flaky}]
  retry:
    numRetries: 2
    retryOn: {triggers: [unavailable]}
    perRetry: {backOff: {baseInterval: 10ms, maxInterval: 50ms}}
`
	return files
}

// TestGRPCFeatures: header routing, a weighted split, a route timeout and
// retries, for each real xDS client (gRPC-Go and grpc-js-xds); then, with
// both clients calling, a route change under traffic, a broken commit and
// a redirect rule; and every node has ACKed all gitxds sent it, NACKed
// nothing.
func TestGRPCFeatures(t *testing.T) {
	addr := map[string]string{}
	for _, n := range []string{"A", "B", "C", "Slow", "Flaky"} {
		addr[n] = stack.FreeAddr()
	}
	s, err := stack.Start(context.Background(), stack.Options{Files: featureRepo(addr), Upstreams: addr, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	head, _ := s.Repo.Head()
	st, err := s.WaitApplied(20*time.Second, "main@sha1:"+head)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range status.Rejected(st.Objects) {
		t.Fatalf("rejected: %s", status.Line(o))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	callers := map[string]caller{}
	for _, k := range clientKinds {
		t.Run(k.name, func(t *testing.T) {
			c := k.start(t, s, "features-"+k.name)
			callers[k.name] = c
			features(ctx, t, s, c)
			if n, ok := s.Daemon.XDS.Node(c.NodeID()); !ok {
				t.Errorf("node %s not connected", c.NodeID())
			} else {
				nodeACKed(t, n)
			}
		})
	}
	if len(callers) == 0 {
		t.Fatal("no client ran")
	}
	callers = sharedClients(t, s, callers)
	t.Run("change under traffic", func(t *testing.T) { changeUnderTraffic(ctx, t, s, callers) })
	t.Run("broken commit", func(t *testing.T) { brokenCommit(ctx, t, s, callers) })
	t.Run("redirect rule", func(t *testing.T) { redirectRule(ctx, t, s, callers) })
	t.Run("no NACK", func(t *testing.T) { allACKed(t, s, callers) })
}

func features(ctx context.Context, t *testing.T, s *stack.Stack, c caller) {
	t.Run("header routing", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			if got, err := c.Call(ctx, "split.example.com", map[string]string{"x-canary": "true"}); err != nil || got != "C" {
				t.Fatalf("x-canary: true went to %q (%v), want C", got, err)
			}
		}
	})

	t.Run("weighted split", func(t *testing.T) {
		const n = 800
		d, err := c.Distribution(ctx, "split.example.com", n, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Binomial(n, 0.75): mean 600, sd 12.2. Five sd either way is a
		// false failure once in ~1.7 million runs.
		mean, sd := 0.75*n, math.Sqrt(n*0.75*0.25)
		if d["C"] != 0 || math.Abs(float64(d["A"])-mean) > 5*sd || d["A"]+d["B"] != n {
			t.Fatalf("split %v, want A≈%.0f±%.0f of %d and no C", d, mean, 5*sd, n)
		}
		t.Logf("75/25 split over %d calls: %v", n, d)
	})

	t.Run("timeout", func(t *testing.T) {
		s.Upstreams["Slow"].SetDelay(2 * time.Second)
		defer s.Upstreams["Slow"].SetDelay(0)
		start := time.Now()
		_, err := c.Call(ctx, "slow.example.com", nil)
		took := time.Since(start)
		// The deadline reaches the upstream too (grpc-timeout), which
		// resets the stream when it passes: grpc-js reports that reset as
		// CANCELLED when it arrives before its own timer fires.
		if code := grpcstatus.Code(err); (code != codes.DeadlineExceeded && code != codes.Canceled) || took > 1500*time.Millisecond {
			t.Fatalf("slow call: %v after %s, want DeadlineExceeded after ~300ms", err, took)
		}
		t.Logf("300ms route timeout: %v after %s", grpcstatus.Code(err), took.Round(time.Millisecond))
	})

	t.Run("retry on UNAVAILABLE", func(t *testing.T) {
		flaky := s.Upstreams["Flaky"]
		if got, err := c.Call(ctx, "flaky.example.com", nil); err != nil || got != "Flaky" {
			t.Fatalf("warm-up: %q %v", got, err)
		}
		flaky.Reset()
		flaky.SetFailure(codes.Unavailable, 2) // the next two calls fail
		got, err := c.Call(ctx, "flaky.example.com", nil)
		if err != nil || got != "Flaky" {
			t.Fatalf("call with two UNAVAILABLE answers: %q %v, want a retried success", got, err)
		}
		if calls := flaky.Calls(); calls != 3 {
			t.Fatalf("upstream saw %d attempts, want 3 (1 + 2 retries)", calls)
		}
		// Without the policy's retries left, the third failure reaches the client.
		flaky.Reset()
		flaky.SetFailure(codes.Unavailable, 3)
		if _, err := c.Call(ctx, "flaky.example.com", nil); grpcstatus.Code(err) != codes.Unavailable {
			t.Fatalf("three failures: %v, want UNAVAILABLE after 2 retries", err)
		}
		flaky.Reset()
	})
}
