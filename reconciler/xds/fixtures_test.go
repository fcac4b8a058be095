package xds

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
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
	"google.golang.org/protobuf/types/known/wrapperspb"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// spec describes a test Set; each field moves one type's version.
type spec struct {
	rev          string
	clusters     []string      // CDS (and EDS: one assignment each)
	endpointPort uint32        // EDS
	listenerPort uint32        // LDS (Envoy class)
	routeTimeout time.Duration // RDS
	host         string        // gRPC API listener name and route domain
}

func (sp spec) withDefaults() spec {
	if len(sp.clusters) == 0 {
		sp.clusters = []string{"backend"}
	}
	if sp.endpointPort == 0 {
		sp.endpointPort = 9000
	}
	if sp.listenerPort == 0 {
		sp.listenerPort = 8080
	}
	if sp.routeTimeout == 0 {
		sp.routeTimeout = 5 * time.Second
	}
	if sp.host == "" {
		sp.host = "svc.test"
	}
	if sp.rev == "" {
		sp.rev = "main@sha1:test"
	}
	return sp
}

func mustAny(m proto.Message) *anypb.Any {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()), Value: b}
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func hcm(routeName string) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: "http",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: routeName, ConfigSource: adsSource(),
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
		}},
	}
}

func routeConfig(name string, domains []string, cluster string, timeout time.Duration) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{{
		Name: "vh", Domains: domains,
		Routes: []*routev3.Route{{
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
				Timeout:          durationpb.New(timeout),
			}},
		}},
	}}}
}

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ConnectTimeout:       durationpb.New(time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
	}
}

func assignment(cluster string, port uint32) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: cluster,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			Locality:            &corev3.Locality{Region: "local"},
			LoadBalancingWeight: wrapperspb.UInt32(1),
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
				}}},
			}}}},
		}},
	}
}

func buildSet(sp spec) *snapshot.Set {
	sp = sp.withDefaults()
	common := func() ([]*clusterv3.Cluster, []*endpointv3.ClusterLoadAssignment) {
		var cs []*clusterv3.Cluster
		var es []*endpointv3.ClusterLoadAssignment
		for _, c := range sp.clusters {
			cs = append(cs, edsCluster(c))
			es = append(es, assignment(c, sp.endpointPort))
		}
		return cs, es
	}
	ecs, ees := common()
	envoy := &snapshot.Resources{
		Listeners: []*listenerv3.Listener{{
			Name: "http",
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: sp.listenerPort},
			}}},
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm("routes"))},
			}}}},
		}},
		Routes:    []*routev3.RouteConfiguration{routeConfig("routes", []string{"*"}, sp.clusters[0], sp.routeTimeout)},
		Clusters:  ecs,
		Endpoints: ees,
	}
	gcs, ges := common()
	grpc := &snapshot.Resources{
		Listeners: []*listenerv3.Listener{{
			Name:        sp.host,
			ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm("grpc-routes"))},
		}},
		Routes:    []*routev3.RouteConfiguration{routeConfig("grpc-routes", []string{sp.host}, sp.clusters[0], sp.routeTimeout)},
		Clusters:  gcs,
		Endpoints: ges,
	}
	return snapshot.New(sp.rev, map[snapshot.Class]*snapshot.Resources{snapshot.Envoy: envoy, snapshot.GRPC: grpc})
}

func testLogger() *slog.Logger {
	if os.Getenv("XDS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer runs a Server on a loopback port until the test ends.
func startServer(t *testing.T) (*Server, string) {
	t.Helper()
	return startServerOpts(t, Options{})
}

func startServerOpts(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	opts.Logger = testLogger()
	s := New(opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return s, lis.Addr().String()
}

// eventually polls cond every 5 ms for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitACK waits for the nodes to connect, then for their ACK of set.
func waitACK(t *testing.T, s *Server, set *snapshot.Set, ids ...string) {
	t.Helper()
	eventually(t, "nodes connected", func() bool {
		for _, id := range ids {
			if _, ok := s.Node(id); !ok {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitACK(ctx, ids, set); err != nil {
		t.Fatal(err)
	}
}
