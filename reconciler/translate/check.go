package translate

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	grpcalsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// validateAll runs every resource's ValidateAll, the typed configs inside
// them having been validated when they were packed.
func (t *translation) validateAll(class snapshot.Class, res *snapshot.Resources) {
	for _, l := range res.Listeners {
		if err := l.ValidateAll(); err != nil {
			t.failResource(class, kindListener, l.GetName(), err)
		}
	}
	for _, rc := range res.Routes {
		if err := rc.ValidateAll(); err != nil {
			t.failResource(class, kindRouteConfig, rc.GetName(), err)
		}
	}
	for _, sc := range res.ScopedRoutes {
		if err := sc.ValidateAll(); err != nil {
			t.failResource(class, kindRouteConfig, sc.GetName(), err)
		}
	}
	for _, c := range res.Clusters {
		if err := c.ValidateAll(); err != nil {
			t.fail(t.clusterOwner(c.GetName()), "cluster "+c.GetName(), class, err)
		}
	}
	for _, e := range res.Endpoints {
		if err := e.ValidateAll(); err != nil {
			t.fail(t.clusterOwner(e.GetClusterName()), "endpoints "+e.GetClusterName(), class, err)
		}
	}
	for _, sec := range res.Secrets {
		if err := sec.ValidateAll(); err != nil {
			t.fail(ir.ObjectRef{Kind: "Secret", Name: sec.GetName()}, "secret "+sec.GetName(), class, err)
		}
	}
}

func (t *translation) clusterOwner(name string) ir.ObjectRef {
	if c := t.clusters[name]; c != nil {
		return c.Owner
	}
	return ir.ObjectRef{Kind: "Cluster", Name: name}
}

func (t *translation) routeOwner(name string) ir.ObjectRef {
	if o, ok := t.routeOwners[name]; ok {
		return o
	}
	return ir.ObjectRef{Kind: "Route", Name: name}
}

// checkConsistency checks the references between the resources of a class,
// API listeners included (go-control-plane's Snapshot.Consistent does not
// understand them): every route configuration a listener names exists and
// is used, every cluster a route or access log names exists, and every EDS
// cluster has a load assignment and every load assignment a cluster.
func (t *translation) checkConsistency(class snapshot.Class, res *snapshot.Resources) {
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range res.Clusters {
		clusters[c.GetName()] = c
	}
	routes := map[string]bool{}
	for _, rc := range res.Routes {
		routes[rc.GetName()] = true
	}
	scopesOf := map[string]int{} // scoped routes name -> scopes
	for _, sc := range res.ScopedRoutes {
		scopesOf[scopeSet(sc.GetName())]++
	}
	usedScopes := map[string]bool{}
	used := map[string]bool{}
	secrets := map[string]bool{}
	for _, sec := range res.Secrets {
		secrets[sec.GetName()] = false
	}
	for _, l := range res.Listeners {
		names, err := xdsres.ListenerSecrets(l)
		if err != nil {
			t.failResource(class, kindListener, l.GetName(), err)
			names = nil
		}
		for _, n := range names {
			if _, ok := secrets[n]; !ok {
				t.failResource(class, kindListener, l.GetName(), fmt.Errorf("SDS secret %q does not exist", n))
				continue
			}
			secrets[n] = true
		}
	}
	for _, sec := range res.Secrets { // sorted
		if n := sec.GetName(); !secrets[n] {
			t.fail(ir.ObjectRef{Kind: "Secret", Name: n}, "secret "+n, class, fmt.Errorf("no listener uses it"))
		}
	}
	for _, l := range res.Listeners {
		cms, err := xdsres.ConnectionManagers(l)
		if err != nil {
			t.failResource(class, kindListener, l.GetName(), err)
			continue
		}
		for _, cm := range cms {
			hcm := cm.HCM
			if sr := hcm.GetScopedRoutes(); sr != nil {
				if scopesOf[sr.GetName()] == 0 {
					t.failResource(class, kindListener, l.GetName(), fmt.Errorf("scoped routes %q have no scope", sr.GetName()))
				}
				usedScopes[sr.GetName()] = true
				t.checkAccessLogs(class, l.GetName(), hcm, clusters)
				continue
			}
			name := hcm.GetRds().GetRouteConfigName()
			if name == "" {
				t.failResource(class, kindListener, l.GetName(), fmt.Errorf("HttpConnectionManager without RDS"))
				continue
			}
			used[name] = true
			if !routes[name] {
				t.failResource(class, kindListener, l.GetName(), fmt.Errorf("route configuration %q does not exist", name))
			}
			t.checkAccessLogs(class, l.GetName(), hcm, clusters)
		}
	}
	keys := map[string]string{}
	for _, sc := range res.ScopedRoutes {
		if !usedScopes[scopeSet(sc.GetName())] {
			t.failResource(class, kindRouteConfig, sc.GetName(), fmt.Errorf("no listener uses its scoped routes"))
		}
		rc := sc.GetRouteConfigurationName()
		used[rc] = true
		if !routes[rc] {
			t.failResource(class, kindRouteConfig, sc.GetName(), fmt.Errorf("route configuration %q does not exist", rc))
		}
		// Envoy shares scopes between listeners: a key must be unique in
		// the whole class.
		k := scopeKey(sc)
		if other, dup := keys[k]; dup {
			t.failResource(class, kindRouteConfig, sc.GetName(), fmt.Errorf("scope key %s is also %q's", k, other))
		}
		keys[k] = sc.GetName()
	}
	for _, rc := range res.Routes {
		if !used[rc.GetName()] {
			t.failResource(class, kindRouteConfig, rc.GetName(), fmt.Errorf("no listener uses it"))
		}
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				for _, c := range xdsres.RouteClusters(r) {
					if c == invalidBackendCluster && class.IsEnvoy() &&
						r.GetRoute().GetClusterNotFoundResponseCode() == routev3.RouteAction_INTERNAL_SERVER_ERROR {
						continue // meant not to exist: Envoy answers 500
					}
					if clusters[c] == nil {
						t.fail(t.routeOwner(r.GetName()), "route "+r.GetName(), class, fmt.Errorf("cluster %q does not exist", c))
					}
				}
			}
		}
	}
	assigned := map[string]bool{}
	for _, e := range res.Endpoints {
		name := e.GetClusterName()
		assigned[name] = true
		if c := clusters[name]; c == nil || c.GetType() != clusterv3.Cluster_EDS {
			t.fail(t.clusterOwner(name), "endpoints "+name, class, fmt.Errorf("no EDS cluster uses them"))
		}
	}
	for _, c := range res.Clusters {
		if c.GetType() == clusterv3.Cluster_EDS && !assigned[xdsres.EDSName(c)] {
			t.fail(t.clusterOwner(c.GetName()), "cluster "+c.GetName(), class, fmt.Errorf("EDS cluster without a load assignment"))
		}
	}
}

func (t *translation) checkAccessLogs(class snapshot.Class, listener string, hcm *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster) {
	for _, al := range hcm.GetAccessLog() {
		if c := alsCluster(al); c != "" && clusters[c] == nil {
			t.failResource(class, kindListener, listener, fmt.Errorf("access log cluster %q does not exist", c))
		}
	}
}

// scopeSet is the name of the scoped routes a scope belongs to: its name
// up to "/http/" (envoyScopeName).
func scopeSet(scope string) string {
	if i := strings.Index(scope, "/http/"); i >= 0 {
		return scope[:i]
	}
	return scope
}

func scopeKey(sc *routev3.ScopedRouteConfiguration) string {
	var parts []string
	for _, f := range sc.GetKey().GetFragments() {
		parts = append(parts, strconv.Quote(f.GetStringKey()))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func alsCluster(al *accesslogv3.AccessLog) string {
	cfg := &grpcalsv3.HttpGrpcAccessLogConfig{}
	if al.GetTypedConfig().MessageIs(cfg) && al.GetTypedConfig().UnmarshalTo(cfg) == nil {
		return cfg.GetCommonConfig().GetGrpcService().GetEnvoyGrpc().GetClusterName()
	}
	return ""
}

// checkIR reports the IR's broken invariants on the objects at fault, so
// that the caller can drop them, then runs ir.IR.Validate for any invariant
// added there since.
func (t *translation) checkIR() {
	seen := map[string]bool{}
	for _, c := range t.x.Clusters {
		if c.Name == invalidBackendCluster {
			t.fail(c.Owner, "cluster "+c.Name, "", fmt.Errorf("cluster name %q is reserved", c.Name))
		}
		if seen[c.Name] {
			t.fail(c.Owner, "cluster "+c.Name, "", fmt.Errorf("cluster name is not unique"))
		}
		seen[c.Name] = true
		if len(c.Endpoints) == 0 && (c.Service == nil || c.DNS) {
			t.fail(c.Owner, "cluster "+c.Name, "", ir.ErrClusterNoEndpoints)
		}
	}
	for gi := range t.x.Gateways {
		g := &t.x.Gateways[gi]
		for _, l := range g.Listeners {
			if l.Port == 0 || l.Port > 65535 {
				t.fail(gatewayRef(g), "listener "+l.Name, "", ir.ErrListenerPortInvalid)
			}
			if l.Protocol != ir.HTTP && l.Protocol != ir.HTTPS {
				t.fail(gatewayRef(g), "listener "+l.Name, "", fmt.Errorf("protocol %q is not HTTP or HTTPS", l.Protocol))
			}
			for _, vh := range l.VirtualHosts {
				for _, r := range vh.Routes {
					t.checkRoute(&r)
				}
			}
		}
	}
	if len(t.errs) > 0 {
		return
	}
	if err := t.x.Validate(); err != nil {
		t.errs = append(t.errs, fmt.Errorf("translate: invalid IR: %w", err))
	}
}

func (t *translation) checkRoute(r *ir.Route) {
	actions := 0
	if len(r.Backends) > 0 {
		actions++
	}
	if r.Redirect != nil {
		actions++
	}
	if r.DirectResponse != nil {
		actions++
	}
	switch {
	case actions == 0:
		t.fail(r.Owner, "route "+r.Name, "", ir.ErrRouteNoAction)
	case actions > 1:
		t.fail(r.Owner, "route "+r.Name, "", fmt.Errorf("route has more than one action"))
	}
	if r.InvalidWeight > 0 && len(r.Backends) == 0 {
		t.fail(r.Owner, "route "+r.Name, "", fmt.Errorf("InvalidWeight without Backends"))
	}
	total := uint64(r.InvalidWeight)
	for _, b := range r.Backends {
		total += uint64(b.Weight)
	}
	if total > math.MaxUint32 {
		t.fail(r.Owner, "route "+r.Name, "", fmt.Errorf("backend weights add up to %d, more than %d", total, uint32(math.MaxUint32)))
	}
	for _, b := range r.Backends {
		if t.clusters[b.Cluster] == nil {
			t.fail(r.Owner, "route "+r.Name, "", fmt.Errorf("%w: %s", ir.ErrUnknownCluster, b.Cluster))
		}
	}
	for _, m := range r.Filters.Mirrors {
		if t.clusters[m.Cluster] == nil {
			t.fail(r.Owner, "route "+r.Name, "", fmt.Errorf("mirror: %w: %s", ir.ErrUnknownCluster, m.Cluster))
		}
	}
}

// dedupe merges the errors that several classes report on one element
// into one error: without class, or of class Envoy when only the two
// Envoy classes report it.
func dedupe(errs []error) []error {
	type key struct {
		owner   ir.ObjectRef
		element string
		msg     string
	}
	first := map[key]*Error{}
	var out []error
	for _, err := range errs {
		e, ok := err.(*Error)
		if !ok {
			out = append(out, err)
			continue
		}
		k := key{e.Owner, e.Element, e.Err.Error()}
		if prev := first[k]; prev != nil {
			switch {
			case prev.Class == e.Class:
			case prev.Class.IsEnvoy() && e.Class.IsEnvoy():
				prev.Class = snapshot.Envoy // both Envoy classes: "envoy"
			default:
				prev.Class = ""
			}
			continue
		}
		first[k] = e
		out = append(out, e)
	}
	return out
}
