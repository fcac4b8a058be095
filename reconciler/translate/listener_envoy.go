package translate

import (
	"fmt"
	"sort"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
)

// envoyListenerName is the socket listener of a port.
func envoyListenerName(port uint32) string { return fmt.Sprintf("port-%d", port) }

// envoyRouteConfigName is the route configuration of a filter chain: the
// plaintext chain of a port, or the TLS chain of one SNI hostname.
func envoyRouteConfigName(port uint32, tls bool, sni string) string {
	if !tls {
		return envoyListenerName(port)
	}
	if sni == "" {
		sni = "*"
	}
	return envoyListenerName(port) + "/" + sni
}

// envoyScopeName names the scope of hostname h on the plaintext chain of a
// port, and the route configuration it selects.
func envoyScopeName(port uint32, h string) string {
	return envoyListenerName(port) + "/http/" + h
}

// envoyScope selects the route configuration of hostname h on a port's
// plaintext chain; its key fragments are those envoyHCM's scope key builder
// extracts.
func envoyScope(port uint32, h string) *routev3.ScopedRouteConfiguration {
	name := envoyScopeName(port, h)
	return &routev3.ScopedRouteConfiguration{
		Name:                   name,
		RouteConfigurationName: name,
		Key: &routev3.ScopedRouteConfiguration_Key{Fragments: []*routev3.ScopedRouteConfiguration_Key_Fragment{
			{Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: h}},
			{Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: fmt.Sprint(port)}},
		}},
	}
}

// scoped reports whether a plaintext chain gets scoped routes on Envoy
// nodes of a class: the class is EnvoyScoped or a Gateway of the port asks
// for scoped routes on every Envoy (gitxds.dev/envoy-route-config:
// per-hostname); every hostname is exact (a scope key matches exactly);
// and neither the option nor a Gateway of the port
// (gitxds.dev/envoy-route-config: per-port) asks for one route
// configuration per port.
func (t *translation) scoped(class snapshot.Class, p *envoyPort, c *envoyChain) bool {
	if t.opts.PortRouteConfigs || p.portRouteConfigs || c.sni != "" || c.tls != nil || len(c.vhosts.order) == 0 {
		return false
	}
	if class != snapshot.EnvoyScoped && !p.scopedRoutes && !t.opts.ScopedRoutes {
		return false
	}
	for _, h := range c.vhosts.order {
		if hostnameRank(h) != 0 {
			return false
		}
	}
	return true
}

// envoyPort is every Gateway listener of one port, merged.
type envoyPort struct {
	port       uint32
	gateways   []ir.ObjectRef
	http       *envoyChain
	https      map[string]*envoyChain // by SNI hostname, "" for none
	accessLogs []ir.AccessLog
	// rateLimit is the rate limit service of the first Gateway of the port
	// that has one.
	rateLimit *ir.RateLimitService
	// portRouteConfigs: a Gateway of the port asks for one route
	// configuration per port (ir.Gateway.PortRouteConfigs).
	portRouteConfigs bool
	// scopedRoutes: a Gateway of the port asks for scoped routes on every
	// Envoy (ir.Gateway.ScopedRoutes).
	scopedRoutes bool
}

// envoyChain is one filter chain: the HTTP listeners of a port, or the
// HTTPS listeners of one hostname.
type envoyChain struct {
	sni    string
	tls    *ir.TLS
	owner  ir.ObjectRef // the first Gateway, whose TLS settings win
	vhosts vhostSet
}

// vhostSet merges routes per hostname, keeping Gateway and listener order.
type vhostSet struct {
	order  []string
	routes map[string][]ir.Route
}

func (s *vhostSet) add(hostname string, routes []ir.Route) {
	if hostname == "" {
		hostname = "*"
	}
	if s.routes == nil {
		s.routes = map[string][]ir.Route{}
	}
	if _, ok := s.routes[hostname]; !ok {
		s.order = append(s.order, hostname)
	}
	s.routes[hostname] = appendRoutes(s.routes[hostname], routes)
}

// appendRoutes appends the routes not there yet: a route attached to two
// listeners merged into one filter chain (or one gRPC port) would otherwise
// appear twice. A route name is unique per virtual host.
func appendRoutes(to, routes []ir.Route) []ir.Route {
	for _, r := range routes {
		dup := false
		for _, x := range to {
			if x.Name == r.Name {
				dup = true
				break
			}
		}
		if !dup {
			to = append(to, r)
		}
	}
	return to
}

// hostnames in virtual host order: sorted, wildcards after exact names and
// "*" last (the order of the IR).
func (s *vhostSet) hostnames() []string {
	out := append([]string(nil), s.order...)
	sort.Slice(out, func(i, j int) bool { return hostnameLess(out[i], out[j]) })
	return out
}

func hostnameLess(a, b string) bool {
	if ra, rb := hostnameRank(a), hostnameRank(b); ra != rb {
		return ra < rb
	}
	return a < b
}

func hostnameRank(h string) int {
	switch {
	case h == "*":
		return 2
	case strings.HasPrefix(h, "*"):
		return 1
	}
	return 0
}

// envoyPorts groups the Gateway listeners by port, in port order.
func (t *translation) envoyPorts() []*envoyPort {
	byPort := map[uint32]*envoyPort{}
	for gi := range t.x.Gateways {
		g := &t.x.Gateways[gi]
		ref := gatewayRef(g)
		for _, l := range g.Listeners {
			p := byPort[l.Port]
			if p == nil {
				p = &envoyPort{port: l.Port, https: map[string]*envoyChain{}}
				byPort[l.Port] = p
			}
			p.portRouteConfigs = p.portRouteConfigs || g.PortRouteConfigs
			p.scopedRoutes = p.scopedRoutes || g.ScopedRoutes
			if !containsRef(p.gateways, ref) {
				p.gateways = append(p.gateways, ref)
				if p.rateLimit == nil && g.RateLimit != nil {
					p.rateLimit = g.RateLimit
				}
				for _, al := range g.AccessLogs {
					if !containsLog(p.accessLogs, al) {
						p.accessLogs = append(p.accessLogs, al)
					}
				}
			}
			var c *envoyChain
			if l.Protocol == ir.HTTPS {
				c = p.https[l.Hostname]
				if c == nil {
					c = &envoyChain{sni: l.Hostname, tls: l.TLS, owner: ref}
					p.https[l.Hostname] = c
				}
			} else {
				if p.http == nil {
					p.http = &envoyChain{owner: ref}
				}
				c = p.http
			}
			for _, vh := range l.VirtualHosts {
				c.vhosts.add(vh.Hostname, vh.Routes)
			}
		}
	}
	ports := make([]uint32, 0, len(byPort))
	for p := range byPort {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	out := make([]*envoyPort, 0, len(ports))
	for _, p := range ports {
		out = append(out, byPort[p])
	}
	return out
}

func containsRef(refs []ir.ObjectRef, r ir.ObjectRef) bool {
	for _, x := range refs {
		if x == r {
			return true
		}
	}
	return false
}

func containsLog(logs []ir.AccessLog, l ir.AccessLog) bool {
	for _, x := range logs {
		if x == l {
			return true
		}
	}
	return false
}

// envoyClasses builds the resources of both Envoy classes. They differ
// only on the ports that get scoped routes in one and not the other; when
// there are none, both classes share one Resources. Routes are translated
// once (envoyRoute's memo) and shared.
func (t *translation) envoyClasses() (perPort, scoped *snapshot.Resources) {
	ports := t.envoyPorts()
	perPort = t.envoy(snapshot.Envoy, ports)
	differ := false
	for _, p := range ports {
		if p.http != nil && t.scoped(snapshot.Envoy, p, p.http) != t.scoped(snapshot.EnvoyScoped, p, p.http) {
			differ = true
		}
	}
	if !differ {
		t.resourceOwners[snapshot.EnvoyScoped] = t.resourceOwners[snapshot.Envoy]
		return perPort, perPort
	}
	scoped = t.envoy(snapshot.EnvoyScoped, ports)
	// Clusters and secrets do not depend on the class: share them.
	scoped.Clusters, scoped.Endpoints, scoped.Secrets = perPort.Clusters, perPort.Endpoints, perPort.Secrets
	return perPort, scoped
}

// envoy builds the listeners and routes of Envoy nodes of a class, and
// their clusters when class is Envoy.
func (t *translation) envoy(class snapshot.Class, ports []*envoyPort) *snapshot.Resources {
	res := &snapshot.Resources{}
	for _, p := range ports {
		lname := envoyListenerName(p.port)
		for _, g := range p.gateways {
			t.addOwner(class, kindListener, lname, g)
		}
		lis, rcs, scopes := t.envoyListener(class, p)
		if lis != nil {
			res.Listeners = append(res.Listeners, lis)
		}
		res.Routes = append(res.Routes, rcs...)
		res.ScopedRoutes = append(res.ScopedRoutes, scopes...)
	}
	if class == snapshot.Envoy {
		res.Clusters, res.Endpoints = t.clusterResources(class)
		for _, s := range t.secrets {
			res.Secrets = append(res.Secrets, s)
		}
	}
	return res
}

// envoyListener builds the listener of one port and the route
// configurations (and scopes) of its filter chains.
func (t *translation) envoyListener(class snapshot.Class, p *envoyPort) (*listenerv3.Listener, []*routev3.RouteConfiguration, []*routev3.ScopedRouteConfiguration) {
	name := envoyListenerName(p.port)
	logs, err := t.accessLogs(p.accessLogs)
	if err != nil {
		t.failResource(class, kindListener, name, err)
		return nil, nil, nil
	}
	lis := &listenerv3.Listener{
		Name: name,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address:       "0.0.0.0",
			PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: p.port},
		}}},
	}
	var (
		rcs    []*routev3.RouteConfiguration
		scopes []*routev3.ScopedRouteConfiguration
	)
	if p.http != nil {
		rcName := envoyRouteConfigName(p.port, false, "")
		scoped := t.scoped(class, p, p.http)
		if !scoped {
			t.addOwner(class, kindRouteConfig, rcName, p.http.owner)
		}
		fc, err := t.envoyFilterChain(p, p.http, false, scoped, rcName, logs)
		if err != nil {
			t.failResource(class, kindListener, name, err)
			return nil, nil, nil
		}
		if len(p.https) > 0 {
			// TLS and plaintext on one port: the TLS inspector tells
			// them apart.
			fc.FilterChainMatch = &listenerv3.FilterChainMatch{TransportProtocol: "raw_buffer"}
		}
		lis.FilterChains = append(lis.FilterChains, fc)
		if scoped {
			for _, h := range p.http.vhosts.hostnames() {
				name := envoyScopeName(p.port, h)
				t.addOwner(class, kindRouteConfig, name, p.http.owner)
				rc := t.envoyRouteConfig(class, name, p.port, &vhostSet{order: []string{h}, routes: map[string][]ir.Route{h: p.http.vhosts.routes[h]}})
				rc.RequestHeadersToRemove = []string{listenerPortHeader}
				rcs = append(rcs, rc)
				scopes = append(scopes, envoyScope(p.port, h))
			}
		} else {
			rcs = append(rcs, t.envoyRouteConfig(class, rcName, p.port, &p.http.vhosts))
		}
	}
	snis := make([]string, 0, len(p.https))
	for s := range p.https {
		snis = append(snis, s)
	}
	// Exact names first, then wildcards, the catch-all ("") last.
	sort.Slice(snis, func(i, j int) bool {
		a, b := snis[i], snis[j]
		if (a == "") != (b == "") {
			return b == ""
		}
		return hostnameLess(a, b)
	})
	for _, sni := range snis {
		c := p.https[sni]
		rcName := envoyRouteConfigName(p.port, true, sni)
		t.addOwner(class, kindRouteConfig, rcName, c.owner)
		fc, err := t.envoyFilterChain(p, c, true, false, rcName, logs)
		if err != nil {
			t.fail(c.owner, "listener "+name+" https/"+sniName(sni), class, err)
			return nil, nil, nil
		}
		lis.FilterChains = append(lis.FilterChains, fc)
		rc := t.envoyRouteConfig(class, rcName, p.port, &c.vhosts)
		rc.VirtualHosts = append(rc.VirtualHosts, misdirected(c, snis, p.port)...)
		rcs = append(rcs, rc)
	}
	if len(p.https) > 0 {
		inspector, err := pack(&tlsinspectorv3.TlsInspector{})
		if err != nil {
			t.failResource(class, kindListener, name, err)
			return nil, nil, nil
		}
		lis.ListenerFilters = []*listenerv3.ListenerFilter{{
			Name:       wellknown.TLSInspector,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: inspector},
		}}
	}
	return lis, rcs, scopes
}

func sniName(sni string) string {
	if sni == "" {
		return "*"
	}
	return sni
}

// envoyFilterChain is one filter chain: TLS termination for an HTTPS chain,
// and an HttpConnectionManager with RDS.
func (t *translation) envoyFilterChain(p *envoyPort, c *envoyChain, tls, scoped bool, rcName string, logs []*accesslogv3.AccessLog) (*listenerv3.FilterChain, error) {
	statPrefix, chainName := envoyListenerName(p.port), "http"
	if tls {
		statPrefix, chainName = statPrefix+"-https", "https/"+sniName(c.sni)
	}
	var scopedPort uint32
	if !tls && scoped {
		scopedPort = p.port
	}
	filters, err := t.httpFilters(p.rateLimit, &c.vhosts)
	if err != nil {
		return nil, err
	}
	hcm, err := envoyHCM(statPrefix, rcName, scopedPort, logs, filters)
	if err != nil {
		return nil, err
	}
	fc := &listenerv3.FilterChain{
		Name: chainName,
		Filters: []*listenerv3.Filter{{
			Name:       wellknown.HTTPConnectionManager,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm},
		}},
	}
	if !tls {
		return fc, nil
	}
	fc.FilterChainMatch = &listenerv3.FilterChainMatch{TransportProtocol: "tls"}
	if c.sni != "" {
		fc.FilterChainMatch.ServerNames = []string{c.sni}
	}
	if fc.TransportSocket, err = t.downstreamTLS(c.tls); err != nil {
		return nil, err
	}
	return fc, nil
}

// envoyRouteConfig is the route configuration of one filter chain.
func (t *translation) envoyRouteConfig(class snapshot.Class, name string, port uint32, vhs *vhostSet) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{Name: name}
	for _, h := range vhs.hostnames() {
		vh := &routev3.VirtualHost{Name: h, Domains: domains(h, port)}
		routes := vhs.routes[h]
		for i := range routes {
			r := &routes[i]
			route, err := t.envoyRouteMemo(r)
			if err != nil {
				t.fail(r.Owner, "route "+r.Name, class, err)
				continue
			}
			vh.Routes = append(vh.Routes, route)
		}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	return rc
}

// misdirected answers 421 (Misdirected Request, RFC 9110) on a TLS chain
// for the hostnames a more specific chain of the port serves. A client that
// coalesces HTTP/2 connections across hostnames covered by one certificate
// ("*.example.com" covering "shop.example.com") would otherwise send
// shop.example.com's requests to the wildcard listener's routes; on 421 it
// opens a connection with the right SNI instead.
func misdirected(c *envoyChain, snis []string, port uint32) []*routev3.VirtualHost {
	var out []*routev3.VirtualHost
	for _, other := range snis {
		if other == c.sni || !sniCovers(c.sni, other) {
			continue
		}
		if _, own := c.vhosts.routes[other]; own {
			continue
		}
		out = append(out, &routev3.VirtualHost{
			Name:    "misdirected/" + other,
			Domains: domains(other, port),
			Routes: []*routev3.Route{{
				Name:   "misdirected",
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: directResponse(&ir.DirectResponse{Status: 421}),
			}},
		})
	}
	return out
}

// sniCovers reports whether server name a ("" for any, "*.example.com" or
// an exact name) also matches the more specific server name b.
func sniCovers(a, b string) bool {
	switch {
	case b == "":
		return false
	case a == "":
		return true
	case strings.HasPrefix(a, "*."):
		return strings.HasSuffix(b, a[1:]) && len(b) > len(a)
	}
	return false
}

// domains of a virtual host: the hostname with and without the port.
func domains(h string, port uint32) []string {
	if h == "*" {
		return []string{"*"}
	}
	return []string{h, fmt.Sprintf("%s:%d", h, port)}
}

// envoyRouteMemo is envoyRoute, once per IR route: both Envoy classes
// share the result.
func (t *translation) envoyRouteMemo(r *ir.Route) (*routev3.Route, error) {
	if m, ok := t.envoyRoutes[r]; ok {
		return m.route, m.err
	}
	route, err := t.envoyRoute(r)
	t.envoyRoutes[r] = routeResult{route, err}
	return route, err
}

type routeResult struct {
	route *routev3.Route
	err   error
}
