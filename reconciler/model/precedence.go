package model

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
)

// rank is what orders matches by Gateway API precedence.
type rank struct {
	grpc bool
	// HTTPRoute: path kind (Exact 3, RegularExpression 2, PathPrefix 1),
	// path length, method, header and query counts.
	pathKind int
	pathLen  int
	method   bool
	headers  int
	query    int
	// GRPCRoute: characters of the service and method, regex or exact.
	serviceLen, methodLen int
	regex                 bool
}

func httpRank(m ir.Match) rank {
	r := rank{pathLen: len(m.Path), method: m.Method != "", headers: len(m.Headers), query: len(m.Query)}
	switch m.PathType {
	case ir.PathExact:
		r.pathKind = 3
	case ir.PathRegex:
		r.pathKind = 2
	default:
		r.pathKind = 1
	}
	return r
}

// before reports whether a takes precedence over b by their matches alone.
// ok is false on a tie.
func (a rank) before(b rank) (before, ok bool) {
	cmp := func(x, y int) (bool, bool) { return x > y, x != y }
	if a.grpc != b.grpc {
		return a.grpc, true // never on one hostname after conflicts; stable
	}
	if a.grpc {
		if v, ok := cmp(a.serviceLen, b.serviceLen); ok {
			return v, true
		}
		if v, ok := cmp(a.methodLen, b.methodLen); ok {
			return v, true
		}
		if a.regex != b.regex {
			return !a.regex, true
		}
		return cmp(a.headers, b.headers)
	}
	if v, ok := cmp(a.pathKind, b.pathKind); ok {
		return v, true
	}
	if v, ok := cmp(a.pathLen, b.pathLen); ok {
		return v, true
	}
	if a.method != b.method {
		return a.method, true
	}
	if v, ok := cmp(a.headers, b.headers); ok {
		return v, true
	}
	return cmp(a.query, b.query)
}

// placed is a match placed in a virtual host.
type placed struct {
	r *route
	m *match
}

// sortPlaced orders matches of one hostname by Gateway API precedence; ties
// go to the oldest route (route.seniority: Git has no creation timestamps,
// so the revision that first accepted it), then to rule and match order
// within the route.
func sortPlaced(ps []placed) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if v, ok := a.m.rank.before(b.m.rank); ok {
			return v
		}
		if a.r.seniority != b.r.seniority {
			return a.r.seniority < b.r.seniority
		}
		if a.m.rule != b.m.rule {
			return a.m.rule < b.m.rule
		}
		return a.m.idx < b.m.idx
	})
}

// hostRank orders hostname groups: exact names first (longest first), then
// wildcards (longest first), then "*".
func hostLess(a, b string) bool {
	wa, wb := strings.HasPrefix(a, "*"), strings.HasPrefix(b, "*")
	if wa != wb {
		return !wa
	}
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a < b
}

// covers reports whether routes of hostname group g also apply to requests
// for hostname h: g is h, a wildcard matching h, or "*".
func covers(g, h string) bool {
	return g == h || g == "*" || wildcardCovers(g, h)
}

// shadows reports, on the losing route, a match that can never be selected
// because a route of higher precedence on the same virtual host has exactly
// the same match.
//
// Sets Overlapped=True reason Shadowed on the losing route.
func (b *builder) shadows() {
	byName := map[string]*route{}
	for _, r := range b.rts {
		byName[r.key()] = r
	}
	found := map[*object][]string{}
	for _, g := range b.ir.Gateways {
		for _, l := range g.Listeners {
			for _, vh := range l.VirtualHosts {
				first := make(map[string]*ir.Route, len(vh.Routes))
				for i := range vh.Routes {
					rt := &vh.Routes[i]
					k := matchKey(rt.Match)
					w, ok := first[k]
					if !ok {
						first[k] = rt
						continue
					}
					if w.Owner == rt.Owner {
						continue
					}
					loser := byName[rt.Owner.Namespace+"/"+rt.Owner.Name]
					winner := byName[w.Owner.Namespace+"/"+w.Owner.Name]
					found[loser.obj] = append(found[loser.obj], fmt.Sprintf("%s on %s is not served: %s of %s (%s) has the same match and holds it (%s)",
						matchDesc(*rt), vh.Hostname, w.Name, w.Owner.String(), w.Owner.File, b.why(winner, loser)))
				}
			}
		}
	}
	for _, r := range b.rts {
		msgs := dedup(found[r.obj])
		if len(msgs) > 0 {
			r.obj.set(CondOverlapped, metav1.ConditionTrue, ReasonShadowed, r.obj.msg("%s; change the match or coordinate with that team", strings.Join(msgs, "; ")))
		}
	}
}

func matchKey(m ir.Match) string {
	if len(m.Headers) == 0 && len(m.Query) == 0 {
		// What the format below gives, without fmt (most matches).
		return strconv.FormatBool(m.GRPC) + "|" + string(m.PathType) + "|" + m.Path + "|" + m.Method + "|[]|[]"
	}
	return fmt.Sprintf("%v|%s|%s|%s|%v|%v", m.GRPC, m.PathType, m.Path, m.Method, sortedMatches(m.Headers), sortedMatches(m.Query))
}

func sortedMatches(ms []ir.StringMatch) []ir.StringMatch {
	out := append([]ir.StringMatch(nil), ms...)
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

func matchDesc(rt ir.Route) string {
	return fmt.Sprintf("%s (%s %s)", rt.Name, rt.Match.PathType, rt.Match.Path)
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// conflicts applies Gateway API's rule for an HTTPRoute and a GRPCRoute
// whose hostnames intersect on one listener: exactly one is accepted, the
// oldest (route.seniority). The other loses that listener; a route left
// with no listener is rejected. A route that loses a listener and has a
// last accepted version keeps serving that version (Build).
//
// Sets Accepted=False reason HostnameConflict on the losing route (dropped
// when it lost every listener), naming the route that holds the hostname.
func (b *builder) conflicts() {
	sorted := append([]*route(nil), b.rts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].seniority < sorted[j].seniority })
	type claim struct {
		r     *route
		hosts []string
	}
	// The claims on each listener, HTTPRoutes' and GRPCRoutes' apart: a
	// route only looks through the other kind's (thousands of HTTPRoutes
	// on one listener made this quadratic), and finds the same winner,
	// the first claim of the other kind by namespace/name.
	type claimsKey struct {
		l    *listener
		grpc bool
	}
	claims := map[claimsKey][]claim{}
	for _, r := range sorted {
		var keep []attachment
		var lost []string
		for _, a := range r.attached {
			var winner *route
			for _, c := range claims[claimsKey{a.l, !r.grpc}] {
				if hostsOverlap(c.hosts, a.hosts) {
					winner = c.r
					break
				}
			}
			if winner != nil {
				if r.lost == nil {
					r.lost = map[*listener]string{}
				}
				r.lost[a.l] = fmt.Sprintf("%s %s (%s) holds an intersecting hostname there (%s), and an HTTPRoute and a GRPCRoute cannot share a hostname on a listener", winner.obj.src.Kind, winner.key(), winner.obj.src.File, b.why(winner, r))
				lost = append(lost, fmt.Sprintf("%s: %s %s (%s) holds an intersecting hostname there (%s), and an HTTPRoute and a GRPCRoute cannot share a hostname on a listener", a.l.where(), winner.obj.src.Kind, winner.key(), winner.obj.src.File, b.why(winner, r)))
				continue
			}
			k := claimsKey{a.l, r.grpc}
			claims[k] = append(claims[k], claim{r, a.hosts})
			keep = append(keep, a)
		}
		if len(lost) == 0 {
			continue
		}
		r.obj.lostClaim = true
		r.attached = keep
		if len(keep) == 0 {
			r.obj.reject(ReasonHostnameConflict, "%s", strings.Join(lost, "; "))
		} else {
			r.obj.set(CondAccepted, metav1.ConditionFalse, ReasonHostnameConflict, r.obj.msg("%s", strings.Join(lost, "; ")))
		}
	}
	var live []*route
	for _, r := range b.rts {
		if !r.obj.dropped {
			live = append(live, r)
		}
	}
	b.rts = live
}

func hostsOverlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if covers(x, y) || covers(y, x) {
				return true
			}
		}
	}
	return false
}

// alsCluster resolves the gRPC access-log Backend of a Gateway (annotation
// gitxds.dev/access-log-grpc) to a cluster. A missing Backend leaves the
// sink out and says so on the Gateway (PartiallyInvalid, the rest serves).
func (b *builder) alsCluster(g *gateway, name string) string {
	key := g.gw.Namespace + "/" + name
	be, ok := b.backends[key]
	if !ok {
		msg := g.obj.msg("annotation %s: %s; access logs are not sent over gRPC", AnnotationAccessLogGRPC, b.noBackend(g.gw.Namespace, name))
		g.obj.set(CondPartiallyInvalid, metav1.ConditionTrue, string(gwv1.RouteReasonBackendNotFound), msg)
		return ""
	}
	if _, ok := b.clusters[key]; !ok {
		b.clusters[key] = &ir.Cluster{Name: key, Owner: be.obj.ref(), Endpoints: be.endpoints, DNS: be.dns}
	}
	return key
}
