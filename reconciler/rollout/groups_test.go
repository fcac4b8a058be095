package rollout

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// groupSet is a Set whose default group has cluster def and group internal
// cluster internal.
func groupSet(rev, def, internal string) *snapshot.Set {
	return snapshot.NewGroups(rev, map[snapshot.Group]map[snapshot.Class]*snapshot.Resources{
		snapshot.DefaultGroup: {snapshot.Envoy: {Clusters: []*clusterv3.Cluster{{Name: def}}}},
		"internal":            {snapshot.Envoy: {Clusters: []*clusterv3.Cluster{{Name: internal}}}},
	})
}

// The nodes of a proxy group ACK their group's versions, and the rollout
// counts those ACKs: a revision that changes group internal alone moves
// internal's nodes stage by stage and succeeds.
func TestRolloutGroupNodesAckTheirGroup(t *testing.T) {
	good, next := groupSet("r1", "a", "x"), groupSet("r2", "a", "y")
	f := newFakeFleet()
	f.def = good
	f.add("canary-1", map[string]string{"rollout-group": "canary", snapshot.GroupLabel: "internal"})
	f.add("stable-1", map[string]string{"rollout-group": "stable"})
	f.add("stable-2", map[string]string{"rollout-group": "stable", snapshot.GroupLabel: "internal"})
	f.mu.Lock()
	for _, n := range f.nodes {
		n.Group = snapshot.GroupOf(n.Labels)
		f.serve(n.ID, good)
	}
	f.mu.Unlock()
	res := runPlan(t, f, Plan{Revision: "r2", Target: next, LastGood: good, Policy: canaryPolicy(t, "10ms")}, nil)
	if res.Phase != Succeeded {
		t.Fatalf("phase %s: %s", res.Phase, res.Message)
	}
	for _, n := range f.Nodes() {
		if !n.HasAcked(next) {
			t.Errorf("node %s (group %q) has not ACKed its group's version of the new revision", n.ID, n.Group)
		}
		other := snapshot.DefaultGroup
		if n.Group == other {
			other = "internal"
		}
		if (Node{Class: n.Class, Group: other, Requested: n.Requested, Acked: n.Acked}).HasAcked(next) {
			t.Errorf("node %s: its ACKs count for group %q too", n.ID, other)
		}
	}
}
