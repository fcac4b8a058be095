package xds

import (
	"slices"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
)

// TestSetEndpoints: discovered endpoints reach a node as one EDS response
// carrying only the changed assignment, with the Set (revision, versions)
// unchanged and counted as ACKed, for the default Set and for a node
// assigned another Set (a rollout stage); the Service clusters of every
// Set are reported to ServiceClusters.
func TestSetEndpoints(t *testing.T) {
	web := ir.ServiceClusterName(ir.ServiceRef{Namespace: "shop", Name: "web", Port: 8080})
	var reported [][]string
	s, addr := startServerOpts(t, Options{Logger: testLogger(), ServiceClusters: func(names []string) {
		reported = append(reported, names)
	}})
	s1 := buildSet(spec{rev: "main@sha1:1", clusters: []string{"backend", web}})
	s2 := buildSet(spec{rev: "main@sha1:2", clusters: []string{"backend", web}, listenerPort: 8081})
	s.SetDefault(s1)
	stable := connectSotw(t, addr, newFakeNode(t, "stable", "envoy", nil))
	canary := connectSotw(t, addr, newFakeNode(t, "canary", "envoy", nil))
	waitACK(t, s, s1, "stable", "canary")
	s.Assign([]string{"canary"}, s2)
	waitACK(t, s, s2, "canary")
	if len(reported) == 0 || !slices.Equal(reported[len(reported)-1], []string{web}) {
		t.Fatalf("ServiceClusters got %v, want [%s]", reported, web)
	}

	before := map[*fakeNode]int{stable: len(stable.responses()), canary: len(canary.responses())}
	s.SetEndpoints(map[string]*endpointv3.ClusterLoadAssignment{web: assignment(web, 9555)})
	for n, set := range map[*fakeNode]*snapshot.Set{stable: s1, canary: s2} {
		id := n.node.GetId()
		eventually(t, id+" gets the discovered endpoints", func() bool {
			got := n.responses()[before[n]:]
			return len(got) == 1 && got[0].TypeURL == eds && slices.Equal(got[0].Names, []string{web}) &&
				n.acceptedVersion(eds) == got[0].Version
		})
		info, _ := s.Node(id)
		if info.Served != set || !info.HasACKed(set) {
			t.Errorf("%s: served %v, ACKed it %v; want %s, ACKed", id, info.Served.Revision, info.HasACKed(set), set.Revision)
		}
		if v := n.acceptedVersion(eds); v == set.Version(snapshot.Envoy, eds) || setVersion(v) != set.Version(snapshot.Envoy, eds) {
			t.Errorf("%s: EDS version %s, want %s extended", id, v, set.Version(snapshot.Envoy, eds))
		}
	}
	// The same endpoints again change nothing.
	n := len(stable.responses())
	s.SetEndpoints(map[string]*endpointv3.ClusterLoadAssignment{web: assignment(web, 9555)})
	s.SetDefault(s1)
	if got := stable.responses()[n:]; len(got) != 0 {
		t.Errorf("unchanged endpoints sent %+v", got)
	}
}
