package xdsclient

// Tiny hand-built xDS resources and a minimal go-control-plane ADS server,
// only to check this package against a real xDS server. The real translator
// and server live in reconciler/.

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"gitxds.dev/gitxds/testenv/upstream"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustValidate(t *testing.T, m interface{ ValidateAll() error }) {
	t.Helper()
	if err := m.ValidateAll(); err != nil {
		t.Fatal(err)
	}
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// apiListener is an API listener named name whose HttpConnectionManager takes
// route configuration routeName over ADS and ends with the router filter.
func apiListener(t *testing.T, name, routeName string) *listenerv3.Listener {
	t.Helper()
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: name,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: routeName,
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})},
		}},
	}
	mustValidate(t, hcm)
	l := &listenerv3.Listener{
		Name:        name,
		ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(t, hcm)},
	}
	mustValidate(t, l)
	return l
}

// routeConfig has one virtual host for domains routing prefix "/" to the
// clusters with the given weights (one cluster: a plain cluster action).
func routeConfig(t *testing.T, name string, domains []string, weights map[string]uint32) *routev3.RouteConfiguration {
	t.Helper()
	action := &routev3.RouteAction{}
	if len(weights) == 1 {
		for c := range weights {
			action.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: c}
		}
	} else {
		wc := &routev3.WeightedCluster{}
		for c, w := range weights {
			wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: c, Weight: wrapperspb.UInt32(w)})
		}
		action.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	rc := &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "vh",
			Domains: domains,
			Routes: []*routev3.Route{{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: action},
			}},
		}},
	}
	mustValidate(t, rc)
	return rc
}

// edsCluster is a round-robin EDS cluster whose endpoints come over ADS.
func edsCluster(t *testing.T, name string) *clusterv3.Cluster {
	t.Helper()
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		ConnectTimeout:       durationpb.New(time.Second),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
	}
	mustValidate(t, c)
	return c
}

// endpoints is the ClusterLoadAssignment of cluster: one locality with the
// upstreams. localityWeight 0 leaves load_balancing_weight unset.
func endpoints(t *testing.T, cluster string, localityWeight uint32, ups ...*upstream.Server) *endpointv3.ClusterLoadAssignment {
	t.Helper()
	loc := &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{Region: "local"}}
	if localityWeight > 0 {
		loc.LoadBalancingWeight = wrapperspb.UInt32(localityWeight)
	}
	for _, u := range ups {
		loc.LbEndpoints = append(loc.LbEndpoints, &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address:       u.Host(),
					PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(u.Port())},
				}}},
			}},
		})
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster, Endpoints: []*endpointv3.LocalityLbEndpoints{loc}}
	mustValidate(t, cla)
	return cla
}

// service is the resources for one proxyless target routed to one cluster
// per upstream, with weights.
type service struct {
	listeners []string // listener names, e.g. "echo.example.com"
	domains   []string
	weights   map[string]uint32             // cluster -> weight
	backends  map[string][]*upstream.Server // cluster -> upstreams
	// noLocalityWeight leaves LocalityLbEndpoints.load_balancing_weight unset.
	noLocalityWeight bool
}

func (s service) snapshot(t *testing.T, version string) *cachev3.Snapshot {
	t.Helper()
	res := map[string][]types.Resource{}
	for _, l := range s.listeners {
		res[resourcev3.ListenerType] = append(res[resourcev3.ListenerType], apiListener(t, l, "rc"))
	}
	res[resourcev3.RouteType] = []types.Resource{routeConfig(t, "rc", s.domains, s.weights)}
	lw := uint32(1)
	if s.noLocalityWeight {
		lw = 0
	}
	for c := range s.weights {
		res[resourcev3.ClusterType] = append(res[resourcev3.ClusterType], edsCluster(t, c))
		res[resourcev3.EndpointType] = append(res[resourcev3.EndpointType], endpoints(t, c, lw, s.backends[c]...))
	}
	snap, err := cachev3.NewSnapshot(version, res)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// oneBackend routes target (listener and domain) to cluster, served by up.
func oneBackend(target, cluster string, up *upstream.Server) service {
	return service{
		listeners: []string{target},
		domains:   []string{target},
		weights:   map[string]uint32{cluster: 1},
		backends:  map[string][]*upstream.Server{cluster: {up}},
	}
}

// request is one DiscoveryRequest the test server received.
type request struct {
	stream int64
	node   string
	req    *discoveryv3.DiscoveryRequest
}

// xdsServer is a go-control-plane ADS server (state of the world and delta)
// on loopback with a SnapshotCache keyed by node id.
type xdsServer struct {
	addr  string
	cache cachev3.SnapshotCache
	gs    *grpc.Server

	mu       sync.Mutex
	nodes    map[int64]*corev3.Node // first node seen per stream
	requests []request
	open     int
}

func startXDSServer(t *testing.T) *xdsServer { return startXDSServerADS(t, true) }

func startXDSServerADS(t *testing.T, ads bool) *xdsServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x := &xdsServer{addr: lis.Addr().String(), cache: cachev3.NewSnapshotCache(ads, cachev3.IDHash{}, nil), nodes: map[int64]*corev3.Node{}}
	cb := serverv3.CallbackFuncs{
		StreamOpenFunc: func(context.Context, int64, string) error {
			x.mu.Lock()
			x.open++
			x.mu.Unlock()
			return nil
		},
		StreamClosedFunc: func(int64, *corev3.Node) {
			x.mu.Lock()
			x.open--
			x.mu.Unlock()
		},
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			x.mu.Lock()
			defer x.mu.Unlock()
			if req.GetNode() != nil && x.nodes[id] == nil {
				x.nodes[id] = req.GetNode()
			}
			x.requests = append(x.requests, request{stream: id, node: x.nodes[id].GetId(), req: req})
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := serverv3.NewServer(ctx, x.cache, cb)
	x.gs = grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(x.gs, srv)
	go x.gs.Serve(lis) //nolint:errcheck // stops with the test
	t.Cleanup(func() {
		x.gs.Stop()
		cancel()
	})
	return x
}

func (x *xdsServer) set(t *testing.T, node string, snap *cachev3.Snapshot) {
	t.Helper()
	if err := x.cache.SetSnapshot(context.Background(), node, snap); err != nil {
		t.Fatal(err)
	}
}

// nodeSeen returns the Node of the first stream opened by node id.
func (x *xdsServer) nodeSeen(id string) *corev3.Node {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, n := range x.nodes {
		if n.GetId() == id {
			return n
		}
	}
	return nil
}

// streams is the number of open streams.
func (x *xdsServer) streams() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.open
}

// nacks returns the requests that carried an error_detail.
func (x *xdsServer) nacks() []request {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []request
	for _, r := range x.requests {
		if r.req.GetErrorDetail() != nil {
			out = append(out, r)
		}
	}
	return out
}
