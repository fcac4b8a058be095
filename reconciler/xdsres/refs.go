package xdsres

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// ConnectionManager is one HttpConnectionManager of a listener: the API
// listener's (Chain nil), or a network filter of a filter chain (Chain,
// with its filter_chain_match).
type ConnectionManager struct {
	Chain *listenerv3.FilterChain
	HCM   *hcmv3.HttpConnectionManager
}

// ConnectionManagers unpacks the HttpConnectionManagers of a listener: its
// API listener's first, then every network filter of every filter chain, in
// order. Each route is fetched by RDS (HCM.GetRds), scoped routes
// (HCM.GetScopedRoutes) or inline (HCM.GetRouteConfig). The error names
// the first filter that is not an HttpConnectionManager, or a listener
// without any filter; the managers that did unpack are returned with it.
func ConnectionManagers(l *listenerv3.Listener) ([]ConnectionManager, error) {
	type place struct {
		chain *listenerv3.FilterChain
		cfg   *anypb.Any
	}
	var at []place
	if api := l.GetApiListener(); api != nil {
		at = append(at, place{nil, api.GetApiListener()})
	}
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			at = append(at, place{fc, f.GetTypedConfig()})
		}
	}
	if len(at) == 0 {
		return nil, fmt.Errorf("listener has no HttpConnectionManager")
	}
	var out []ConnectionManager
	var first error
	for _, p := range at {
		hcm := &hcmv3.HttpConnectionManager{}
		if err := p.cfg.UnmarshalTo(hcm); err != nil {
			if first == nil {
				first = fmt.Errorf("not an HttpConnectionManager: %w", err)
			}
			continue
		}
		out = append(out, ConnectionManager{Chain: p.chain, HCM: hcm})
	}
	return out, first
}

// RouteConfigNames are the route configurations a listener's
// HttpConnectionManagers fetch by RDS, in ConnectionManagers' order.
func RouteConfigNames(l *listenerv3.Listener) []string {
	cms, _ := ConnectionManagers(l)
	var out []string
	for _, cm := range cms {
		if n := cm.HCM.GetRds().GetRouteConfigName(); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// ScopedRoutesNames are the names of the scoped routes (SRDS) a listener's
// HttpConnectionManagers use. Envoy fetches their scopes by a wildcard
// SRDS subscription; gitxds names a scope "<scoped routes name>/http/<host>"
// (translate's envoyScopeName).
func ScopedRoutesNames(l *listenerv3.Listener) []string {
	cms, _ := ConnectionManagers(l)
	var out []string
	for _, cm := range cms {
		if n := cm.HCM.GetScopedRoutes().GetName(); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// ListenerSecrets are the SDS secrets the TLS contexts of a listener's
// filter chains name. The error names the first transport socket that is
// not a DownstreamTlsContext; the names found elsewhere are returned with
// it.
func ListenerSecrets(l *listenerv3.Listener) ([]string, error) {
	var out []string
	var first error
	for _, fc := range l.GetFilterChains() {
		ts := fc.GetTransportSocket()
		if ts == nil {
			continue
		}
		ctx := &tlsv3.DownstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
			if first == nil {
				first = fmt.Errorf("filter chain %q: transport socket is not a DownstreamTlsContext: %w", fc.GetName(), err)
			}
			continue
		}
		for _, sc := range ctx.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs() {
			out = append(out, sc.GetName())
		}
	}
	return out, first
}

// ActionClusters are the clusters a route's action sends requests to: its
// cluster or the clusters of its weighted split. A cluster_header route
// names its cluster at request time, so it has none here; gitxds emits
// none.
func ActionClusters(r *routev3.Route) []string {
	a := r.GetRoute()
	if a == nil {
		return nil
	}
	var out []string
	if c := a.GetCluster(); c != "" {
		out = append(out, c)
	}
	for _, w := range a.GetWeightedClusters().GetClusters() {
		out = append(out, w.GetName())
	}
	return out
}

// RouteClusters is every cluster a route sends traffic to: ActionClusters
// and the clusters of its request mirror policies.
func RouteClusters(r *routev3.Route) []string {
	out := ActionClusters(r)
	for _, m := range r.GetRoute().GetRequestMirrorPolicies() {
		out = append(out, m.GetCluster())
	}
	return out
}

// RouteConfigClusters are the clusters of every route of a route
// configuration (RouteClusters), in order, repeats included.
func RouteConfigClusters(rc *routev3.RouteConfiguration) []string {
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			out = append(out, RouteClusters(r)...)
		}
	}
	return out
}

// EDSName is the name of the load assignment a cluster fetches by EDS: its
// eds_cluster_config.service_name, else its own name.
func EDSName(c *clusterv3.Cluster) string {
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return c.GetName()
}

// EDSNames are the load assignments of the EDS clusters among cs.
func EDSNames(cs []*clusterv3.Cluster) []string {
	var out []string
	for _, c := range cs {
		if c.GetType() == clusterv3.Cluster_EDS {
			out = append(out, EDSName(c))
		}
	}
	return out
}

// References are the names of the resources m makes a node subscribe to
// by name, by type URL: a listener's route configurations (RDS) and
// secrets (SDS), a scope's route configuration, a route configuration's
// clusters, an EDS cluster's load assignment. Scoped routes are fetched by
// a wildcard SRDS subscription (ScopedRoutesNames names them), and CDS and
// LDS are wildcards too.
func References(m proto.Message) map[string][]string {
	out := map[string][]string{}
	add := func(t string, names ...string) {
		if len(names) > 0 {
			out[t] = append(out[t], names...)
		}
	}
	switch r := m.(type) {
	case *listenerv3.Listener:
		add(resource.RouteType, RouteConfigNames(r)...)
		secrets, _ := ListenerSecrets(r)
		add(resource.SecretType, secrets...)
	case *routev3.ScopedRouteConfiguration:
		if n := r.GetRouteConfigurationName(); n != "" {
			add(resource.RouteType, n)
		}
	case *routev3.RouteConfiguration:
		add(resource.ClusterType, RouteConfigClusters(r)...)
	case *clusterv3.Cluster:
		add(resource.EndpointType, EDSNames([]*clusterv3.Cluster{r})...)
	}
	return out
}
