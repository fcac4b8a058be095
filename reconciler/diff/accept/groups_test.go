package accept

import (
	"context"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// Every proxy group is checked by clients of its own: a cluster that only
// group internal's Envoy class breaks fails internal's Envoy check, and
// the default group's checks pass.
func TestCheckPerGroup(t *testing.T) {
	set := devSet(t)
	broken := map[snapshot.Class]*snapshot.Resources{}
	for c, r := range set.Classes {
		cp := *r
		if c == snapshot.Envoy {
			cp.Clusters = nil
			for _, x := range r.Clusters {
				x = proto.Clone(x).(*clusterv3.Cluster)
				x.ConnectTimeout = durationpb.New(0)
				cp.Clusters = append(cp.Clusters, x)
			}
		}
		broken[c] = &cp
	}
	grouped := snapshot.NewGroups(set.Revision, map[snapshot.Group]map[snapshot.Class]*snapshot.Resources{
		snapshot.DefaultGroup: set.Classes,
		"internal":            broken,
	})
	res, err := Check(context.Background(), grouped, Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted {
		t.Fatal("accepted a Set whose group internal is broken")
	}
	perGroup := map[snapshot.Group]int{}
	for _, c := range res.Classes {
		perGroup[c.Group]++
		nacked := false
		for _, ty := range c.Types {
			nacked = nacked || ty.Status == NACK
		}
		if want := c.Group == "internal" && c.Class == snapshot.Envoy; nacked != want {
			t.Errorf("%s: NACKed %v, want %v", c.Name(), nacked, want)
		}
	}
	if perGroup[snapshot.DefaultGroup] != 3 || perGroup["internal"] != 3 {
		t.Errorf("class checks per group: %v, want 3 each", perGroup)
	}
}
