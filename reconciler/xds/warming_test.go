package xds

import (
	"fmt"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/testenv/fleetsim"
)

// withConnectTimeout is set with one cluster's connect timeout changed (a
// cluster-only change: its endpoints stay the same).
func withConnectTimeout(set *snapshot.Set, rev, cluster string, d time.Duration) *snapshot.Set {
	classes := map[snapshot.Class]*snapshot.Resources{}
	for c, r := range set.Classes {
		cp := *r
		cp.Clusters = nil
		for _, cl := range r.Clusters {
			if cl.GetName() == cluster {
				cl = proto.Clone(cl).(*clusterv3.Cluster)
				cl.ConnectTimeout = durationpb.New(d)
			}
			cp.Clusters = append(cp.Clusters, cl)
		}
		classes[c] = &cp
	}
	return snapshot.New(rev, classes)
}

// An Envoy node whose cluster changed over CDS is sent that cluster's
// ClusterLoadAssignment again after it, though the endpoints did not
// change (Envoy re-warms the cluster until it gets one), and only that one;
// in sotw the node first asks for EDS with a request identical to its last
// ACK, which must be answered.
func TestClusterUpdateResendsAssignment(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) {
			s, addr := startServer(t)
			s1 := buildSet(spec{rev: "main@sha1:1", clusters: []string{"a", "b"}})
			s.SetDefault(s1)
			fn := nodeOpts("e", "envoy", nil)
			fn.ReRequestEDS = true
			var n *fleetsim.Node
			if delta {
				n = connectDelta(t, addr, fn, nil)
			} else {
				n = connectSotw(t, addr, fn)
			}
			waitACK(t, s, s1, "e")
			before := len(n.Log())

			s2 := withConnectTimeout(s1, "main@sha1:2", "a", 3*time.Second)
			s.SetDefault(s2)
			waitACK(t, s, s2, "e")
			eventually(t, "the node runs s2", func() bool { return delta || n.Runs(s2) })
			got := n.Log()[before:]
			if order := typeOrder(got); !slices.Equal(order, []string{cds, eds}) {
				t.Fatalf("a cluster-only change sent %v, want CDS then EDS", short(order))
			}
			if !sameSet(got[1].Names, "a") {
				t.Errorf("EDS after the cluster change carried %v, want only a's assignment", got[1].Names)
			}
		})
	}
}

// A gRPC node is not sent assignments again for a cluster-only change:
// gRPC does not re-warm clusters.
func TestClusterUpdateGRPCNoAssignment(t *testing.T) {
	s1 := buildSet(spec{rev: "main@sha1:1", clusters: []string{"a", "b"}})
	s2 := withConnectTimeout(s1, "main@sha1:2", "a", 3*time.Second)
	if s1.Version(snapshot.GRPC, eds) != s2.Version(snapshot.GRPC, eds) {
		t.Error("gRPC EDS version moved with a cluster-only change")
	}
	if s1.Version(snapshot.Envoy, eds) == s2.Version(snapshot.Envoy, eds) {
		t.Error("Envoy EDS version did not move with a cluster-only change")
	}
}
