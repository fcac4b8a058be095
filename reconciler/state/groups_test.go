package state

import (
	"path/filepath"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// A last good Set with proxy groups comes back with its groups: after a
// restart a node of group internal is served internal's resources, not
// the default group's.
func TestLastGoodGroupsRoundTrip(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	set := snapshot.NewGroups("main@sha1:aaaa", map[snapshot.Group]map[snapshot.Class]*snapshot.Resources{
		snapshot.DefaultGroup: testSet("main@sha1:aaaa").Classes,
		"internal":            {snapshot.Envoy: {Clusters: []*clusterv3.Cluster{{Name: "internal"}}}},
	})
	if err := s.SaveLastGood(set); err != nil {
		t.Fatal(err)
	}
	out, err := s.LoadLastGood()
	if err != nil {
		t.Fatal(err)
	}
	if out.Hash() != set.Hash() {
		t.Errorf("hash %s, want %s", out.Hash(), set.Hash())
	}
	got := out.In("internal").Of(snapshot.Envoy)
	if got == nil || len(got.Clusters) != 1 || got.Clusters[0].GetName() != "internal" {
		t.Fatalf("group internal after the round trip: %v", got)
	}
	if v := out.In("internal").Version(snapshot.Envoy, resource.ClusterType); v != set.In("internal").Version(snapshot.Envoy, resource.ClusterType) {
		t.Errorf("group internal CDS version %s after the round trip", v)
	}
}
