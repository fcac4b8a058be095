package xdsres

import (
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func rdsHCM(name string) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{StatPrefix: "http", RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: name}}}
}

func scopedHCM(name string) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{StatPrefix: "http", RouteSpecifier: &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcmv3.ScopedRoutes{Name: name}}}
}

func chain(t *testing.T, name string, filters ...proto.Message) *listenerv3.FilterChain {
	fc := &listenerv3.FilterChain{Name: name}
	for _, f := range filters {
		fc.Filters = append(fc.Filters, &listenerv3.Filter{Name: "f", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, f)}})
	}
	return fc
}

func TestConnectionManagers(t *testing.T) {
	api := &listenerv3.Listener{Name: "a.example.com", ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(t, rdsHCM("grpc-routes"))}}
	cms, err := ConnectionManagers(api)
	if err != nil || len(cms) != 1 || cms[0].Chain != nil || cms[0].HCM.GetRds().GetRouteConfigName() != "grpc-routes" {
		t.Fatalf("API listener: %v %v", cms, err)
	}
	tls := &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: "cert-a"}, {Name: "cert-b"}}}}
	https := chain(t, "https", scopedHCM("port-8443"))
	https.TransportSocket = &corev3.TransportSocket{Name: "tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, tls)}}
	sock := &listenerv3.Listener{Name: "port-8080", FilterChains: []*listenerv3.FilterChain{chain(t, "http", rdsHCM("port-8080")), https}}
	cms, err = ConnectionManagers(sock)
	if err != nil || len(cms) != 2 || cms[0].Chain.GetName() != "http" || cms[1].Chain.GetName() != "https" {
		t.Fatalf("socket listener: %v %v", cms, err)
	}
	if got := RouteConfigNames(sock); !slices.Equal(got, []string{"port-8080"}) {
		t.Errorf("RouteConfigNames = %v", got)
	}
	if got := ScopedRoutesNames(sock); !slices.Equal(got, []string{"port-8443"}) {
		t.Errorf("ScopedRoutesNames = %v", got)
	}
	if got, err := ListenerSecrets(sock); err != nil || !slices.Equal(got, []string{"cert-a", "cert-b"}) {
		t.Errorf("ListenerSecrets = %v %v", got, err)
	}
	refs := References(sock)
	if !slices.Equal(refs[resource.RouteType], []string{"port-8080"}) || !slices.Equal(refs[resource.SecretType], []string{"cert-a", "cert-b"}) || len(refs) != 2 {
		t.Errorf("References(listener) = %v", refs)
	}

	// A filter that is not an HttpConnectionManager is an error; the
	// managers that unpack are still returned.
	mixed := &listenerv3.Listener{Name: "mixed", FilterChains: []*listenerv3.FilterChain{chain(t, "x", &routerv3.Router{}, rdsHCM("r"))}}
	cms, err = ConnectionManagers(mixed)
	if err == nil || !strings.Contains(err.Error(), "not an HttpConnectionManager") || len(cms) != 1 {
		t.Errorf("mixed: %v %v", cms, err)
	}
	if _, err := ConnectionManagers(&listenerv3.Listener{Name: "empty"}); err == nil {
		t.Error("a listener without filters has no error")
	}
}

func TestRouteReferences(t *testing.T) {
	r := &routev3.Route{Action: &routev3.Route_Route{Route: &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
			{Name: "blue", Weight: wrapperspb.UInt32(90)}, {Name: "green", Weight: wrapperspb.UInt32(10)}}}},
		RequestMirrorPolicies: []*routev3.RouteAction_RequestMirrorPolicy{{Cluster: "shadow"}},
	}}}
	if got := ActionClusters(r); !slices.Equal(got, []string{"blue", "green"}) {
		t.Errorf("ActionClusters = %v", got)
	}
	if got := RouteClusters(r); !slices.Equal(got, []string{"blue", "green", "shadow"}) {
		t.Errorf("RouteClusters = %v", got)
	}
	single := &routev3.Route{Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "web"}}}}
	redirect := &routev3.Route{Action: &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{}}}
	if got := RouteClusters(redirect); got != nil {
		t.Errorf("a redirect sends to %v", got)
	}
	rc := &routev3.RouteConfiguration{Name: "rc", VirtualHosts: []*routev3.VirtualHost{{Routes: []*routev3.Route{single, redirect}}, {Routes: []*routev3.Route{r}}}}
	if got := References(rc)[resource.ClusterType]; !slices.Equal(got, []string{"web", "blue", "green", "shadow"}) {
		t.Errorf("References(route configuration) = %v", got)
	}
	sc := &routev3.ScopedRouteConfiguration{Name: "s", RouteConfigurationName: "rc"}
	if got := References(sc)[resource.RouteType]; !slices.Equal(got, []string{"rc"}) {
		t.Errorf("References(scope) = %v", got)
	}
}

func TestEDSNames(t *testing.T) {
	eds := &clusterv3.Cluster{Name: "a", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}}
	named := &clusterv3.Cluster{Name: "b", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: "b-endpoints"}}
	static := &clusterv3.Cluster{Name: "c", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}}
	if got := EDSNames([]*clusterv3.Cluster{eds, named, static}); !slices.Equal(got, []string{"a", "b-endpoints"}) {
		t.Errorf("EDSNames = %v", got)
	}
	if got := References(static); len(got) != 0 {
		t.Errorf("References(static cluster) = %v", got)
	}
}

func TestValidateLooksInsideAnys(t *testing.T) {
	// An HttpConnectionManager without stat_prefix is invalid; the
	// listener that packs it passes its own ValidateAll.
	bad := &hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "r"}}}
	l := &listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{chain(t, "c", bad)}}
	if err := ValidateAll(l); err != nil {
		t.Fatalf("ValidateAll: %v", err)
	}
	if err := Validate(l); err == nil || !strings.Contains(err.Error(), "typed config") {
		t.Errorf("Validate = %v, want the HttpConnectionManager's error", err)
	}
	good := &listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{chain(t, "c", rdsHCM("r"))}}
	if err := Validate(good); err != nil {
		t.Errorf("Validate(valid) = %v", err)
	}
	unknown := &listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: "f",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/no.such.Type"}}}}}}}
	if err := Validate(unknown); err == nil {
		t.Error("an Any of an unknown type validates")
	}
	// The FilterConfig that only enables a filter holds an empty Any.
	on := &routev3.Route{Name: "r", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action:               &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}},
		TypedPerFilterConfig: map[string]*anypb.Any{"f": mustAny(t, &routev3.FilterConfig{Config: &anypb.Any{}})}}
	if err := Validate(on); err != nil {
		t.Errorf("Validate(enabling FilterConfig) = %v", err)
	}
}

func TestDecodeAll(t *testing.T) {
	c := &clusterv3.Cluster{Name: "web"}
	ms, err := DecodeAll(resource.ClusterType, []*anypb.Any{mustAny(t, c)})
	if err != nil || len(ms) != 1 || Name(ms[0]) != "web" {
		t.Fatalf("DecodeAll = %v %v", ms, err)
	}
	if _, err := DecodeAll(resource.RouteType, []*anypb.Any{mustAny(t, c)}); err == nil {
		t.Error("a cluster in a response of routes decodes")
	}
	for _, typ := range []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType, resource.ScopedRouteType, resource.SecretType} {
		if m := New(typ); m == nil || "type.googleapis.com/"+string(m.ProtoReflect().Descriptor().FullName()) != typ {
			t.Errorf("New(%s) = %T", typ, m)
		}
	}
	for _, typ := range []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType, resource.ScopedRouteType, resource.SecretType} {
		m := New(typ)
		m.ProtoReflect().Set(m.ProtoReflect().Descriptor().Fields().ByNumber(1), protoreflect.ValueOfString("n"))
		// A field before the name on the wire is skipped.
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		b = append(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7), b...)
		if got := WireName(b); got != "n" || Name(m) != "n" {
			t.Errorf("%s: WireName = %q, Name = %q", typ, got, Name(m))
		}
	}
	if _, err := Decode("type.googleapis.com/google.protobuf.Empty", nil); err == nil {
		t.Error("Decode of a type that is not a resource")
	}
}

func TestShortType(t *testing.T) {
	if got := ShortType(resource.ClusterType); got != "Cluster" {
		t.Errorf("ShortType(%s) = %q", resource.ClusterType, got)
	}
	if got := ShortType("plain"); got != "plain" {
		t.Errorf("ShortType(plain) = %q", got)
	}
}
