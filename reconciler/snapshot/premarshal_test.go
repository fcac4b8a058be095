package snapshot

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The cache snapshot's resources marshal to exactly the original bytes, are
// named as the originals, and are shared (not copies of the wire bytes per
// call).
func TestPremarshaledResourcesMarshalIdentically(t *testing.T) {
	res := &Resources{
		Listeners: []*listenerv3.Listener{{Name: "l", Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 80}}}}}},
		Routes: []*routev3.RouteConfiguration{{Name: "r", VirtualHosts: []*routev3.VirtualHost{{Name: "v", Domains: []string{"*"}}}}},
		Clusters: []*clusterv3.Cluster{{Name: "c", ConnectTimeout: durationpb.New(5e9),
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}}},
		Endpoints: []*endpointv3.ClusterLoadAssignment{{ClusterName: "c"}},
	}
	set := New("r1", map[Class]*Resources{Envoy: res})
	snap, err := set.CacheSnapshot(Envoy)
	if err != nil {
		t.Fatal(err)
	}
	originals := map[string]types.Resource{"l": res.Listeners[0], "r": res.Routes[0], "c": res.Clusters[0]}
	for _, typ := range TypeURLs {
		for name, r := range snap.GetResources(typ) {
			if proto.Equal(r, originals[name]) && typ != "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment" {
				t.Errorf("%s %s is not premarshaled", typ, name)
			}
			if cachev3.GetResourceName(r) != name {
				t.Errorf("%s %s is named %q", typ, name, cachev3.GetResourceName(r))
			}
			got, _ := cachev3.MarshalResource(r)
			var orig types.Resource
			for _, o := range res.ByType(typ) {
				if cachev3.GetResourceName(o) == name {
					orig = o
				}
			}
			want, _ := cachev3.MarshalResource(orig)
			if string(got) != string(want) {
				t.Errorf("%s %s marshals differently", typ, name)
			}
		}
	}
}
