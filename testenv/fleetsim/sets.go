package fleetsim

import (
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// SetSpec describes a synthetic Envoy-class snapshot for load tests: one
// socket listener on 8080 with RDS over ADS, one RouteConfiguration of
// VirtualHosts x RoutesPerHost routes spread over Clusters EDS clusters,
// each with one endpoint.
type SetSpec struct {
	Revision      string
	VirtualHosts  int // default 10
	RoutesPerHost int // default 5
	Clusters      int // default 10
	// Variant changes every type's content (route timeouts, endpoint
	// ports, cluster connect timeouts, listener stat prefix), so two
	// variants differ in CDS, EDS, LDS and RDS.
	Variant int
}

// BuildSet builds the Set of spec. Resources pass ValidateAll.
func BuildSet(spec SetSpec) *snapshot.Set {
	if spec.VirtualHosts <= 0 {
		spec.VirtualHosts = 10
	}
	if spec.RoutesPerHost <= 0 {
		spec.RoutesPerHost = 5
	}
	if spec.Clusters <= 0 {
		spec.Clusters = 10
	}
	ads := &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
	res := &snapshot.Resources{}
	for c := 0; c < spec.Clusters; c++ {
		name := fmt.Sprintf("team-%d/backend", c)
		res.Clusters = append(res.Clusters, &clusterv3.Cluster{
			Name:                 name,
			ConnectTimeout:       durationpb.New(time.Second + time.Duration(spec.Variant)*time.Millisecond),
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads},
			LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		})
		res.Endpoints = append(res.Endpoints, &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: sockAddr("127.0.0.1", uint32(10000+spec.Variant%50000)),
				}},
			}}}},
		})
	}
	rc := &routev3.RouteConfiguration{Name: "port-8080"}
	for h := 0; h < spec.VirtualHosts; h++ {
		host := fmt.Sprintf("svc-%d.example.com", h)
		vh := &routev3.VirtualHost{Name: host, Domains: []string{host, host + ":8080"}}
		for r := 0; r < spec.RoutesPerHost; r++ {
			vh.Routes = append(vh.Routes, &routev3.Route{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: fmt.Sprintf("/api/v%d", r)}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: res.Clusters[(h*spec.RoutesPerHost+r)%spec.Clusters].Name},
					Timeout:          durationpb.New(time.Duration(1000+spec.Variant) * time.Millisecond),
				}},
			})
		}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	res.Routes = []*routev3.RouteConfiguration{rc}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     fmt.Sprintf("http-%d", spec.Variant),
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: rc.Name, ConfigSource: ads}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
		}},
	}
	res.Listeners = []*listenerv3.Listener{{
		Name:    "port-8080",
		Address: sockAddr("0.0.0.0", 8080),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
		}}}},
	}}
	return snapshot.New(spec.Revision, map[snapshot.Class]*snapshot.Resources{snapshot.Envoy: res})
}

func sockAddr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func mustAny(m proto.Message) *anypb.Any {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()), Value: b}
}
