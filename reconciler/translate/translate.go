// Package translate turns an IR into the xDS resources of one revision, per
// node class. It is pure and deterministic: the same IR always gives the same
// bytes, and nothing is read from or written to the outside world.
//
// # Envoy nodes (snapshot.Envoy and snapshot.EnvoyScoped)
//
// Both Envoy classes get the same listeners, clusters and secrets; they
// differ in how a plaintext port's routes are delivered: EnvoyScoped
// (Envoy 1.38 or later, snapshot.ScopedRoutesSince) gets scoped routes
// where they apply, Envoy (older or unknown versions) one
// RouteConfiguration per port, unless a Gateway of the port asks for
// scoped routes on every Envoy (ir.Gateway.ScopedRoutes). When no port
// differs, both classes share one Resources.
//
//   - One socket Listener per distinct Gateway listener port, named
//     "port-<P>", bound to 0.0.0.0:<P>. Gateway listeners of the same port (of
//     any Gateway) are merged into it.
//   - HTTP listeners of a port share one filter chain named "http". When
//     every hostname of its virtual hosts is an exact name (and the class
//     gets scoped routes), its HttpConnectionManager uses scoped routes
//     (SRDS over ADS): one
//     ScopedRouteConfiguration and one RouteConfiguration per hostname H,
//     both named "port-<P>/http/<H>", the scope keyed on (H, P). The key is
//     built from the host part of :authority (the text before the first
//     ":") and the header x-gitxds-listener-port, which an early header
//     mutation of that HttpConnectionManager sets to P (overwriting what a
//     client sent) and the route configuration removes before the request
//     goes upstream. The port is in the key because Envoy shares SRDS
//     resources between every HttpConnectionManager of a node: without it,
//     a hostname of one port would be routable through another. So a
//     change to one team's routes sends Envoy that team's route
//     configuration, not the whole port's. A request whose host is no scope
//     gets Envoy's 404, as it would from a route configuration without its
//     virtual host. Scope keys are compared exactly, so a port with a
//     wildcard or catch-all hostname keeps one RouteConfiguration
//     "port-<P>" fetched by RDS (and so does every port of a Gateway with
//     ir.Gateway.PortRouteConfigs, and every port with
//     Options.PortRouteConfigs). Scope keys compare the host's bytes (see
//     scopeRoutes).
//   - Every HttpConnectionManager strips a trailing dot from the host.
//   - Header values are escaped for Envoy's format strings; every route
//     has an explicit timeout and every retry policy explicit num_retries
//     (envoyTimeouts, envoyRetry).
//   - TLS certificates are SDS secrets over ADS whose files Envoy
//     watches (tlsSecret).
//   - HTTPS listeners of a port get one filter chain per listener hostname
//     (SNI), named "https/<hostname>" ("https/*" for a listener without
//     hostname), with a DownstreamTlsContext and their own RouteConfiguration
//     "port-<P>/<hostname>" ("port-<P>/*"): a request is only routed to the
//     virtual hosts of the certificate it was served, so one TLS listener
//     cannot front another listener's hostnames, and a TLS chain answers
//     421 for the hostnames of a more specific chain (HTTP/2 connection
//     coalescing). HTTPS listeners of one hostname on one port share a chain
//     whose certificates are those of the first (Gateway order). A port with
//     an HTTPS listener gets the TLS inspector; its plaintext chain, if any,
//     then matches raw_buffer.
//   - Routes of one hostname from several listeners merged into one chain
//     are concatenated in Gateway order (a route attached twice appears
//     once). The access logs of every Gateway of a port apply to the whole
//     port.
//   - Virtual hosts are named after the route hostname; their domains are
//     "H" and "H:<P>" ("*" for the catch-all).
//   - Every HttpConnectionManager carries the CORS and local rate limit
//     filters (no-ops without a per-route config) and ends with the router,
//     so adding the first CORS or rate-limited route does not change (and
//     drain) the listener.
//
// # Proxyless gRPC nodes (snapshot.GRPC)
//
//   - For every hostname H of a virtual host on a listener of port P: API
//     listeners "H" and "H:<P>", both fetching the RouteConfiguration "H" by
//     RDS over ADS, with only the router filter. A node that dials one host
//     only receives that host's routes.
//   - RouteConfiguration "H" holds one virtual host per group of ports that
//     serve identical routes for H, with domains "H:<P>" of those ports; the
//     group of the lowest port also gets the bare domain "H" (the target
//     xds:///H). Routes of the same hostname from several listeners of one
//     port are concatenated in Gateway order.
//   - Wildcard hostnames ("*", "*.example.com") are skipped: they cannot be
//     API listener names, so no gRPC channel can resolve them.
//   - Only what gRPC implements is sent; grpcRoutes and grpcCluster list
//     what is left out and why.
//
// # Clusters (both classes)
//
// Clusters keep their IR name ("<namespace>/<backend>[:<port>]"). IP
// backends are EDS clusters over ADS with a ClusterLoadAssignment of the same
// name; DNS backends are STRICT_DNS (Envoy) or LOGICAL_DNS (gRPC, one
// hostname only) clusters with an inline load assignment. The share of
// unresolved backendRefs of a route goes to the cluster "invalid-backend"
// (see invalidBackendCluster).
//
// # Validation
//
// Every typed config is validated before it is packed into an Any, every
// resource passes ValidateAll, every regular expression compiles as RE2,
// the references between the resources of each class are checked, API
// listeners included (checkConsistency), and so are the rules Envoy and
// gRPC enforce when they load a resource that ValidateAll does not
// express (checkSemantics, semantics.go).
package translate

import (
	"errors"
	"fmt"
	"sort"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
)

// Error is a failure to translate one IR element. The caller reports it on
// Owner (the Git object) and may drop that object and translate again.
type Error struct {
	// Owner is the Git object the failing element came from.
	Owner ir.ObjectRef
	// Element names the IR element: a route name, a cluster name or a
	// listener ("port-8080").
	Element string
	// Class is the node class whose resources failed, empty when the
	// failure does not depend on the class.
	Class snapshot.Class
	Err   error
}

func (e *Error) Error() string {
	where := e.Owner.String()
	if e.Owner.File != "" {
		where += " (" + e.Owner.File + ")"
	}
	class := ""
	if e.Class != "" {
		class = " [" + string(e.Class) + "]"
	}
	return fmt.Sprintf("%s: %s%s: %v", where, e.Element, class, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Translate builds the resources of every node class from an IR. It fails
// when the IR breaks its invariants (those of ir.IR.Validate) or when an
// element does not give valid xDS; the error then joins one *Error per
// failing element, each naming the IR object at fault (errors.As finds the
// first; a joined error's Unwrap() []error gives them all).
func Translate(x *ir.IR, revision string) (*snapshot.Set, error) {
	return TranslateWith(x, revision, Options{})
}

// Options change how Translate builds resources.
type Options struct {
	// PortRouteConfigs gives the plaintext chain of every Envoy port one
	// RouteConfiguration of all its virtual hosts, as most control planes
	// do, instead of scoped routes (one RouteConfiguration per hostname).
	// The scale harness's baseline uses it.
	PortRouteConfigs bool
	// ScopedRoutes gives Envoy nodes of every version scoped routes where
	// they apply, as the Gateway annotation gitxds.dev/envoy-route-config:
	// per-hostname does for its ports (PortRouteConfigs wins). The scale
	// harness's gitxds role uses it: its simulated nodes send no version.
	ScopedRoutes bool
}

// TranslateWith is Translate with options.
//
// Each proxy group (ir.Gateway.Group) is translated on its own, from an IR
// of its Gateways and every cluster: its nodes serve those Gateways only,
// so listeners of one port are merged, and their routes ordered, within a
// group. An IR without groups gives a Set without groups.
func TranslateWith(x *ir.IR, revision string, opts Options) (*snapshot.Set, error) {
	if x == nil {
		x = &ir.IR{}
	}
	parts := splitGroups(x)
	groups := map[snapshot.Group]map[snapshot.Class]*snapshot.Resources{}
	var errs []error
	for _, g := range sortedGroups(parts) {
		classes, gerrs := translateClasses(parts[g], opts)
		errs = append(errs, gerrs...)
		groups[g] = classes
	}
	if len(errs) > 0 {
		// An element of every group (a cluster) fails in each: once.
		return nil, errors.Join(dedupe(errs)...)
	}
	return snapshot.NewGroups(revision, groups), nil
}

// splitGroups is the IR of each proxy group: its Gateways (in x's order)
// with everything else of x (clusters, patches). The default group is
// always there.
func splitGroups(x *ir.IR) map[snapshot.Group]*ir.IR {
	shared := func() *ir.IR {
		p := *x
		p.Gateways = nil
		return &p
	}
	out := map[snapshot.Group]*ir.IR{snapshot.DefaultGroup: shared()}
	for _, g := range x.Gateways {
		k := snapshot.Group(g.Group)
		if out[k] == nil {
			out[k] = shared()
		}
		out[k].Gateways = append(out[k].Gateways, g)
	}
	if len(out) == 1 {
		out[snapshot.DefaultGroup] = x
	}
	return out
}

func sortedGroups(parts map[snapshot.Group]*ir.IR) []snapshot.Group {
	out := make([]snapshot.Group, 0, len(parts))
	for g := range parts {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// translateClasses builds the resources of every node class of one group.
func translateClasses(x *ir.IR, opts Options) (map[snapshot.Class]*snapshot.Resources, []error) {
	t := newTranslation(x)
	t.opts = opts
	if t.checkIR(); len(t.errs) > 0 {
		return nil, t.errs
	}
	perPort, scoped := t.envoyClasses()
	classes := map[snapshot.Class]*snapshot.Resources{
		snapshot.Envoy:       perPort,
		snapshot.EnvoyScoped: scoped,
		snapshot.GRPC:        t.grpc(),
	}
	if len(t.errs) > 0 {
		return nil, dedupe(t.errs)
	}
	for _, c := range snapshot.Classes {
		if c == snapshot.EnvoyScoped && classes[c] == classes[snapshot.Envoy] {
			continue // the same resources, checked once
		}
		t.validateAll(c, classes[c])
		t.checkConsistency(c, classes[c])
		t.checkSemantics(c, classes[c])
	}
	if len(t.errs) > 0 {
		return nil, dedupe(t.errs)
	}
	return classes, nil
}

// translation is the state of one Translate call; it is never reused.
type translation struct {
	opts     Options
	x        *ir.IR
	clusters map[string]*ir.Cluster
	// routeOwners maps an xDS route name (the IR route name) to its owner,
	// for errors found after the routes are built.
	routeOwners map[string]ir.ObjectRef
	// resourceOwners maps "<kind> <name>" of a listener or route
	// configuration to the Gateways it came from, per class.
	resourceOwners map[snapshot.Class]map[string][]ir.ObjectRef
	// envoyRoutes memoizes envoyRoute per IR route.
	envoyRoutes map[*ir.Route]routeResult
	// secrets are the SDS secrets of the TLS filter chains, by name.
	secrets map[string]*tlsv3.Secret
	errs    []error
}

func newTranslation(x *ir.IR) *translation {
	t := &translation{
		x:              x,
		clusters:       make(map[string]*ir.Cluster, len(x.Clusters)),
		routeOwners:    map[string]ir.ObjectRef{},
		resourceOwners: map[snapshot.Class]map[string][]ir.ObjectRef{snapshot.Envoy: {}, snapshot.EnvoyScoped: {}, snapshot.GRPC: {}},
		envoyRoutes:    map[*ir.Route]routeResult{},
		secrets:        map[string]*tlsv3.Secret{},
	}
	for i := range x.Clusters {
		t.clusters[x.Clusters[i].Name] = &x.Clusters[i]
	}
	for _, g := range x.Gateways {
		for _, l := range g.Listeners {
			for _, vh := range l.VirtualHosts {
				for _, r := range vh.Routes {
					if _, ok := t.routeOwners[r.Name]; !ok {
						t.routeOwners[r.Name] = r.Owner
					}
				}
			}
		}
	}
	return t
}

func (t *translation) fail(owner ir.ObjectRef, element string, class snapshot.Class, err error) {
	t.errs = append(t.errs, &Error{Owner: owner, Element: element, Class: class, Err: err})
}

func gatewayRef(g *ir.Gateway) ir.ObjectRef {
	return ir.ObjectRef{Kind: "Gateway", Namespace: g.Namespace, Name: g.Name}
}

// Kinds of resources in resourceOwners and errors.
const (
	kindListener    = "listener"
	kindRouteConfig = "route configuration"
)

// failResource reports an error on every Gateway that contributed to a
// listener or route configuration.
func (t *translation) failResource(class snapshot.Class, kind, name string, err error) {
	owners := t.resourceOwners[class][kind+" "+name]
	if len(owners) == 0 {
		owners = []ir.ObjectRef{{Kind: "Gateway", Name: "?"}}
	}
	for _, o := range owners {
		t.fail(o, kind+" "+name, class, err)
	}
}

func (t *translation) addOwner(class snapshot.Class, kind, name string, owner ir.ObjectRef) {
	key := kind + " " + name
	for _, o := range t.resourceOwners[class][key] {
		if o == owner {
			return
		}
	}
	t.resourceOwners[class][key] = append(t.resourceOwners[class][key], owner)
}
