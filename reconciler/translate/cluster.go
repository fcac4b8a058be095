package translate

import (
	"fmt"
	"net/netip"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
)

const (
	defaultConnectTimeout = 5 * time.Second

	// Health check defaults where the IR leaves a value at zero (Envoy
	// requires them); they are Envoy Gateway's.
	defaultHealthCheckTimeout  = time.Second
	defaultHealthCheckInterval = 3 * time.Second
	defaultUnhealthyThreshold  = 3
	defaultHealthyThreshold    = 1

	httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// clusterResources builds the clusters of a class and the load assignments
// of its EDS clusters, in IR (name) order.
func (t *translation) clusterResources(class snapshot.Class) ([]*clusterv3.Cluster, []*endpointv3.ClusterLoadAssignment) {
	var clusters []*clusterv3.Cluster
	var clas []*endpointv3.ClusterLoadAssignment
	for i := range t.x.Clusters {
		c := &t.x.Clusters[i]
		var (
			out *clusterv3.Cluster
			err error
		)
		if class.IsEnvoy() {
			out, err = envoyCluster(c)
		} else {
			out, err = grpcCluster(c)
		}
		if err != nil {
			t.fail(c.Owner, "cluster "+c.Name, class, err)
			continue
		}
		if out == nil {
			continue
		}
		clusters = append(clusters, out)
		if !c.DNS {
			clas = append(clas, loadAssignment(c, class.IsEnvoy() && c.HealthCheck != nil))
		}
	}
	return clusters, clas
}

// envoyCluster: EDS over ADS for IP endpoints, STRICT_DNS for hostnames,
// with every policy of the IR.
func envoyCluster(c *ir.Cluster) (*clusterv3.Cluster, error) {
	ct := c.ConnectTimeout
	if ct <= 0 {
		ct = defaultConnectTimeout
	}
	out := &clusterv3.Cluster{Name: c.Name, ConnectTimeout: duration(ct)}
	setDiscovery(out, c, clusterv3.Cluster_STRICT_DNS)
	if cb := c.CircuitBreaker; cb != nil {
		out.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			Priority:           corev3.RoutingPriority_DEFAULT,
			MaxConnections:     u32(cb.MaxConnections),
			MaxPendingRequests: u32(cb.MaxPendingRequests),
			MaxRequests:        u32(cb.MaxParallelRequests),
			MaxRetries:         u32(cb.MaxParallelRetries),
		}}}
	}
	if hc := c.HealthCheck; hc != nil {
		out.HealthChecks = []*corev3.HealthCheck{healthCheck(c, hc)}
	}
	out.OutlierDetection = outlierDetection(c.OutlierDetection, true)
	envoyLB(out, c.LoadBalancer)
	if err := setUpstreamTLS(out, c.UpstreamTLS); err != nil {
		return nil, err
	}
	if c.HTTP2 || c.IdleTimeout > 0 {
		opts, err := httpProtocolOptions(c)
		if err != nil {
			return nil, err
		}
		out.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptionsKey: opts}
	}
	if err := out.ValidateAll(); err != nil {
		return nil, err
	}
	return out, nil
}

// grpcCluster is a cluster for proxyless gRPC, with only what gRPC
// implements (gRFCs A27, A32, A50): EDS, or LOGICAL_DNS for one hostname,
// the circuit breaker's max_requests and outlier detection. gRPC always
// speaks HTTP/2 and has no active health checks, connect or idle timeout
// in CDS. A DNS cluster of several hostnames has no gRPC equivalent
// (LOGICAL_DNS takes exactly one): it is left out, and the routes to it
// fail (see grpcRoutes).
func grpcCluster(c *ir.Cluster) (*clusterv3.Cluster, error) {
	if c.DNS && len(uniqueEndpoints(c.Endpoints)) != 1 {
		return nil, nil
	}
	// TLS to backends needs certificate provider instances in the gRPC
	// client's bootstrap (gRFC A29), which gitxds does not manage: such a
	// cluster is left out rather than served in plaintext.
	if c.UpstreamTLS != nil {
		return nil, nil
	}
	out := &clusterv3.Cluster{Name: c.Name}
	setDiscovery(out, c, clusterv3.Cluster_LOGICAL_DNS)
	if cb := c.CircuitBreaker; cb != nil && cb.MaxParallelRequests > 0 {
		out.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			Priority:    corev3.RoutingPriority_DEFAULT,
			MaxRequests: u32(cb.MaxParallelRequests),
		}}}
	}
	out.OutlierDetection = outlierDetection(c.OutlierDetection, false)
	grpcLB(out, c.LoadBalancer)
	if err := out.ValidateAll(); err != nil {
		return nil, err
	}
	return out, nil
}

// setDiscovery makes an IP cluster EDS over ADS and a DNS cluster of the
// given type with an inline load assignment.
func setDiscovery(out *clusterv3.Cluster, c *ir.Cluster, dnsType clusterv3.Cluster_DiscoveryType) {
	if c.DNS {
		out.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: dnsType}
		out.LoadAssignment = loadAssignment(c, dnsType == clusterv3.Cluster_STRICT_DNS && c.HealthCheck != nil)
		return
	}
	out.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
	out.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()}
}

// outlierDetection: consecutive 5xx is an Envoy detector; gRPC implements
// only success-rate and failure-percentage ejection (A50) and ignores it.
// Both run success-rate ejection with its defaults when the message is
// present.
func outlierDetection(od *ir.OutlierDetection, envoy bool) *clusterv3.OutlierDetection {
	if od == nil {
		return nil
	}
	out := &clusterv3.OutlierDetection{
		Interval:         duration(od.Interval),
		BaseEjectionTime: duration(od.BaseEjectionTime),
	}
	if od.MaxEjectionPercent > 0 {
		out.MaxEjectionPercent = wrapperspb.UInt32(min(od.MaxEjectionPercent, 100))
	}
	if envoy {
		out.Consecutive_5Xx = u32(od.Consecutive5xx)
	}
	return out
}

func healthCheck(c *ir.Cluster, hc *ir.HealthCheck) *corev3.HealthCheck {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	orN := func(n, def uint32) uint32 {
		if n > 0 {
			return n
		}
		return def
	}
	path := hc.Path
	if path == "" {
		path = "/"
	}
	// The Host of each check is its endpoint's address (see
	// loadAssignment), not the cluster name Envoy sends by default.
	h := &corev3.HealthCheck_HttpHealthCheck{Path: path}
	for _, s := range hc.ExpectedStatuses {
		h.ExpectedStatuses = append(h.ExpectedStatuses, &typev3.Int64Range{Start: int64(s), End: int64(s) + 1})
	}
	if c.HTTP2 {
		h.CodecClientType = typev3.CodecClientType_HTTP2
	}
	return &corev3.HealthCheck{
		Timeout:            duration(or(hc.Timeout, defaultHealthCheckTimeout)),
		Interval:           duration(or(hc.Interval, defaultHealthCheckInterval)),
		UnhealthyThreshold: wrapperspb.UInt32(orN(hc.UnhealthyThreshold, defaultUnhealthyThreshold)),
		HealthyThreshold:   wrapperspb.UInt32(orN(hc.HealthyThreshold, defaultHealthyThreshold)),
		HealthChecker:      &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: h},
	}
}

// httpProtocolOptions: HTTP/2 or HTTP/1.1 upstream, and the idle timeout of
// upstream connections.
func httpProtocolOptions(c *ir.Cluster) (*anypb.Any, error) {
	cfg := &httpv3.HttpProtocolOptions_ExplicitHttpConfig{}
	if c.HTTP2 {
		cfg.ProtocolConfig = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
			Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
		}
	} else {
		cfg.ProtocolConfig = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
			HttpProtocolOptions: &corev3.Http1ProtocolOptions{},
		}
	}
	opts := &httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: cfg},
	}
	if c.IdleTimeout > 0 {
		opts.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{IdleTimeout: duration(c.IdleTimeout)}
	}
	a, err := pack(opts)
	if err != nil {
		return nil, fmt.Errorf("HTTP protocol options: %w", err)
	}
	return a, nil
}

// uniqueEndpoints drops repeated addresses: gRPC NACKs an EDS resource that
// lists one address twice.
func uniqueEndpoints(in []ir.Endpoint) []ir.Endpoint {
	seen := map[ir.Endpoint]bool{}
	var out []ir.Endpoint
	for _, e := range in {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

// loadAssignment puts every endpoint in one locality. gRPC requires the
// locality to be set and ignores localities of weight 0; Envoy ignores
// locality weights unless locality-weighted balancing is on.
//
// With checkHost, each endpoint's health_check_config.hostname is its
// address (the Backend's hostname for an FQDN endpoint, the IP literal
// otherwise, IPv6 in brackets): it is the Host of Envoy's HTTP health
// checks of that endpoint. Without it Envoy sends the cluster name
// ("payments/payments-v1"): HealthCheckerFactory::getHostname
// (source/common/upstream/health_checker_impl.cc) takes the host's
// hostnameForHealthChecks, which is only health_check_config.hostname
// (HostDescriptionImplBase, source/common/upstream/upstream_impl.cc), then
// HttpHealthCheck.host, then the cluster name.
//
// A Service discovered from Kubernetes has no endpoints in the IR: its
// assignment here has no locality, and the xDS server replaces it with the
// discovered one (package discovery); until then, or when the Service has
// no ready endpoint, requests to it fail (Envoy 503, gRPC UNAVAILABLE).
func loadAssignment(c *ir.Cluster, checkHost bool) *endpointv3.ClusterLoadAssignment {
	if len(c.Endpoints) == 0 {
		return &endpointv3.ClusterLoadAssignment{ClusterName: c.Name}
	}
	loc := &endpointv3.LocalityLbEndpoints{
		Locality:            &corev3.Locality{},
		LoadBalancingWeight: wrapperspb.UInt32(1),
	}
	for _, e := range uniqueEndpoints(c.Endpoints) {
		ep := &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address:       e.Address,
				PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: e.Port},
			}}},
		}
		if checkHost {
			ep.HealthCheckConfig = &endpointv3.Endpoint_HealthCheckConfig{Hostname: hostHeaderOf(e.Address)}
		}
		loc.LbEndpoints = append(loc.LbEndpoints, &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: ep},
		})
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: c.Name, Endpoints: []*endpointv3.LocalityLbEndpoints{loc}}
}

// hostHeaderOf is an address as the host of a Host header: an IPv6
// literal in brackets (RFC 3986 IP-literal), anything else as is.
func hostHeaderOf(addr string) string {
	if ip, err := netip.ParseAddr(addr); err == nil && ip.Is6() {
		return "[" + addr + "]"
	}
	return addr
}
