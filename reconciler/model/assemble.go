package model

import (
	"sort"

	"gitxds.dev/gitxds/reconciler/ir"
)

// chainKey names the listeners that the proxies serve as one: the
// plaintext listeners of a port share one filter chain (whatever their
// Gateway), the HTTPS listeners of a port one per hostname (SNI).
type chainKey struct {
	port     uint32
	protocol ir.Protocol
	sni      string
}

func chainOf(l *listener) chainKey {
	k := chainKey{port: l.ir.Port, protocol: l.ir.Protocol}
	if l.ir.Protocol == ir.HTTPS {
		k.sni = l.ir.Hostname
	}
	return k
}

// listenerLess orders listeners of one chain as Gateway API orders them
// for a request: the most specific hostname first (exact, then wildcards,
// longest first, then none).
func listenerLess(a, b *listener) bool {
	ha, hb := a.ir.Hostname, b.ir.Hostname
	if ha == "" || hb == "" {
		return ha != "" && hb == ""
	}
	if ha == hb {
		return false
	}
	return hostLess(ha, hb)
}

// hostGroups are the matches attached to one listener, per hostname, each
// in precedence order, and the hostnames in hostLess order.
type hostGroups struct {
	l      *listener
	groups map[string][]placed
	hosts  []string
}

// assemble builds the IR: per listener, one virtual host per hostname.
// Listeners the proxies serve as one (chainKey) are assembled together: the
// virtual host of hostname h holds every match of those listeners for h,
// listener by listener from the most specific listener hostname, and
// within a listener its own hostname's matches in precedence order followed
// by those of every broader hostname that covers it (wildcards, then "*"),
// as Gateway API gives precedence to the most specific hostname without
// hiding the others. A hostname a namespace owns (AnnotationHostnames)
// gets a virtual host of its own wherever a broader hostname would take
// its requests, with only the owner's matches in it.
func (b *builder) assemble() {
	out := &ir.IR{}
	used := map[string]bool{}
	http2 := map[string]bool{}

	byListener := map[*listener]*hostGroups{}
	chains := map[chainKey][]*hostGroups{}
	for _, g := range b.gws {
		for _, l := range g.listeners {
			hg := &hostGroups{l: l, groups: map[string][]placed{}}
			byListener[l] = hg
			k := chainOf(l)
			chains[k] = append(chains[k], hg)
		}
	}
	for _, r := range b.rts {
		for _, a := range r.attached {
			hg := byListener[a.l]
			for _, h := range a.hosts {
				for _, m := range r.matches {
					hg.groups[h] = append(hg.groups[h], placed{r, m})
				}
			}
		}
	}
	for _, hg := range byListener {
		for h, ps := range hg.groups {
			sortPlaced(ps)
			hg.groups[h] = ps
		}
		hg.hosts = sortedKeys(hg.groups)
		sort.Slice(hg.hosts, func(i, j int) bool { return hostLess(hg.hosts[i], hg.hosts[j]) })
	}
	for _, hgs := range chains {
		sort.SliceStable(hgs, func(i, j int) bool { return listenerLess(hgs[i].l, hgs[j].l) })
	}
	// The routes of a chain's hostname are the same for every listener of
	// the chain that serves it.
	type vhKey struct {
		chain chainKey
		host  string
	}
	vhosts := map[vhKey][]ir.Route{}
	routesFor := func(k chainKey, h string) []ir.Route {
		if rs, ok := vhosts[vhKey{k, h}]; ok {
			return rs
		}
		var rs []ir.Route
		seen := map[string]bool{}
		for _, hg := range chains[k] {
			for _, g := range hg.hosts {
				if !covers(g, h) {
					continue
				}
				for _, p := range hg.groups[g] {
					if seen[p.m.ir.Name] || !b.mayServe(p.r.obj.src.Namespace, h) {
						continue
					}
					seen[p.m.ir.Name] = true
					rs = append(rs, p.m.ir)
					for _, wb := range p.m.ir.Backends {
						used[wb.Cluster] = true
						http2[wb.Cluster] = http2[wb.Cluster] || p.r.grpc
					}
					if sec := p.m.ir.Security; sec != nil {
						for _, c := range sec.Clusters() {
							used[c] = true
						}
						if sec.ExtAuth != nil && sec.ExtAuth.GRPC {
							http2[sec.ExtAuth.Cluster] = true
						}
					}
					for _, mi := range p.m.ir.Filters.Mirrors {
						used[mi.Cluster] = true
						http2[mi.Cluster] = http2[mi.Cluster] || p.r.grpc
					}
					for _, x := range p.m.ir.Extensions {
						for _, e := range x.ExtProc {
							used[e.Cluster], http2[e.Cluster] = true, true
						}
						for _, w := range x.Wasm {
							if w.Cluster != "" {
								used[w.Cluster] = true
							}
						}
					}
				}
			}
		}
		if rs == nil {
			rs = []ir.Route{}
		}
		vhosts[vhKey{k, h}] = rs
		return rs
	}

	for _, g := range b.gws {
		irg := ir.Gateway{Namespace: g.gw.Namespace, Name: g.gw.Name, Group: g.group,
			PortRouteConfigs: g.gw.Annotations[AnnotationEnvoyRouteConfig] == "per-port",
			ScopedRoutes:     g.gw.Annotations[AnnotationEnvoyRouteConfig] == "per-hostname"}
		if f, ok := g.gw.Annotations[AnnotationAccessLog]; ok {
			irg.AccessLogs = []ir.AccessLog{{File: f}}
		}
		if name, ok := g.gw.Annotations[AnnotationAccessLogGRPC]; ok {
			if c := b.alsCluster(g, name); c != "" {
				irg.AccessLogs = append(irg.AccessLogs, ir.AccessLog{GRPCCluster: c, LogName: g.gw.Namespace + "/" + g.gw.Name})
				used[c], http2[c] = true, true
			}
		}
		if rl := b.rateLimitService(g); rl != nil {
			irg.RateLimit = rl
			used[rl.Cluster], http2[rl.Cluster] = true, true
		}
		for _, l := range g.listeners {
			hg := byListener[l]
			k := chainOf(l)
			irl := l.ir
			hosts := append([]string(nil), hg.hosts...)
			hosts = append(hosts, b.ownedVhosts(hg)...)
			for _, h := range hosts {
				irl.VirtualHosts = append(irl.VirtualHosts, ir.VirtualHost{Hostname: h, Routes: routesFor(k, h)})
			}
			sort.SliceStable(irl.VirtualHosts, func(i, j int) bool {
				a, b := irl.VirtualHosts[i].Hostname, irl.VirtualHosts[j].Hostname
				if (a == "*") != (b == "*") {
					return b == "*"
				}
				return a < b
			})
			irg.Listeners = append(irg.Listeners, irl)
		}
		out.Gateways = append(out.Gateways, irg)
	}
	out.Patches = b.patchPolicies()
	for _, name := range sortedKeys(b.clusters) {
		if used[name] {
			c := *b.clusters[name]
			c.HTTP2 = http2[name]
			out.Clusters = append(out.Clusters, c)
		}
	}
	b.ir = out
}

// ownedVhosts returns the owned hostnames that a broader hostname of the
// listener covers and that have no virtual host yet: without one of their
// own, their requests would reach the broader hostname's routes.
func (b *builder) ownedVhosts(hg *hostGroups) []string {
	var out []string
	for _, o := range b.owners {
		if _, ok := hg.groups[o.pattern]; ok {
			continue
		}
		if hg.l.ir.Hostname != "" && len(intersect(hg.l.ir.Hostname, []string{o.pattern})) == 0 {
			continue
		}
		for _, g := range hg.hosts {
			if covers(g, o.pattern) && !b.mayServeAll(hg.groups[g], o.pattern) {
				out = append(out, o.pattern)
				break
			}
		}
	}
	return out
}

// mayServeAll reports whether every match of ps may serve hostname h.
func (b *builder) mayServeAll(ps []placed, h string) bool {
	for _, p := range ps {
		if !b.mayServe(p.r.obj.src.Namespace, h) {
			return false
		}
	}
	return true
}
