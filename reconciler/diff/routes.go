package diff

import (
	"fmt"
	"sort"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"

	"gitxds.dev/gitxds/reconciler/xdsres"
)

// routeConfigs compares route configurations, then their virtual hosts by
// name, then the routes of each virtual host.
func (d *classDiff) routeConfigs(a, b []*routev3.RouteConfiguration) {
	get := (*routev3.RouteConfiguration).GetName
	pairNames(names(a, get), names(b, get), func(name string, i, j int) {
		users := d.rdsUsers[name]
		switch {
		case j < 0:
			d.add(Change{Kind: Removed, Type: RouteConfiguration, Name: name, Path: []string{name}, Listeners: users,
				Summary: describeRC(a[i]), Diff: yamlDiff(a[i], nil),
				routes: rcRoutes(a[i]), hostnames: rcHosts(a[i])})
			for _, vh := range a[i].GetVirtualHosts() {
				d.routeViewAll(Removed, name, vh)
			}
		case i < 0:
			d.add(Change{Kind: Added, Type: RouteConfiguration, Name: name, Path: []string{name}, Listeners: users,
				Summary: describeRC(b[j]), Diff: yamlDiff(nil, b[j]),
				routes: rcRoutes(b[j]), hostnames: rcHosts(b[j])})
			for _, vh := range b[j].GetVirtualHosts() {
				d.routeViewAll(Added, name, vh)
			}
		case same(a[i], b[j]):
			return
		default:
			x, y := normRC(a[i]), normRC(b[j])
			if !proto.Equal(x, y) {
				d.add(Change{Kind: Changed, Type: RouteConfiguration, Name: name, Path: []string{name}, Listeners: users,
					Summary: fieldSummary(x, y), Diff: yamlDiff(x, y), hostnames: rcHosts(b[j])})
			}
			d.virtualHosts(name, a[i].GetVirtualHosts(), b[j].GetVirtualHosts())
		}
	})
}

// virtualHosts compares the virtual hosts of one route configuration.
func (d *classDiff) virtualHosts(rc string, a, b []*routev3.VirtualHost) {
	users := d.rdsUsers[rc]
	get := (*routev3.VirtualHost).GetName
	pairNames(names(a, get), names(b, get), func(name string, i, j int) {
		path := []string{rc, name}
		switch {
		case j < 0:
			d.add(Change{Kind: Removed, Type: VirtualHost, Name: name, Path: path, Listeners: users,
				Summary: describeVHost(a[i]), Diff: yamlDiff(a[i], nil),
				routes: vhRoutes(a[i]), hostnames: vhHosts(a[i])})
			d.routeViewAll(Removed, rc, a[i])
		case i < 0:
			d.add(Change{Kind: Added, Type: VirtualHost, Name: name, Path: path, Listeners: users,
				Summary: describeVHost(b[j]), Diff: yamlDiff(nil, b[j]),
				routes: vhRoutes(b[j]), hostnames: vhHosts(b[j])})
			d.routeViewAll(Added, rc, b[j])
		case same(a[i], b[j]):
			return
		default:
			x, y := normVHost(a[i]), normVHost(b[j])
			if !proto.Equal(x, y) {
				d.add(Change{Kind: Changed, Type: VirtualHost, Name: name, Path: path, Listeners: users,
					Summary: vhostSummary(x, y), Diff: yamlDiff(x, y), hostnames: union(vhHosts(a[i]), vhHosts(b[j]))})
			}
			d.routes(path, union(vhHosts(a[i]), vhHosts(b[j])), a[i].GetRoutes(), b[j].GetRoutes())
		}
	})
}

// pair is a route of the old virtual host (i) matched with one of the new (j).
type pair struct{ i, j int }

// routes compares the routes of one virtual host: pairs them, reports each
// pair that differs, the routes without a pair, and the swaps of routes that
// can match the same request.
func (d *classDiff) routes(path, hosts []string, a, b []*routev3.Route) {
	users := d.rdsUsers[path[0]]
	na, nb := make([]*routev3.Route, len(a)), make([]*routev3.Route, len(b))
	for i, r := range a {
		na[i] = normRoute(r)
	}
	for j, r := range b {
		nb[j] = normRoute(r)
	}
	pairs := pairRoutes(a, b, na, nb)
	usedA, usedB := map[int]bool{}, map[int]bool{}
	for _, p := range pairs {
		usedA[p.i], usedB[p.j] = true, true
		x, y := na[p.i], nb[p.j]
		if proto.Equal(x, y) {
			continue
		}
		name := b[p.j].GetName()
		d.add(Change{Kind: Changed, Type: Route, Name: name, Path: append(clone(path), name), Listeners: users,
			Summary: routeSummary(x, y), Diff: yamlDiff(x, y), hostnames: hosts,
			routes: union([]string{a[p.i].GetName()}, []string{name}), clusters: union(xdsres.RouteClusters(x), xdsres.RouteClusters(y))})
		d.routeView(Changed, path[0], hosts, a[p.i], b[p.j])
	}
	for i, r := range a {
		if !usedA[i] {
			d.add(Change{Kind: Removed, Type: Route, Name: r.GetName(), Path: append(clone(path), r.GetName()), Listeners: users,
				Summary: describeRoute(na[i]), Diff: yamlDiff(na[i], nil), hostnames: hosts,
				routes: []string{r.GetName()}, clusters: xdsres.RouteClusters(na[i])})
			d.routeView(Removed, path[0], hosts, r, nil)
		}
	}
	for j, r := range b {
		if !usedB[j] {
			d.add(Change{Kind: Added, Type: Route, Name: r.GetName(), Path: append(clone(path), r.GetName()), Listeners: users,
				Summary: describeRoute(nb[j]), Diff: yamlDiff(nil, nb[j]), hostnames: hosts,
				routes: []string{r.GetName()}, clusters: xdsres.RouteClusters(nb[j])})
			d.routeView(Added, path[0], hosts, nil, r)
		}
	}
	if ch, ok := orderChange(path, a, b, pairs); ok {
		ch.Listeners, ch.hostnames = users, hosts
		d.add(ch)
		d.orderView(path[0], hosts, a, b, pairs)
	}
}

// pairRoutes pairs old and new routes: same name and match, then same match
// (a rule renumbered), then same name (the match changed).
func pairRoutes(a, b, na, nb []*routev3.Route) []pair {
	usedA, usedB := make([]bool, len(a)), make([]bool, len(b))
	var pairs []pair
	matchKey := func(r *routev3.Route) string {
		m, _ := proto.MarshalOptions{Deterministic: true}.Marshal(r.GetMatch())
		return string(m)
	}
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i] = matchKey(na[i])
	}
	for j := range b {
		kb[j] = matchKey(nb[j])
	}
	try := func(same func(i, j int) bool) {
		for i := range a {
			if usedA[i] {
				continue
			}
			for j := range b {
				if !usedB[j] && same(i, j) {
					usedA[i], usedB[j] = true, true
					pairs = append(pairs, pair{i, j})
					break
				}
			}
		}
	}
	try(func(i, j int) bool { return a[i].GetName() == b[j].GetName() && ka[i] == kb[j] })
	try(func(i, j int) bool { return ka[i] == kb[j] })
	try(func(i, j int) bool { return a[i].GetName() != "" && a[i].GetName() == b[j].GetName() })
	sort.Slice(pairs, func(x, y int) bool { return pairs[x].i < pairs[y].i })
	return pairs
}

// orderChange reports the paired routes whose relative order flipped while
// their matches overlap: a request both match now goes to another rule.
func orderChange(path []string, a, b []*routev3.Route, pairs []pair) (Change, bool) {
	var swaps, routes []string
	for x := 0; x < len(pairs); x++ {
		for y := x + 1; y < len(pairs); y++ {
			p, q := pairs[x], pairs[y] // p.i < q.i
			if p.j < q.j || !overlap(b[p.j].GetMatch(), b[q.j].GetMatch()) {
				continue
			}
			swaps = append(swaps, fmt.Sprintf("[%s] now before [%s]", describeMatch(b[q.j].GetMatch()), describeMatch(b[p.j].GetMatch())))
			routes = append(routes, b[p.j].GetName(), b[q.j].GetName())
		}
	}
	if len(swaps) == 0 {
		return Change{}, false
	}
	line := func(r *routev3.Route) string {
		return fmt.Sprintf("%s (%s)\n", describeRoute(normRoute(r)), r.GetName())
	}
	var before, after strings.Builder
	for _, p := range pairs {
		before.WriteString(line(a[p.i]))
	}
	sorted := append([]pair(nil), pairs...)
	sort.Slice(sorted, func(x, y int) bool { return sorted[x].j < sorted[y].j })
	for _, p := range sorted {
		after.WriteString(line(b[p.j]))
	}
	return Change{
		Kind: Changed, Type: VirtualHost, Name: path[1], Path: clone(path),
		Summary: "order changed: " + joinParts(swaps),
		Diff:    "route order, first match wins (- from, + to):\n" + lineDiff(before.String(), after.String()),
		routes:  union(routes),
	}, true
}

// lineDiff marks the lines of the old and new order.
func lineDiff(a, b string) string {
	var s strings.Builder
	for _, l := range strings.Split(strings.TrimSuffix(a, "\n"), "\n") {
		s.WriteString("- " + l + "\n")
	}
	for _, l := range strings.Split(strings.TrimSuffix(b, "\n"), "\n") {
		s.WriteString("+ " + l + "\n")
	}
	return s.String()
}

// normRoute drops the route's name (pairing is by match) and sorts the
// clusters of a weighted split.
func normRoute(r *routev3.Route) *routev3.Route {
	x := proto.Clone(r).(*routev3.Route)
	x.Name = ""
	if wc := x.GetRoute().GetWeightedClusters(); wc != nil {
		sort.SliceStable(wc.Clusters, func(i, j int) bool { return wc.Clusters[i].GetName() < wc.Clusters[j].GetName() })
	}
	return x
}

// normVHost is a virtual host without its routes (compared one by one),
// domains sorted.
func normVHost(v *routev3.VirtualHost) *routev3.VirtualHost {
	x := proto.Clone(v).(*routev3.VirtualHost)
	x.Routes = nil
	sort.Strings(x.Domains)
	return x
}

// normRC is a route configuration without its virtual hosts.
func normRC(rc *routev3.RouteConfiguration) *routev3.RouteConfiguration {
	x := proto.Clone(rc).(*routev3.RouteConfiguration)
	x.VirtualHosts = nil
	return x
}

func vhRoutes(v *routev3.VirtualHost) []string {
	var out []string
	for _, r := range v.GetRoutes() {
		out = append(out, r.GetName())
	}
	return out
}

func rcRoutes(rc *routev3.RouteConfiguration) []string {
	var out []string
	for _, v := range rc.GetVirtualHosts() {
		out = append(out, vhRoutes(v)...)
	}
	return out
}

// vhHosts are the hostnames of a virtual host's domains, without ports.
func vhHosts(v *routev3.VirtualHost) []string {
	var out []string
	for _, d := range v.GetDomains() {
		out = append(out, stripPort(d))
	}
	return union(out)
}

func rcHosts(rc *routev3.RouteConfiguration) []string {
	var out []string
	for _, v := range rc.GetVirtualHosts() {
		out = append(out, vhHosts(v)...)
	}
	return union(out)
}

// describeRC names the virtual hosts of a route configuration with their
// number of routes (the routes themselves are in Report.Routes).
func describeRC(rc *routev3.RouteConfiguration) string {
	var parts []string
	for _, v := range rc.GetVirtualHosts() {
		parts = append(parts, fmt.Sprintf("%s (%d route(s))", v.GetName(), len(v.GetRoutes())))
	}
	if len(parts) == 0 {
		return "no virtual hosts"
	}
	return "virtual hosts " + joinParts(parts)
}

func describeVHost(v *routev3.VirtualHost) string {
	return fmt.Sprintf("domains %s; %d route(s)", strings.Join(v.GetDomains(), ", "), len(v.GetRoutes()))
}

// vhostSummary names the domains added and removed, and other fields.
func vhostSummary(a, b *routev3.VirtualHost) string {
	var parts []string
	old, cur := map[string]bool{}, map[string]bool{}
	for _, x := range a.Domains {
		old[x] = true
	}
	for _, x := range b.Domains {
		cur[x] = true
	}
	var doms []string
	for _, x := range b.Domains {
		if !old[x] {
			doms = append(doms, "+"+x)
		}
	}
	for _, x := range a.Domains {
		if !cur[x] {
			doms = append(doms, "-"+x)
		}
	}
	if len(doms) > 0 {
		parts = append(parts, "domains: "+strings.Join(doms, ", "))
	}
	x, y := proto.Clone(a).(*routev3.VirtualHost), proto.Clone(b).(*routev3.VirtualHost)
	x.Domains, y.Domains = nil, nil
	if s := fieldSummary(x, y); s != "" {
		parts = append(parts, s)
	}
	return joinParts(parts)
}

func clone(s []string) []string { return append([]string(nil), s...) }

// union of string lists, sorted and without duplicates or empty strings.
func union(lists ...[]string) []string {
	seen := map[string]bool{}
	for _, l := range lists {
		for _, s := range l {
			if s != "" {
				seen[s] = true
			}
		}
	}
	return sortedSet(seen)
}
