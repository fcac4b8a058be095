package diff

import (
	"fmt"
	"sort"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// listeners compares the listeners of one class.
func (d *classDiff) listeners(a, b []*listenerv3.Listener) {
	an, bn := names(a, (*listenerv3.Listener).GetName), names(b, (*listenerv3.Listener).GetName)
	pairNames(an, bn, func(name string, i, j int) {
		ch := Change{Type: Listener, Name: name, Path: []string{name}}
		switch {
		case j < 0:
			ch.Kind, ch.Summary = Removed, describeListener(a[i])
			ch.Diff = yamlDiff(normListener(a[i]), nil)
		case i < 0:
			ch.Kind, ch.Summary = Added, describeListener(b[j])
			ch.Diff = yamlDiff(nil, normListener(b[j]))
		default:
			if same(a[i], b[j]) {
				return
			}
			x, y := normListener(a[i]), normListener(b[j])
			if proto.Equal(x, y) {
				return
			}
			ch.Kind, ch.Summary, ch.Diff = Changed, listenerSummary(x, y), yamlDiff(x, y)
		}
		ch.hostnames = listenerHosts(name, orNil(a, i), orNil(b, j))
		d.add(ch)
	})
}

// clusters compares the clusters of one class, with their policies.
func (d *classDiff) clusters(a, b []*clusterv3.Cluster) {
	an, bn := names(a, (*clusterv3.Cluster).GetName), names(b, (*clusterv3.Cluster).GetName)
	pairNames(an, bn, func(name string, i, j int) {
		ch := Change{Type: Cluster, Name: name, Path: []string{name}, clusters: []string{name}}
		switch {
		case j < 0:
			ch.Kind, ch.Summary = Removed, describeCluster(a[i])
			ch.Diff = yamlDiff(normCluster(a[i]), nil)
		case i < 0:
			ch.Kind, ch.Summary = Added, describeCluster(b[j])
			ch.Diff = yamlDiff(nil, normCluster(b[j]))
		default:
			if same(a[i], b[j]) {
				return
			}
			x, y := normCluster(a[i]), normCluster(b[j])
			if proto.Equal(x, y) {
				return
			}
			ch.Kind, ch.Summary, ch.Diff = Changed, fieldSummary(x, y), yamlDiff(x, y)
		}
		d.add(ch)
	})
}

// endpoints compares the endpoint sets (ClusterLoadAssignments) of one class.
func (d *classDiff) endpoints(a, b []*endpointv3.ClusterLoadAssignment) {
	get := (*endpointv3.ClusterLoadAssignment).GetClusterName
	pairNames(names(a, get), names(b, get), func(name string, i, j int) {
		ch := Change{Type: Endpoints, Name: name, Path: []string{name}, clusters: []string{name}}
		switch {
		case j < 0:
			ch.Kind, ch.Summary = Removed, "endpoints: "+strings.Join(addresses(a[i]), ", ")
			ch.Diff = yamlDiff(normCLA(a[i]), nil)
		case i < 0:
			ch.Kind, ch.Summary = Added, "endpoints: "+strings.Join(addresses(b[j]), ", ")
			ch.Diff = yamlDiff(nil, normCLA(b[j]))
		default:
			if same(a[i], b[j]) {
				return
			}
			x, y := normCLA(a[i]), normCLA(b[j])
			if proto.Equal(x, y) {
				return
			}
			ch.Kind, ch.Summary, ch.Diff = Changed, endpointSummary(x, y), yamlDiff(x, y)
		}
		d.add(ch)
	})
}

func names[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, x := range items {
		out[i] = name(x)
	}
	return out
}

func orNil[T any](items []*T, i int) *T {
	if i < 0 {
		return nil
	}
	return items[i]
}

// normListener sorts the filter chains by name: Envoy picks a chain by its
// match, not by its position.
func normListener(l *listenerv3.Listener) *listenerv3.Listener {
	x := proto.Clone(l).(*listenerv3.Listener)
	sort.SliceStable(x.FilterChains, func(i, j int) bool { return x.FilterChains[i].GetName() < x.FilterChains[j].GetName() })
	return x
}

// normCluster sorts an inline load assignment.
func normCluster(c *clusterv3.Cluster) *clusterv3.Cluster {
	x := proto.Clone(c).(*clusterv3.Cluster)
	if x.LoadAssignment != nil {
		sortCLA(x.LoadAssignment)
	}
	return x
}

// normCLA sorts localities and their endpoints.
func normCLA(c *endpointv3.ClusterLoadAssignment) *endpointv3.ClusterLoadAssignment {
	x := proto.Clone(c).(*endpointv3.ClusterLoadAssignment)
	sortCLA(x)
	return x
}

func sortCLA(c *endpointv3.ClusterLoadAssignment) {
	for _, l := range c.Endpoints {
		sort.SliceStable(l.LbEndpoints, func(i, j int) bool {
			return lbAddress(l.LbEndpoints[i]) < lbAddress(l.LbEndpoints[j])
		})
	}
	sort.SliceStable(c.Endpoints, func(i, j int) bool {
		a, b := c.Endpoints[i], c.Endpoints[j]
		if a.GetPriority() != b.GetPriority() {
			return a.GetPriority() < b.GetPriority()
		}
		return localityKey(a.GetLocality()) < localityKey(b.GetLocality())
	})
}

func localityKey(l *corev3.Locality) string {
	return l.GetRegion() + "/" + l.GetZone() + "/" + l.GetSubZone()
}

func lbAddress(e *endpointv3.LbEndpoint) string {
	sa := e.GetEndpoint().GetAddress().GetSocketAddress()
	if sa == nil {
		return e.GetEndpointName()
	}
	return fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue())
}

// addresses of every endpoint of a load assignment, sorted.
func addresses(c *endpointv3.ClusterLoadAssignment) []string {
	var out []string
	for _, l := range c.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			out = append(out, lbAddress(e))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// rdsUsers maps each route configuration to the listeners, old or new, that
// fetch it: by RDS, or through a scope of their scoped routes (gitxds names
// a scope "<scoped routes name>/http/<hostname>", translate's
// envoyScopeName).
func rdsUsers(sides ...*snapshot.Resources) map[string][]string {
	seen := map[string]map[string]bool{}
	mark := func(rc, l string) {
		if seen[rc] == nil {
			seen[rc] = map[string]bool{}
		}
		seen[rc][l] = true
	}
	for _, r := range sides {
		for _, l := range r.Listeners {
			for _, n := range xdsres.RouteConfigNames(l) {
				mark(n, l.GetName())
			}
			for _, n := range xdsres.ScopedRoutesNames(l) {
				for _, sc := range r.ScopedRoutes {
					if sc.GetName() == n || strings.HasPrefix(sc.GetName(), n+"/http/") {
						mark(sc.GetRouteConfigurationName(), l.GetName())
					}
				}
			}
		}
	}
	out := make(map[string][]string, len(seen))
	for n, ls := range seen {
		out[n] = sortedSet(ls)
	}
	return out
}

// listenerHosts is the hostname of an API listener ("H" or "H:P"); socket
// listeners concern no hostname by themselves.
func listenerHosts(name string, ls ...*listenerv3.Listener) []string {
	for _, l := range ls {
		if l != nil && l.GetApiListener() != nil {
			return []string{stripPort(name)}
		}
	}
	return nil
}

func stripPort(h string) string {
	if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.Contains(h[i:], "]") {
		return h[:i]
	}
	return h
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func describeListener(l *listenerv3.Listener) string {
	if l.GetApiListener() != nil {
		return "API listener, routes " + strings.Join(xdsres.RouteConfigNames(l), ", ")
	}
	sa := l.GetAddress().GetSocketAddress()
	return fmt.Sprintf("socket listener %s:%d, %d filter chain(s)", sa.GetAddress(), sa.GetPortValue(), len(l.GetFilterChains()))
}

func describeCluster(c *clusterv3.Cluster) string {
	s := "type " + c.GetType().String()
	if c.GetLoadAssignment() != nil {
		s += ", endpoints " + strings.Join(addresses(c.GetLoadAssignment()), ", ")
	}
	return s
}

// listenerSummary names the filter chains added, removed and changed, and
// the other fields that changed.
func listenerSummary(a, b *listenerv3.Listener) string {
	var parts []string
	get := (*listenerv3.FilterChain).GetName
	pairNames(names(a.FilterChains, get), names(b.FilterChains, get), func(n string, i, j int) {
		switch {
		case j < 0:
			parts = append(parts, "filter chain "+n+" removed")
		case i < 0:
			parts = append(parts, "filter chain "+n+" added")
		case !proto.Equal(a.FilterChains[i], b.FilterChains[j]):
			parts = append(parts, "filter chain "+n+" changed")
		}
	})
	x, y := proto.Clone(a).(*listenerv3.Listener), proto.Clone(b).(*listenerv3.Listener)
	x.FilterChains, y.FilterChains = nil, nil
	if s := fieldSummary(x, y); s != "" {
		parts = append(parts, s)
	}
	return joinParts(parts)
}

// endpointSummary lists the addresses added and removed, or the fields that
// changed when the addresses are the same.
func endpointSummary(a, b *endpointv3.ClusterLoadAssignment) string {
	old, cur := map[string]bool{}, map[string]bool{}
	for _, x := range addresses(a) {
		old[x] = true
	}
	for _, x := range addresses(b) {
		cur[x] = true
	}
	var parts []string
	for _, x := range sortedSet(cur) {
		if !old[x] {
			parts = append(parts, "+"+x)
		}
	}
	for _, x := range sortedSet(old) {
		if !cur[x] {
			parts = append(parts, "-"+x)
		}
	}
	if len(parts) == 0 {
		return fieldSummary(a, b)
	}
	return "endpoints: " + strings.Join(parts, ", ")
}
