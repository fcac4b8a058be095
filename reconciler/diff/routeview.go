package diff

import (
	"sort"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
)

// RouteChange is what a reviewer asks of a change: for requests to these
// hostnames that match this, where do they go now, and where did they go
// before. It is listed once however many node classes and listeners serve
// the route: the xDS changes behind it (one per class and route
// configuration) are in Report.Changes.
type RouteChange struct {
	Kind      Kind     `json:"kind"`
	Hostnames []string `json:"hostnames"`
	// Match in Gateway API terms: "PathPrefix /refunds header x-version=v2".
	Match string `json:"match"`
	// To is where matching requests go after the change ("" when removed),
	// From where they went before ("" when added): clusters with their
	// share of the traffic, a redirect or a direct response.
	To   string `json:"to,omitempty"`
	From string `json:"from,omitempty"`
	// ToBackends and FromBackends are the clusters of To and From with
	// their share of the traffic in percent (none for a redirect or a
	// direct response).
	ToBackends   []Share `json:"toBackends,omitempty"`
	FromBackends []Share `json:"fromBackends,omitempty"`
	// Also lists the other fields of the route that changed (timeouts,
	// retries, filters), as each class's route says them.
	Also []string `json:"also,omitempty"`
	// Route is the xDS route name ("<namespace>/<route>/rule/<i>/match/<j>"),
	// Owner the Gateway API route it comes from, with its file, when the
	// IRs were given (Report.Owners).
	Route string        `json:"route"`
	Owner *ir.ObjectRef `json:"owner,omitempty"`
	// Classes and Listeners (or, for scoped routes, route configurations)
	// that serve it.
	Classes   []snapshot.Class `json:"classes"`
	Listeners []string         `json:"listeners"`
	// Group is the proxy group whose nodes serve it; empty for the
	// default group.
	Group snapshot.Group `json:"proxyGroup,omitempty"`
}

// routeView records the route-level view of one xDS route change.
func (d *classDiff) routeView(k Kind, rc string, hosts []string, a, b *routev3.Route) {
	rt := b
	if rt == nil {
		rt = a
	}
	c := RouteChange{Kind: k, Hostnames: hosts, Match: describeMatch(rt.GetMatch()), Route: rt.GetName(),
		Classes: []snapshot.Class{d.class}, Listeners: d.rdsUsers[rc]}
	if len(c.Listeners) == 0 {
		c.Listeners = []string{rc}
	}
	if a != nil {
		c.From, c.FromBackends = describeAction(a), shareList(a.GetRoute())
	}
	if b != nil {
		c.To, c.ToBackends = describeAction(b), shareList(b.GetRoute())
	}
	// A weight shift reads with the shares on both sides: "(was v1 100%)".
	if len(shares(a.GetRoute())) > 1 || len(shares(b.GetRoute())) > 1 {
		if len(shares(a.GetRoute())) == 1 {
			c.From += " 100%"
		}
		if len(shares(b.GetRoute())) == 1 {
			c.To += " 100%"
		}
	}
	if a != nil && b != nil {
		if am, bm := describeMatch(a.GetMatch()), describeMatch(b.GetMatch()); am != bm {
			c.Match = bm + " (was " + am + ")"
		}
		for _, p := range strings.Split(routeSummary(normRoute(a), normRoute(b)), "; ") {
			if p != "" && !strings.HasPrefix(p, "weighted_clusters: ") && !strings.HasPrefix(p, "match: ") && !strings.HasPrefix(p, "action: ") {
				c.Also = append(c.Also, p)
			}
		}
	}
	d.rts = append(d.rts, c)
}

// orderView records, for every two routes that can match the same request
// and swapped places, that such requests now go where the route now first
// sends them (the first route that matches wins).
func (d *classDiff) orderView(rc string, hosts []string, a, b []*routev3.Route, pairs []pair) {
	for x := 0; x < len(pairs); x++ {
		for y := x + 1; y < len(pairs); y++ {
			p, q := pairs[x], pairs[y] // p.i < q.i
			if p.j < q.j || !overlap(b[p.j].GetMatch(), b[q.j].GetMatch()) {
				continue
			}
			win, lose := b[q.j], b[p.j]
			c := RouteChange{Kind: Changed, Hostnames: hosts,
				Match: "both " + describeMatch(win.GetMatch()) + " and " + describeMatch(lose.GetMatch()),
				To:    describeAction(win), From: describeAction(a[p.i]), Route: win.GetName(),
				Also:    []string{"order: " + ruleOrName(win.GetName()) + " now before " + ruleOrName(lose.GetName())},
				Classes: []snapshot.Class{d.class}, Listeners: d.rdsUsers[rc]}
			if len(c.Listeners) == 0 {
				c.Listeners = []string{rc}
			}
			d.rts = append(d.rts, c)
		}
	}
}

// Share is a cluster's share of a route's traffic.
type Share struct {
	Cluster string  `json:"cluster"`
	Percent float64 `json:"percent"`
}

// shareList is shares, sorted by cluster, rounded to a tenth of a percent.
func shareList(a *routev3.RouteAction) []Share {
	sh := shares(a)
	out := make([]Share, 0, len(sh))
	for _, k := range sortedKeys(sh) {
		out = append(out, Share{Cluster: k, Percent: float64(int64(sh[k]*10+0.5)) / 10})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func sortedKeys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// routeViewAll records every route of a virtual host added or removed.
func (d *classDiff) routeViewAll(k Kind, rc string, vh *routev3.VirtualHost) {
	for _, r := range vh.GetRoutes() {
		if k == Added {
			d.routeView(k, rc, vhHosts(vh), nil, r)
		} else {
			d.routeView(k, rc, vhHosts(vh), r, nil)
		}
	}
}

// mergeRoutes lists a route change once for all the classes and listeners
// that see it.
func mergeRoutes(in []RouteChange) []RouteChange {
	out := []RouteChange{}
	idx := map[string]int{}
	for _, c := range in {
		// A rule's match reads differently per class (gRPC clients get a
		// PathPrefix as an exact path and a prefix ending in "/", see
		// translate's route_grpc.go): a Gateway API route name identifies
		// the match, and the first class's wording (Envoy's) is kept.
		match := c.Match
		if ruleOf(c.Route) != "" {
			match = ""
		}
		key := strings.Join([]string{string(c.Group), string(c.Kind), strings.Join(c.Hostnames, ","), match, c.From, c.To, c.Route}, "\x00")
		i, ok := idx[key]
		if !ok {
			idx[key] = len(out)
			out = append(out, c)
			continue
		}
		o := &out[i]
		o.Also = union(o.Also, c.Also)
		o.Listeners = union(o.Listeners, c.Listeners)
		seen := false
		for _, x := range o.Classes {
			seen = seen || x == c.Classes[0]
		}
		if !seen {
			o.Classes = append(o.Classes, c.Classes...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if x, y := strings.Join(a.Hostnames, ","), strings.Join(b.Hostnames, ","); x != y {
			return x < y
		}
		if a.Route != b.Route {
			return a.Route < b.Route
		}
		return kindOrder[a.Kind] < kindOrder[b.Kind]
	})
	return out
}

// Owners names the Gateway API route (and its file) of every route change,
// from the IRs of both sides (either may be nil; the later wins).
func (r *Report) Owners(irs ...*ir.IR) {
	owner := map[string]ir.Route{}
	for _, x := range irs {
		if x == nil {
			continue
		}
		for _, g := range x.Gateways {
			for _, l := range g.Listeners {
				for _, vh := range l.VirtualHosts {
					for _, rt := range vh.Routes {
						owner[rt.Name] = rt
					}
				}
			}
		}
	}
	for i := range r.Routes {
		c := &r.Routes[i]
		o, ok := owner[c.Route]
		if !ok {
			continue
		}
		c.Owner = &o.Owner
		if !strings.Contains(c.Match, " (was ") && !strings.HasPrefix(c.Match, "both ") {
			c.Match = irMatch(o.Match)
		}
	}
}

// ruleOf is where a route name "<ns>/<route>/rule/1/match/0" comes from in
// its route's spec: "rules[1]" ("rules[1].matches[2]" when the rule has
// more than one match and it is not the first); "" for other names.
func ruleOf(name string) string {
	p := strings.Split(name, "/")
	if len(p) != 6 || p[2] != "rule" || p[4] != "match" {
		return ""
	}
	if p[5] == "0" {
		return "rules[" + p[3] + "]"
	}
	return "rules[" + p[3] + "].matches[" + p[5] + "]"
}

// ruleOrName is the rule of a Gateway API route name, or the name.
func ruleOrName(name string) string {
	if r := ruleOf(name); r != "" {
		return r
	}
	return name
}

// irMatch is a match as the Gateway API route writes it.
func irMatch(m ir.Match) string {
	t := m.PathType
	if t == "" {
		t = ir.PathPrefix
	}
	path := m.Path
	if path == "" {
		path = "/"
	}
	parts := []string{string(t) + " " + path}
	if m.Method != "" {
		parts = append(parts, "method "+m.Method)
	}
	for _, h := range m.Headers {
		parts = append(parts, "header "+stringMatch(h))
	}
	for _, q := range m.Query {
		parts = append(parts, "query "+stringMatch(q))
	}
	if m.GRPC {
		parts = append(parts, "(gRPC)")
	}
	return strings.Join(parts, " ")
}

func stringMatch(s ir.StringMatch) string {
	if s.Type == ir.MatchRegex {
		return s.Name + "~" + s.Value
	}
	return s.Name + "=" + s.Value
}
