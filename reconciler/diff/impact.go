package diff

import (
	"strings"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// Impact is the blast radius of a diff: who and what the change touches.
type Impact struct {
	// Teams are the namespaces of the owners of the changed routes and
	// clusters (and the Gateways' namespace when a listener or a route
	// configuration itself changes).
	Teams []string `json:"teams"`
	// Hostnames whose routing changes, including every hostname with a
	// route to a changed cluster or endpoint set.
	Hostnames []string `json:"hostnames"`
	// Listeners that serve something that changes (Envoy "port-<P>", gRPC
	// API listeners "H" and "H:P").
	Listeners []string `json:"listeners"`
}

// Impact computes the blast radius of the report. irs are the IRs of both
// sides (either may be nil): they name the owners of routes and clusters.
func (r *Report) Impact(irs ...*ir.IR) Impact {
	routeNS, clusterNS, gatewayNS := owners(irs)
	uses := clusterUses(r.from, r.to)
	teams, hosts, listeners := map[string]bool{}, map[string]bool{}, map[string]bool{}
	addAll := func(m map[string]bool, xs []string) {
		for _, x := range xs {
			if x != "" {
				m[x] = true
			}
		}
	}
	for _, c := range r.Changes {
		addAll(hosts, c.hostnames)
		addAll(listeners, c.Listeners)
		switch c.Type {
		case Listener:
			listeners[c.Name] = true
			if len(c.hostnames) == 0 { // a socket listener: the Gateway's
				addAll(teams, gatewayNS)
			}
		case RouteConfiguration:
			if c.Kind == Changed {
				addAll(teams, gatewayNS)
			}
		}
		for _, n := range c.routes {
			teams[ownerNS(routeNS, n)] = true
		}
		for _, n := range c.clusters {
			if c.Type == Cluster || c.Type == Endpoints {
				teams[ownerNS(clusterNS, n)] = true
				addAll(hosts, uses[n].hosts)
				addAll(listeners, uses[n].listeners)
			}
		}
	}
	delete(teams, "")
	return Impact{Teams: sortedSet(teams), Hostnames: sortedSet(hosts), Listeners: sortedSet(listeners)}
}

// owners maps route and cluster names to their owner's namespace, from the
// IRs; and lists the namespaces of the Gateways.
func owners(irs []*ir.IR) (routes, clusters map[string]string, gateways []string) {
	routes, clusters = map[string]string{}, map[string]string{}
	gw := map[string]bool{}
	for _, x := range irs {
		if x == nil {
			continue
		}
		for _, c := range x.Clusters {
			clusters[c.Name] = c.Owner.Namespace
		}
		for _, g := range x.Gateways {
			gw[g.Namespace] = true
			for _, l := range g.Listeners {
				for _, vh := range l.VirtualHosts {
					for _, rt := range vh.Routes {
						routes[rt.Name] = rt.Owner.Namespace
					}
				}
			}
		}
	}
	return routes, clusters, sortedSet(gw)
}

// ownerNS is the owner's namespace from the IR, else the first segment of
// the name ("<ns>/<route>/rule/…", "<ns>/<backend>").
func ownerNS(m map[string]string, name string) string {
	if ns, ok := m[name]; ok && ns != "" {
		return ns
	}
	if i := strings.IndexByte(name, '/'); i > 0 {
		return name[:i]
	}
	return ""
}

// use is where a cluster is routed to from.
type use struct{ hosts, listeners []string }

// clusterUses maps each cluster to the hostnames and listeners of the routes
// that send traffic to it, on either side.
func clusterUses(sets ...*snapshot.Set) map[string]use {
	hosts, listeners := map[string]map[string]bool{}, map[string]map[string]bool{}
	mark := func(m map[string]map[string]bool, c string, xs []string) {
		if m[c] == nil {
			m[c] = map[string]bool{}
		}
		for _, x := range xs {
			m[c][x] = true
		}
	}
	var all []*snapshot.Resources
	for _, s := range sets {
		if s == nil {
			continue
		}
		for _, g := range groupsOf(s) {
			for _, res := range s.In(g).Classes {
				all = append(all, res)
			}
		}
	}
	for _, res := range all {
		if res == nil {
			continue
		}
		users := rdsUsers(res)
		for _, rc := range res.Routes {
			for _, vh := range rc.GetVirtualHosts() {
				vhosts := vhHosts(vh)
				for _, rt := range vh.GetRoutes() {
					for _, c := range xdsres.RouteClusters(rt) {
						mark(hosts, c, vhosts)
						mark(listeners, c, users[rc.GetName()])
					}
				}
			}
		}
	}
	out := make(map[string]use, len(hosts))
	for c := range hosts {
		out[c] = use{hosts: sortedSet(hosts[c]), listeners: sortedSet(listeners[c])}
	}
	return out
}
