package translate

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// fidelityIR is one plaintext port with one exact hostname (scoped on
// EnvoyScoped nodes) whose routes are the given ones, and one cluster
// "team-a/api" of two IP endpoints with a health check.
func fidelityIR(routes ...ir.Route) *ir.IR {
	owner := ir.ObjectRef{Kind: "HTTPRoute", Namespace: "team-a", Name: "api"}
	for i := range routes {
		routes[i].Owner = owner
		if routes[i].Match.PathType == "" {
			routes[i].Match = ir.Match{PathType: ir.PathPrefix, Path: "/"}
		}
		if routes[i].Redirect == nil && routes[i].DirectResponse == nil && len(routes[i].Backends) == 0 {
			routes[i].Backends = []ir.WeightedBackend{{Cluster: "team-a/api", Weight: 1}}
		}
	}
	return &ir.IR{
		Gateways: []ir.Gateway{{Namespace: "platform", Name: "public", Listeners: []ir.Listener{{
			Name: "http", Port: 80, Protocol: ir.HTTP,
			VirtualHosts: []ir.VirtualHost{{Hostname: "api.example.com", Routes: routes}},
		}}}},
		Clusters: []ir.Cluster{{
			Name: "team-a/api", Owner: ir.ObjectRef{Kind: "Backend", Namespace: "team-a", Name: "api"},
			Endpoints:   []ir.Endpoint{{Address: "10.0.0.1", Port: 80}, {Address: "fd00::1", Port: 80}},
			HealthCheck: &ir.HealthCheck{Path: "/healthz"},
		}},
	}
}

func mustTranslate(t *testing.T, x *ir.IR) *snapshot.Set {
	t.Helper()
	set, err := Translate(x, testRevision)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// routesOf are the routes of every route configuration of a class, by name
// (the first of a name).
func routesOf(set *snapshot.Set, c snapshot.Class) map[string]*routev3.Route {
	out := map[string]*routev3.Route{}
	for _, rc := range set.Classes[c].Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				if _, ok := out[r.GetName()]; !ok {
					out[r.GetName()] = r
				}
			}
		}
	}
	return out
}

// TestHeaderValuesAreLiteral (issue 15 finding 2): header values are sent
// as written. Envoy parses them as format strings; the emitted value must
// be a literal format (every "%" escaped) that reads back as the original.
func TestHeaderValuesAreLiteral(t *testing.T) {
	values := []string{"50%off", "%REQ(authorization)%", "100%", "%%", "plain"}
	var set, add []ir.Header
	for i, v := range values {
		set = append(set, ir.Header{Name: "x-set-" + string(rune('a'+i)), Value: v})
		add = append(add, ir.Header{Name: "x-add-" + string(rune('a'+i)), Value: v})
	}
	x := fidelityIR(ir.Route{Name: "r", Filters: ir.Filters{
		RequestHeaders:  ir.HeaderModifier{Set: set, Add: add},
		ResponseHeaders: ir.HeaderModifier{Set: set},
	}})
	r := routesOf(mustTranslate(t, x), snapshot.Envoy)["r"]
	got := append(r.GetRequestHeadersToAdd(), r.GetResponseHeadersToAdd()...)
	if len(got) != 3*len(values) {
		t.Fatalf("%d headers, want %d", len(got), 3*len(values))
	}
	for _, h := range got {
		v := h.GetHeader().GetValue()
		if err := literalFormat(v); err != nil {
			t.Errorf("%s: %v", h.GetHeader().GetKey(), err)
		}
		want := values[h.GetHeader().GetKey()[len(h.GetHeader().GetKey())-1]-'a']
		if back := strings.ReplaceAll(v, "%%", "%"); back != want {
			t.Errorf("%s: Envoy sends %q, want %q", h.GetHeader().GetKey(), back, want)
		}
	}
}

// TestRouteTimeoutExplicit (finding 7): the route timeout is always set
// (Envoy reads an absent one as 15s); timeouts.request: 0s is an explicit
// 0; a GRPCRoute rule has none and takes the client's grpc-timeout; gRPC
// nodes get max_stream_duration only for a real bound.
func TestRouteTimeoutExplicit(t *testing.T) {
	x := fidelityIR(
		ir.Route{Name: "unset", Match: ir.Match{PathType: ir.PathPrefix, Path: "/unset"}},
		ir.Route{Name: "disabled", Match: ir.Match{PathType: ir.PathPrefix, Path: "/disabled"}, Timeouts: ir.Timeouts{NoRequestTimeout: true}},
		ir.Route{Name: "set", Match: ir.Match{PathType: ir.PathPrefix, Path: "/set"}, Timeouts: ir.Timeouts{Request: 3 * time.Second}},
		ir.Route{Name: "grpc", Match: ir.Match{PathType: ir.PathPrefix, Path: "/pkg.Svc/", GRPC: true}},
	)
	set := mustTranslate(t, x)
	for _, c := range []snapshot.Class{snapshot.Envoy, snapshot.EnvoyScoped} {
		rs := routesOf(set, c)
		for name, want := range map[string]time.Duration{"unset": 15 * time.Second, "disabled": 0, "set": 3 * time.Second, "grpc": 0} {
			a := rs[name].GetRoute()
			if a.GetTimeout() == nil {
				t.Errorf("%s %s: no timeout: Envoy would apply 15s", c, name)
				continue
			}
			if got := a.GetTimeout().AsDuration(); got != want {
				t.Errorf("%s %s: timeout %v, want %v", c, name, got, want)
			}
		}
		msd := rs["grpc"].GetRoute().GetMaxStreamDuration()
		if msd.GetGrpcTimeoutHeaderMax() == nil || msd.GetGrpcTimeoutHeaderMax().AsDuration() != 0 {
			t.Errorf("%s grpc: max_stream_duration %v, want grpc_timeout_header_max 0 (the client's grpc-timeout)", c, msd)
		}
	}
	g := routesOf(set, snapshot.GRPC)
	if d := g["set"].GetRoute().GetMaxStreamDuration().GetMaxStreamDuration().AsDuration(); d != 3*time.Second {
		t.Errorf("grpc set: max_stream_duration %v, want 3s", d)
	}
	for _, name := range []string{"unset", "disabled", "grpc"} {
		if msd := g[name].GetRoute().GetMaxStreamDuration(); msd != nil {
			t.Errorf("grpc %s: max_stream_duration %v, want none (the caller's deadline)", name, msd)
		}
	}
}

// TestNumRetriesExplicit (finding 8): num_retries is always written (Envoy
// and gRPC read an absent one as 1), and 0 attempts means no retry policy
// on either class (gRPC rejects num_retries 0).
func TestNumRetriesExplicit(t *testing.T) {
	x := fidelityIR(
		ir.Route{Name: "none", Match: ir.Match{PathType: ir.PathPrefix, Path: "/none"}, Retry: &ir.Retry{Attempts: 0, RetryOn: []string{"unavailable"}}},
		ir.Route{Name: "three", Match: ir.Match{PathType: ir.PathPrefix, Path: "/three"}, Retry: &ir.Retry{Attempts: 3, RetryOn: []string{"unavailable"}}},
	)
	set := mustTranslate(t, x)
	for _, c := range snapshot.Classes {
		rs := routesOf(set, c)
		if rp := rs["none"].GetRoute().GetRetryPolicy(); rp != nil {
			t.Errorf("%s: 0 attempts gave retry policy %v", c, rp)
		}
		if n := rs["three"].GetRoute().GetRetryPolicy().GetNumRetries(); n == nil || n.GetValue() != 3 {
			t.Errorf("%s: num_retries %v, want 3", c, n)
		}
	}
	// One attempt is written as 1, not left to the default.
	x = fidelityIR(ir.Route{Name: "one", Retry: &ir.Retry{Attempts: 1, RetryOn: []string{"unavailable"}}})
	for _, c := range snapshot.Classes {
		if n := routesOf(mustTranslate(t, x), c)["one"].GetRoute().GetRetryPolicy().GetNumRetries(); n == nil {
			t.Errorf("%s: num_retries absent", c)
		}
	}
}

// TestHealthCheckHost (finding 9): every endpoint of a health-checked
// Envoy cluster names the Host of its checks (Envoy would send the
// cluster name); gRPC nodes, which have no active health checks, get none.
func TestHealthCheckHost(t *testing.T) {
	set := mustTranslate(t, fidelityIR(ir.Route{Name: "r"}))
	want := []string{"10.0.0.1", "[fd00::1]"}
	for _, c := range snapshot.Classes {
		var got []string
		for _, cla := range set.Classes[c].Endpoints {
			for _, le := range cla.GetEndpoints()[0].GetLbEndpoints() {
				got = append(got, le.GetEndpoint().GetHealthCheckConfig().GetHostname())
			}
		}
		if c == snapshot.GRPC {
			want = []string{"", ""}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: health check hosts %q, want %q", c, got, want)
		}
	}
}

// TestTLSCertificatesBySDS (finding 10): an HTTPS listener's certificates
// are SDS secrets over ADS whose files Envoy watches, not inline files
// read once.
func TestTLSCertificatesBySDS(t *testing.T) {
	x := fidelityIR(ir.Route{Name: "r"})
	l := &x.Gateways[0].Listeners[0]
	l.Protocol, l.Port, l.Hostname = ir.HTTPS, 443, "api.example.com"
	l.TLS = &ir.TLS{CertificateRefs: []ir.TLSCertificate{{Name: "platform/api", CertFile: "/etc/gitxds/certs/platform/api/tls.crt", KeyFile: "/etc/gitxds/certs/platform/api/tls.key"}}}
	set := mustTranslate(t, x)
	for _, c := range []snapshot.Class{snapshot.Envoy, snapshot.EnvoyScoped} {
		res := set.Classes[c]
		fc := res.Listeners[0].GetFilterChains()[0]
		ctx := &tlsv3.DownstreamTlsContext{}
		if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx); err != nil {
			t.Fatal(err)
		}
		common := ctx.GetCommonTlsContext()
		if len(common.GetTlsCertificates()) > 0 {
			t.Errorf("%s: inline certificates, read once", c)
		}
		sds := common.GetTlsCertificateSdsSecretConfigs()
		if len(sds) != 1 || sds[0].GetSdsConfig().GetAds() == nil {
			t.Fatalf("%s: SDS configs %v, want one over ADS", c, sds)
		}
		if len(res.Secrets) != 1 || res.Secrets[0].GetName() != sds[0].GetName() {
			t.Fatalf("%s: secrets %v, want the one the listener names", c, res.Secrets)
		}
		cert := res.Secrets[0].GetTlsCertificate()
		if cert.GetWatchedDirectory().GetPath() != "/etc/gitxds/certs/platform/api" ||
			cert.GetCertificateChain().GetFilename() != "/etc/gitxds/certs/platform/api/tls.crt" ||
			cert.GetPrivateKey().GetFilename() != "/etc/gitxds/certs/platform/api/tls.key" {
			t.Errorf("%s: secret %v", c, res.Secrets[0])
		}
	}
	if n := len(set.Classes[snapshot.GRPC].Secrets); n != 0 {
		t.Errorf("grpc: %d secrets", n)
	}
}

// TestGRPCRouteActionsOnly (finding 11): gRPC nodes are sent only route
// actions (gRFC A28): redirects, direct responses and routes to a backend
// gRPC cannot serve route to the cluster without endpoints, which exists.
func TestGRPCRouteActionsOnly(t *testing.T) {
	x := fidelityIR(
		ir.Route{Name: "redirect", Match: ir.Match{PathType: ir.PathPrefix, Path: "/old"}, Redirect: &ir.Redirect{Hostname: "new.example.com"}},
		ir.Route{Name: "direct", Match: ir.Match{PathType: ir.PathPrefix, Path: "/gone"}, DirectResponse: &ir.DirectResponse{Status: 500}},
		ir.Route{Name: "dns", Match: ir.Match{PathType: ir.PathPrefix, Path: "/dns"}, Backends: []ir.WeightedBackend{{Cluster: "team-a/dns", Weight: 1}}},
		ir.Route{Name: "ok", Match: ir.Match{PathType: ir.PathPrefix, Path: "/ok"}},
	)
	x.Clusters = append(x.Clusters, ir.Cluster{Name: "team-a/dns", Owner: ir.ObjectRef{Kind: "Backend", Namespace: "team-a", Name: "dns"}, DNS: true,
		Endpoints: []ir.Endpoint{{Address: "a.example.com", Port: 80}, {Address: "b.example.com", Port: 80}}})
	set := mustTranslate(t, x)
	res := set.Classes[snapshot.GRPC]
	for _, rc := range res.Routes {
		if errs := CheckResource(snapshot.GRPC, rc); len(errs) > 0 {
			t.Errorf("%s: %v", rc.GetName(), errs)
		}
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				a := r.GetRoute()
				if a == nil {
					t.Errorf("route %s: action %s, not route", r.GetName(), actionName(r))
					continue
				}
				want := invalidBackendCluster
				if r.GetName() == "ok" {
					want = "team-a/api"
				}
				if a.GetCluster() != want {
					t.Errorf("route %s: cluster %q, want %q", r.GetName(), a.GetCluster(), want)
				}
			}
		}
	}
	found := false
	for _, c := range res.Clusters {
		found = found || c.GetName() == invalidBackendCluster
	}
	if !found {
		t.Errorf("no %s cluster", invalidBackendCluster)
	}
	// Envoy keeps its redirect and direct response.
	e := routesOf(set, snapshot.Envoy)
	if e["redirect"].GetRedirect() == nil || e["direct"].GetDirectResponse() == nil {
		t.Errorf("Envoy lost its redirect or direct response")
	}
}

// TestEnvoyClassesByVersion (finding 1, What to build 2): a port whose
// hostnames are exact gets scoped routes only on EnvoyScoped nodes (Envoy
// 1.38 or later); Envoy nodes get one RouteConfiguration per port, unless
// the Gateway asks for scoped routes on every Envoy (per-hostname) or for
// none (per-port).
func TestEnvoyClassesByVersion(t *testing.T) {
	scopedOn := func(set *snapshot.Set, c snapshot.Class) bool {
		cms, err := xdsres.ConnectionManagers(set.Classes[c].Listeners[0])
		if err != nil {
			t.Fatal(err)
		}
		return cms[0].HCM.GetScopedRoutes() != nil
	}
	for _, tc := range []struct {
		name                string
		perPort, perHost    bool
		wantEnvoy, wantNew  bool
		wantSharedResources bool
	}{
		{name: "by version", wantEnvoy: false, wantNew: true},
		{name: "per-hostname", perHost: true, wantEnvoy: true, wantNew: true, wantSharedResources: true},
		{name: "per-port", perPort: true, wantEnvoy: false, wantNew: false, wantSharedResources: true},
	} {
		x := fidelityIR(ir.Route{Name: "r"})
		x.Gateways[0].PortRouteConfigs, x.Gateways[0].ScopedRoutes = tc.perPort, tc.perHost
		set := mustTranslate(t, x)
		if got := scopedOn(set, snapshot.Envoy); got != tc.wantEnvoy {
			t.Errorf("%s: envoy scoped %v, want %v", tc.name, got, tc.wantEnvoy)
		}
		if got := scopedOn(set, snapshot.EnvoyScoped); got != tc.wantNew {
			t.Errorf("%s: envoy-scoped scoped %v, want %v", tc.name, got, tc.wantNew)
		}
		if shared := set.Classes[snapshot.Envoy] == set.Classes[snapshot.EnvoyScoped]; shared != tc.wantSharedResources {
			t.Errorf("%s: classes share resources %v, want %v", tc.name, shared, tc.wantSharedResources)
		}
	}
}

// TestStripTrailingHostDot (finding 6): "shop.example.com." reaches the
// virtual host or scope of shop.example.com on every Envoy chain.
func TestStripTrailingHostDot(t *testing.T) {
	set := mustTranslate(t, fidelityIR(ir.Route{Name: "r"}))
	for _, c := range []snapshot.Class{snapshot.Envoy, snapshot.EnvoyScoped} {
		cms, err := xdsres.ConnectionManagers(set.Classes[c].Listeners[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, cm := range cms {
			h := cm.HCM
			if !h.GetStripTrailingHostDot() {
				t.Errorf("%s: strip_trailing_host_dot is off", c)
			}
		}
	}
}

// TestSemanticRules: each rule of the Envoy-semantics check catches what
// Envoy (or a gRFC A28 client) rejects, and passes what it accepts.
func TestSemanticRules(t *testing.T) {
	route := func(mod func(r *routev3.Route)) *routev3.RouteConfiguration {
		r := &routev3.Route{Name: "r", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}}}
		mod(r)
		return &routev3.RouteConfiguration{Name: "rc", VirtualHosts: []*routev3.VirtualHost{{Name: "vh", Domains: []string{"a.example.com"}, Routes: []*routev3.Route{r}}}}
	}
	header := func(k, v string) []*corev3.HeaderValueOption {
		return []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: k, Value: v}}}
	}
	regexRoute := func(re string) *routev3.RouteConfiguration {
		return route(func(r *routev3.Route) {
			r.Match = &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: re}}}
		})
	}
	weighted := func(ws ...uint32) *routev3.RouteConfiguration {
		return route(func(r *routev3.Route) {
			wc := &routev3.WeightedCluster{}
			for i, w := range ws {
				wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: string(rune('a' + i)), Weight: wrapperspb.UInt32(w)})
			}
			r.GetRoute().ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
		})
	}
	long := "^/(" + strings.Repeat("alpha|beta|gamma|delta|", 6) + "omega)$"
	for _, tc := range []struct {
		name  string
		class snapshot.Class
		res   any
		want  string // "" for no violation
	}{
		{"literal value", snapshot.Envoy, route(func(r *routev3.Route) { r.RequestHeadersToAdd = header("x", "50%%off") }), ""},
		{"lone percent", snapshot.Envoy, route(func(r *routev3.Route) { r.RequestHeadersToAdd = header("x", "50%off") }), "not escaped"},
		{"command", snapshot.Envoy, route(func(r *routev3.Route) { r.ResponseHeadersToAdd = header("x", "%REQ(y)%") }), "not escaped"},
		{"set host", snapshot.Envoy, route(func(r *routev3.Route) { r.RequestHeadersToAdd = header("Host", "a") }), "cannot be added"},
		{"pseudo header", snapshot.Envoy, route(func(r *routev3.Route) { r.RequestHeadersToAdd = header(":path", "/a") }), "cannot be added"},
		{"remove host", snapshot.EnvoyScoped, route(func(r *routev3.Route) { r.RequestHeadersToRemove = []string{"host"} }), "cannot be removed"},
		{"duplicate domain", snapshot.Envoy, &routev3.RouteConfiguration{Name: "rc", VirtualHosts: []*routev3.VirtualHost{
			{Name: "a", Domains: []string{"a.example.com", "*"}}, {Name: "b", Domains: []string{"A.example.com"}}}}, "is in virtual hosts"},
		{"two catch-alls", snapshot.Envoy, &routev3.RouteConfiguration{Name: "rc", VirtualHosts: []*routev3.VirtualHost{
			{Name: "a", Domains: []string{"*"}}, {Name: "b", Domains: []string{"*"}}}}, "is in virtual hosts"},
		{"small regex", snapshot.Envoy, regexRoute("^/a/[0-9]+$"), ""},
		{"big regex", snapshot.Envoy, regexRoute(long), "RE2 instructions"},
		{"zero weights", snapshot.GRPC, weighted(0, 0), "add up to 0"},
		{"weights", snapshot.Envoy, weighted(1, 0), ""},
		{"grpc direct response", snapshot.GRPC, route(func(r *routev3.Route) {
			r.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 503}}
		}), "gRFC A28"},
		{"grpc redirect", snapshot.GRPC, route(func(r *routev3.Route) {
			r.Action = &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{HostRedirect: "b"}}
		}), "gRFC A28"},
		{"envoy redirect", snapshot.Envoy, route(func(r *routev3.Route) {
			r.Action = &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{HostRedirect: "b"}}
		}), ""},
		{"two rewrites", snapshot.Envoy, route(func(r *routev3.Route) {
			r.GetRoute().PrefixRewrite = "/a"
			r.GetRoute().RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "^/b"}, Substitution: "/c"}
		}), "more than one of"},
		{"back-off", snapshot.Envoy, route(func(r *routev3.Route) {
			r.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryBackOff: &routev3.RetryPolicy_RetryBackOff{
				BaseInterval: durationpb.New(time.Second), MaxInterval: durationpb.New(time.Millisecond)}}
		}), "shorter than base_interval"},
		{"big direct response", snapshot.Envoy, route(func(r *routev3.Route) {
			r.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 200,
				Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: strings.Repeat("x", 5000)}}}}
		}), "over Envoy's maximum"},
		{"same filter chain match", snapshot.Envoy, &listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{
			{Name: "a", FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"a"}}},
			{Name: "b", FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"a"}}}}}, "same match"},
		{"maglev prime", snapshot.Envoy, &clusterv3.Cluster{Name: "c", LbPolicy: clusterv3.Cluster_MAGLEV,
			LbConfig: &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(65537)}}}, ""},
		{"maglev not prime", snapshot.Envoy, &clusterv3.Cluster{Name: "c", LbPolicy: clusterv3.Cluster_MAGLEV,
			LbConfig: &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(65536)}}}, "not a prime number"},
		{"grpc maglev", snapshot.GRPC, &clusterv3.Cluster{Name: "c", LbPolicy: clusterv3.Cluster_MAGLEV}, "not supported by gRPC"},
		{"grpc random", snapshot.GRPC, &clusterv3.Cluster{Name: "c", LbPolicy: clusterv3.Cluster_RANDOM}, "not supported by gRPC"},
		{"grpc ring hash", snapshot.GRPC, &clusterv3.Cluster{Name: "c", LbPolicy: clusterv3.Cluster_RING_HASH}, ""},
		{"grpc ring hash murmur", snapshot.GRPC, &clusterv3.Cluster{Name: "c", LbPolicy: clusterv3.Cluster_RING_HASH,
			LbConfig: &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{HashFunction: clusterv3.Cluster_RingHashLbConfig_MURMUR_HASH_2}}}, "only XX_HASH"},
		{"grpc least request choice 1", snapshot.GRPC, &clusterv3.Cluster{Name: "c", LbPolicy: clusterv3.Cluster_LEAST_REQUEST,
			LbConfig: &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{ChoiceCount: wrapperspb.UInt32(1)}}}, "at least 2"},
		{"distinct filter chain matches", snapshot.Envoy, &listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{
			{Name: "a", FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"a"}}}, {Name: "b"}}}, ""},
	} {
		var errs []error
		switch r := tc.res.(type) {
		case *routev3.RouteConfiguration:
			errs = CheckResource(tc.class, r)
		case *listenerv3.Listener:
			errs = CheckResource(tc.class, r)
		case *clusterv3.Cluster:
			errs = CheckResource(tc.class, r)
		}
		got := ""
		for _, err := range errs {
			got += err.Error() + "; "
		}
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%s: %s", tc.name, got)
		case tc.want != "" && !strings.Contains(got, tc.want):
			t.Errorf("%s: violations %q, want one with %q", tc.name, got, tc.want)
		}
	}
	// The early header mutation that sets the listener port is checked
	// like a route's headers: the gitxds one passes.
	set := mustTranslate(t, fidelityIR(ir.Route{Name: "r"}))
	for _, l := range set.Classes[snapshot.EnvoyScoped].Listeners {
		if errs := CheckResource(snapshot.EnvoyScoped, l); len(errs) > 0 {
			t.Errorf("listener %s: %v", l.GetName(), errs)
		}
	}
}

// TestTranslateRejectsWhatEnvoyRejects: the semantic check runs in
// Translate and names the route at fault.
func TestTranslateRejectsWhatEnvoyRejects(t *testing.T) {
	long := "^/(" + strings.Repeat("alpha|beta|gamma|delta|", 6) + "omega)$"
	x := fidelityIR(ir.Route{Name: "team-a/api/rule/0/match/0", Match: ir.Match{PathType: ir.PathRegex, Path: long}})
	_, err := Translate(x, testRevision)
	if err == nil || !strings.Contains(err.Error(), "RE2 instructions") || !strings.Contains(err.Error(), "HTTPRoute team-a/api") {
		t.Fatalf("err = %v, want the regex size violation on HTTPRoute team-a/api", err)
	}
}
