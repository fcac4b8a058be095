package snapshot

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// TestClassOfByVersion: Envoy 1.38 or later gets scoped routes; older,
// unknown and versionless Envoys one RouteConfiguration per port; anything
// else is gRPC.
func TestClassOfByVersion(t *testing.T) {
	envoy := func(major, minor uint32) *corev3.Node {
		return &corev3.Node{UserAgentName: "envoy", UserAgentVersionType: &corev3.Node_UserAgentBuildVersion{
			UserAgentBuildVersion: &corev3.BuildVersion{Version: &typev3.SemanticVersion{MajorNumber: major, MinorNumber: minor}},
		}}
	}
	for _, tc := range []struct {
		name string
		node *corev3.Node
		want Class
	}{
		{"1.30", envoy(1, 30), Envoy},
		{"1.37", envoy(1, 37), Envoy},
		{"1.38", envoy(1, 38), EnvoyScoped},
		{"1.40", envoy(1, 40), EnvoyScoped},
		{"2.0", envoy(2, 0), EnvoyScoped},
		{"no version", &corev3.Node{UserAgentName: "envoy"}, Envoy},
		{"version string only", &corev3.Node{UserAgentName: "envoy", UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: "1.40.0"}}, Envoy},
		{"gRPC Go", &corev3.Node{UserAgentName: "gRPC Go"}, GRPC},
	} {
		if got := ClassOf(tc.node); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestSetWithoutScopedClass: a Set with one Envoy class (persisted by an
// earlier gitxds) serves it to EnvoyScoped nodes too, rather than nothing.
func TestSetWithoutScopedClass(t *testing.T) {
	res := &Resources{Clusters: []*clusterv3.Cluster{{Name: "a/b"}}}
	set := New("r", map[Class]*Resources{Envoy: res})
	if set.Of(EnvoyScoped) != res {
		t.Fatal("EnvoyScoped is not served the Envoy resources")
	}
	for _, typ := range TypeURLs {
		if set.Version(EnvoyScoped, typ) != set.Version(Envoy, typ) {
			t.Errorf("%s: versions differ", typ)
		}
	}
	snap, err := set.CacheSnapshot(EnvoyScoped)
	if err != nil || len(snap.GetResources(resource.ClusterType)) != 1 {
		t.Errorf("EnvoyScoped snapshot: %v %v", snap, err)
	}
}
