package translate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// grpcHost is one hostname served to proxyless gRPC: its routes per port.
type grpcHost struct {
	name     string
	gateways []ir.ObjectRef
	ports    map[uint32][]ir.Route
}

// grpcHosts collects, per hostname, the routes of every port it is served
// on. Wildcard hostnames are left out: a gRPC channel dials one name, and
// "*.example.com" cannot be an API listener name.
func (t *translation) grpcHosts() []*grpcHost {
	byName := map[string]*grpcHost{}
	for gi := range t.x.Gateways {
		g := &t.x.Gateways[gi]
		ref := gatewayRef(g)
		for _, l := range g.Listeners {
			for _, vh := range l.VirtualHosts {
				if strings.Contains(vh.Hostname, "*") || vh.Hostname == "" {
					continue
				}
				h := byName[vh.Hostname]
				if h == nil {
					h = &grpcHost{name: vh.Hostname, ports: map[uint32][]ir.Route{}}
					byName[vh.Hostname] = h
				}
				if !containsRef(h.gateways, ref) {
					h.gateways = append(h.gateways, ref)
				}
				h.ports[l.Port] = appendRoutes(h.ports[l.Port], vh.Routes)
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*grpcHost, 0, len(names))
	for _, n := range names {
		out = append(out, byName[n])
	}
	return out
}

func grpcPortListenerName(host string, port uint32) string {
	return host + ":" + strconv.FormatUint(uint64(port), 10)
}

// grpc builds the resources of proxyless gRPC nodes.
func (t *translation) grpc() *snapshot.Resources {
	res := &snapshot.Resources{}
	res.Clusters, res.Endpoints = t.clusterResources(snapshot.GRPC)
	available := map[string]bool{}
	for _, c := range res.Clusters {
		available[c.GetName()] = true
	}
	unservable := false
	for _, h := range t.grpcHosts() {
		rc := t.grpcRouteConfig(h, available)
		unservable = unservable || usesCluster(rc, invalidBackendCluster)
		for _, g := range h.gateways {
			t.addOwner(snapshot.GRPC, kindRouteConfig, rc.GetName(), g)
		}
		res.Routes = append(res.Routes, rc)
		names := []string{h.name}
		for _, p := range sortedPorts(h.ports) {
			names = append(names, grpcPortListenerName(h.name, p))
		}
		for _, n := range names {
			for _, g := range h.gateways {
				t.addOwner(snapshot.GRPC, kindListener, n, g)
			}
			lis, err := grpcAPIListener(n, rc.GetName())
			if err != nil {
				t.failResource(snapshot.GRPC, kindListener, n, err)
				continue
			}
			res.Listeners = append(res.Listeners, lis)
		}
	}
	if unservable {
		// The routes gRPC cannot serve go to a cluster without endpoints
		// (see grpcRoutes).
		res.Clusters = append(res.Clusters, &clusterv3.Cluster{
			Name:                 invalidBackendCluster,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		})
		res.Endpoints = append(res.Endpoints, &endpointv3.ClusterLoadAssignment{ClusterName: invalidBackendCluster})
	}
	return res
}

// usesCluster reports whether a route of rc sends traffic to cluster c.
func usesCluster(rc *routev3.RouteConfiguration, c string) bool {
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			for _, n := range xdsres.RouteClusters(r) {
				if n == c {
					return true
				}
			}
		}
	}
	return false
}

func sortedPorts(m map[uint32][]ir.Route) []uint32 {
	out := make([]uint32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// grpcAPIListener is an API listener whose HttpConnectionManager fetches
// the route configuration over ADS and has only the router filter.
func grpcAPIListener(name, rcName string) (*listenerv3.Listener, error) {
	router, err := routerFilter()
	if err != nil {
		return nil, err
	}
	hcm, err := pack(&hcmv3.HttpConnectionManager{
		StatPrefix: name,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: rcName,
		}},
		HttpFilters: []*hcmv3.HttpFilter{router},
	})
	if err != nil {
		return nil, err
	}
	return &listenerv3.Listener{
		Name:        name,
		ApiListener: &listenerv3.ApiListener{ApiListener: hcm},
	}, nil
}

// grpcRouteConfig is the route configuration of one hostname, named after
// it. Ports that serve the same routes share a virtual host; the one with
// the lowest port also answers the bare hostname.
func (t *translation) grpcRouteConfig(h *grpcHost, available map[string]bool) *routev3.RouteConfiguration {
	type group struct {
		ports  []uint32
		routes []*routev3.Route
	}
	var groups []*group
	for _, p := range sortedPorts(h.ports) {
		var routes []*routev3.Route
		for _, r := range h.ports[p] {
			rs, err := t.grpcRoutes(&r, available)
			if err != nil {
				t.fail(r.Owner, "route "+r.Name, snapshot.GRPC, err)
				continue
			}
			routes = append(routes, rs...)
		}
		var same *group
		for _, g := range groups {
			if equalRoutes(g.routes, routes) {
				same = g
				break
			}
		}
		if same == nil {
			same = &group{routes: routes}
			groups = append(groups, same)
		}
		same.ports = append(same.ports, p)
	}
	rc := &routev3.RouteConfiguration{Name: h.name}
	for i, g := range groups {
		vh := &routev3.VirtualHost{Name: h.name, Routes: g.routes}
		if i == 0 {
			vh.Domains = append(vh.Domains, h.name)
		}
		var ports []string
		for _, p := range g.ports {
			vh.Domains = append(vh.Domains, grpcPortListenerName(h.name, p))
			ports = append(ports, strconv.FormatUint(uint64(p), 10))
		}
		if len(groups) > 1 {
			vh.Name = fmt.Sprintf("%s:%s", h.name, strings.Join(ports, ","))
		}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	return rc
}

func equalRoutes(a, b []*routev3.Route) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
