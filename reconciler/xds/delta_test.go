package xds

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

func TestDeltaACKAndNACK(t *testing.T) {
	s, addr := startServer(t)
	s1 := buildSet(spec{rev: "main@sha1:1", clusters: []string{"a", "b"}})
	s.SetDefault(s1)
	n := connectDelta(t, addr, nodeOpts("d", "envoy", nil), nil)
	waitACK(t, s, s1, "d")
	if !n.Runs(s1) {
		t.Fatal("delta node does not run s1")
	}
	if info, _ := s.Node("d"); info.LastGood != s1 {
		t.Fatal("s1 is not the node's last good set")
	}

	s2 := buildSet(spec{rev: "main@sha1:2", clusters: []string{"a"}, endpointPort: 9001, listenerPort: 8081, routeTimeout: time.Second})
	bad := s2.Version(snapshot.Envoy, lds)
	n.Reject(rejectVersion(lds, bad, "bad listener"))
	start := time.Now()
	s.SetDefault(s2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitACK(ctx, []string{"d"}, s2); err == nil || !strings.Contains(err.Error(), "bad listener") {
		t.Fatalf("WaitACK(s2) = %v", err)
	}
	// Reset: the node is sent s1 again and runs it (a delta node that
	// NACKs is not left behind).
	eventually(t, "delta node back on s1", func() bool { return n.Runs(s1) })
	waitACK(t, s, s1, "d")
	time.Sleep(measureWindow - time.Since(start))
	if sent := n.Responses(lds, bad); sent != 1 {
		t.Errorf("NACKed version sent %d times, want 1", sent)
	}
	// Cluster "b", dropped by s2, was never removed: removals come after
	// LDS and RDS, which were rejected.
	for _, r := range n.Log() {
		if slices.Contains(r.Removed, "b") {
			t.Errorf("cluster b removed: %+v", r)
		}
	}
}

// A delta node subscribed by name is sent nothing when a new Set changes
// only resources it did not subscribe to; it still counts as having ACKed
// that Set.
func TestDeltaImplicitSync(t *testing.T) {
	s, addr := startServer(t)
	s1 := buildSet(spec{rev: "main@sha1:1"})
	s.SetDefault(s1)
	n := connectDelta(t, addr, nodeOpts("d", "envoy", nil), map[string][]string{rds: {"routes"}})
	waitACK(t, s, s1, "d")
	before := len(n.Log())

	// s2 adds a route configuration nobody references.
	classes := map[snapshot.Class]*snapshot.Resources{}
	for c, r := range s1.Classes {
		cp := *r
		cp.Routes = append(append([]*routev3.RouteConfiguration(nil), r.Routes...), routeConfig("unused", []string{"x"}, "backend", time.Second))
		classes[c] = &cp
	}
	s2 := snapshot.New("main@sha1:2", classes)
	if s2.Version(snapshot.Envoy, rds) == s1.Version(snapshot.Envoy, rds) {
		t.Fatal("test set: RDS version did not change")
	}
	s.SetDefault(s2)
	waitACK(t, s, s2, "d")
	if got := n.Log()[before:]; len(got) != 0 {
		t.Errorf("sent %+v, want nothing", got)
	}
}
