package diff

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// A change of one proxy group is reported as that group's, in a section
// of its own; the same change in two groups is listed once per group.
func TestDiffPerGroup(t *testing.T) {
	cluster := func(name string, timeout time.Duration) *snapshot.Resources {
		return &snapshot.Resources{Clusters: []*clusterv3.Cluster{{Name: name, ConnectTimeout: durationpb.New(timeout)}}}
	}
	set := func(internal, external time.Duration) *snapshot.Set {
		return snapshot.NewGroups("r", map[snapshot.Group]map[snapshot.Class]*snapshot.Resources{
			snapshot.DefaultGroup: {snapshot.Envoy: cluster("def", time.Second)},
			"internal":            {snapshot.Envoy: cluster("c", internal)},
			"external":            {snapshot.Envoy: cluster("c", external)},
		})
	}
	r := Snapshots(set(time.Second, time.Second), set(2*time.Second, 2*time.Second))
	if len(r.Changes) != 2 || r.Changes[0].Group != "external" || r.Changes[1].Group != "internal" {
		t.Fatalf("changes %+v, want cluster c changed in external and internal", r.Changes)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"proxy group external:\n", "proxy group internal:\n", "[envoy, envoy-scoped · proxy group internal]"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
	if r := Snapshots(set(time.Second, time.Second), set(time.Second, 2*time.Second)); len(r.Changes) != 1 || r.Changes[0].Group != "external" {
		t.Errorf("a change of group external alone: %+v", r.Changes)
	}
}
