package gloo

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// parent is what a route inherits from the route that delegated to its
// RouteTable (or from its VirtualService).
type parent struct {
	vs   *object
	root *routeOut // the VirtualService's HTTPRoute: hostnames, listeners
	// opts are the options of the delegating routes and the virtual host,
	// nearest first: in Gloo Edge a delegated route inherits its parents'
	// options, its own winning.
	opts []*node
	// matchers of the delegating route (nil for a VirtualService's routes).
	matchers []glooMatch
	// inheritable is the delegating route's inheritableMatchers.
	inheritable bool
	// seen holds the RouteTables on the path from the VirtualService
	// (delegation cycles).
	seen map[string]bool
}

// glooMatch is one converted matcher and its Gloo path, for delegation.
type glooMatch struct {
	match  gwv1.HTTPRouteMatch
	prefix string // the Gloo prefix (or exact path), "" for a regex
	// segments is the field of a prefix that Gateway API matches by whole
	// path segments where Gloo Edge matched any string prefix ("" when the
	// two agree).
	segments string
}

// route converts one Gloo route into a rule of out (or, for a
// delegateAction, into the HTTPRoutes of the RouteTables it selects).
func (c *converter) route(out *routeOut, r *node, p parent) {
	r.skip("name")
	name := r.str("name")
	inheritable, set := r.boolean("inheritableMatchers")
	if !set {
		inheritable = p.inheritable
	}
	if v, _ := r.boolean("inheritablePathMatchers"); v {
		c.r.notConverted(r.file, r.field("inheritablePathMatchers"), "the route's own path matchers are converted; the parent's path is not inherited")
	}
	matches := c.matchers(r, p, inheritable)
	if len(matches) == 0 {
		// Every matcher was left out (reported): the route would otherwise
		// match every path.
		c.r.notConverted(r.file, r.path, "no matcher converts; the route is left out")
		r.skip(keysOf(r.m)...)
		return
	}
	opts := r.child("options")
	chain := append([]*node{opts}, p.opts...)
	if opts == nil {
		chain = p.opts
	}

	if d := r.child("delegateAction"); d != nil {
		for _, m := range matches {
			if m.match.Path == nil || *m.match.Path.Type != gwv1.PathMatchPathPrefix {
				c.r.notConverted(r.file, r.field("matchers"), "a delegating route may only use prefix matchers (Gloo Edge rejects others)")
			}
		}
		c.delegate(out, r, d, parent{vs: p.vs, root: p.root, opts: chain, matchers: matches, inheritable: inheritable, seen: p.seen})
		c.optionsDone(chain)
		r.done()
		return
	}

	rule := &ruleOut{}
	for _, m := range matches {
		rule.rule.Matches = append(rule.rule.Matches, m.match)
		if m.segments != "" {
			v := *m.match.Path.Value
			c.r.changed(r.file, m.segments, "%q: Gloo Edge matches any path that starts with the string (also %sx); Gateway API's PathPrefix matches whole segments (%s and %s/...)", v, v, v, v)
		}
	}
	c.shadowed(out, r, matches)
	acted := false
	if a := r.child("routeAction"); a != nil {
		acted = c.routeAction(out, rule, a)
	}
	redirect := false
	if a := r.child("redirectAction"); a != nil {
		acted = c.redirect(rule, a, matches)
		redirect = acted
	}
	r.unsupported("directResponseAction", "Gateway API has no direct response; the route is left out (requests it matched now go to the next matching route, or get 404)")
	r.unsupported("graphqlApiRef", "GraphQL is not supported; the route is left out")
	c.applyOptions(out, rule, chain, matches, redirect)
	c.optionsDone(chain)
	r.done()
	if !acted {
		return
	}
	// Gateway API (a CEL rule of HTTPRoute) allows a ReplacePrefixMatch
	// only on a rule with exactly one match: split the rule, one per match.
	if replacesPrefix(rule.rule.Filters) && len(rule.rule.Matches) > 1 {
		for _, m := range rule.rule.Matches {
			one := &ruleOut{rule: *rule.rule.DeepCopy(), policy: rule.policy}
			one.rule.Matches = []gwv1.HTTPRouteMatch{m}
			one.rule.Name = c.ruleName(out, name)
			out.rules = append(out.rules, one)
		}
		return
	}
	rule.rule.Name = c.ruleName(out, name)
	out.rules = append(out.rules, rule)
}

func replacesPrefix(fs []gwv1.HTTPRouteFilter) bool {
	for _, f := range fs {
		var p *gwv1.HTTPPathModifier
		switch {
		case f.URLRewrite != nil:
			p = f.URLRewrite.Path
		case f.RequestRedirect != nil:
			p = f.RequestRedirect.Path
		}
		if p != nil && p.Type == gwv1.PrefixMatchHTTPPathModifier {
			return true
		}
	}
	return false
}

// shadowed reports a route that Gloo Edge never reached because an earlier
// route of the same list matches every path it does (Gloo Edge takes the
// first matching route in the order written), and that the converted
// repository does serve (Gateway API prefers the longer path).
func (c *converter) shadowed(out *routeOut, r *node, matches []glooMatch) {
	for _, earlier := range out.rules {
		for _, e := range earlier.rule.Matches {
			if e.Path == nil || *e.Path.Type != gwv1.PathMatchPathPrefix || len(e.Headers)+len(e.QueryParams) > 0 || e.Method != nil {
				continue
			}
			p := strings.TrimSuffix(*e.Path.Value, "/")
			for _, m := range matches {
				if m.prefix != "" && *m.match.Path.Type != gwv1.PathMatchRegularExpression && m.prefix != *e.Path.Value &&
					(p == "" || m.prefix == p || strings.HasPrefix(m.prefix, p+"/")) {
					c.r.changed(r.file, r.path, "Gloo Edge never reached this route: rule %s before it (prefix %s) matches first; Gateway API serves the longer path %s here first", *earlier.rule.Name, *e.Path.Value, m.prefix)
					return
				}
			}
		}
	}
}

// ruleName names a rule after the Gloo route's name, else route-<n>.
func (c *converter) ruleName(out *routeOut, name string) *gwv1.SectionName {
	base := fmt.Sprintf("route-%d", len(out.rules)+1)
	if name != "" {
		base = dnsLabel(name)
	}
	n := base
	for i := 2; out.ruleNames[n]; i++ {
		n = fmt.Sprintf("%s-%d", base, i)
	}
	out.ruleNames[n] = true
	s := gwv1.SectionName(n)
	return &s
}

// matchers converts a route's matchers. A route without matchers matches
// every path ("/"), or, delegated, what its parent matched.
func (c *converter) matchers(r *node, p parent, inheritable bool) []glooMatch {
	list := r.list("matchers")
	if len(list) == 0 {
		if p.matchers != nil {
			return p.matchers
		}
		return []glooMatch{{match: pathMatch(gwv1.PathMatchPathPrefix, "/"), prefix: "/"}}
	}
	var out []glooMatch
	for _, m := range list {
		out = append(out, c.matcher(m, p, inheritable)...)
	}
	return out
}

func pathMatch(t gwv1.PathMatchType, v string) gwv1.HTTPRouteMatch {
	return gwv1.HTTPRouteMatch{Path: &gwv1.HTTPPathMatch{Type: &t, Value: &v}}
}

// matcher converts one Gloo matcher; several methods give one match each
// (a Gateway API match has at most one method).
func (c *converter) matcher(m *node, p parent, inheritable bool) []glooMatch {
	defer m.done()
	caseSensitive, csSet := m.boolean("caseSensitive")
	insensitive := csSet && !caseSensitive
	var gm glooMatch
	switch {
	case m.has("prefix"):
		v := m.str("prefix")
		gm.prefix = v
		if insensitive {
			gm.match = pathMatch(gwv1.PathMatchRegularExpression, "(?i)"+regexp.QuoteMeta(v)+".*")
			c.r.changed(m.file, m.field("caseSensitive"), "a case-insensitive prefix becomes the regular expression %q", "(?i)"+regexp.QuoteMeta(v)+".*")
			break
		}
		gm.match = pathMatch(gwv1.PathMatchPathPrefix, v)
		if v != "/" && !strings.HasSuffix(v, "/") {
			gm.segments = m.field("prefix")
		}
	case m.has("exact"):
		v := m.str("exact")
		gm.prefix = v
		if insensitive {
			gm.match = pathMatch(gwv1.PathMatchRegularExpression, "(?i)"+regexp.QuoteMeta(v))
			c.r.changed(m.file, m.field("caseSensitive"), "a case-insensitive exact path becomes the regular expression %q", "(?i)"+regexp.QuoteMeta(v))
			break
		}
		gm.match = pathMatch(gwv1.PathMatchExact, v)
	case m.has("regex"):
		v := m.str("regex")
		if insensitive {
			v = "(?i)" + v
		}
		if !validRE2(m, "regex", v, c.r) {
			m.skip(keysOf(m.m)...)
			return nil
		}
		gm.match = pathMatch(gwv1.PathMatchRegularExpression, v)
	default:
		gm.match = pathMatch(gwv1.PathMatchPathPrefix, "/")
		gm.prefix = "/"
		m.unsupported("connectMatcher", "CONNECT requests are not routed by gitxds")
	}
	if len(p.matchers) > 0 && gm.prefix != "" && !startsWithAny(gm.prefix, p.matchers) {
		c.r.notConverted(m.file, m.path, "path %q does not start with the delegating route's prefix; Gloo Edge rejects the RouteTable, the converted route serves it", gm.prefix)
	}
	for _, h := range m.list("headers") {
		if hm, ok := c.headerMatch(h); ok {
			gm.match.Headers = append(gm.match.Headers, hm)
		}
	}
	for _, q := range m.list("queryParameters") {
		name, value := q.str("name"), q.str("value")
		isRegex, _ := q.boolean("regex")
		qm := gwv1.HTTPQueryParamMatch{Name: gwv1.HTTPHeaderName(name), Value: value}
		switch {
		case value == "":
			t := gwv1.QueryParamMatchRegularExpression
			qm.Type, qm.Value = &t, ".*"
			c.r.changed(q.file, q.path, "a presence match becomes the regular expression \".*\"")
		case isRegex:
			t := gwv1.QueryParamMatchRegularExpression
			qm.Type = &t
			if !validRE2(q, "value", value, c.r) {
				q.done()
				continue
			}
		}
		q.done()
		gm.match.QueryParams = append(gm.match.QueryParams, qm)
	}
	methods := m.strs("methods")
	if inheritable && len(p.matchers) > 0 {
		// The parent's header, query and method matchers are added to each
		// of the child's (Gloo Edge's inheritableMatchers).
		pm := p.matchers[0].match
		if len(p.matchers) > 1 {
			c.r.notConverted(m.file, m.path, "inherits matchers from a delegating route with several matchers; only the first one's headers, query parameters and method are added")
		}
		gm.match.Headers = append(gm.match.Headers, pm.Headers...)
		gm.match.QueryParams = append(gm.match.QueryParams, pm.QueryParams...)
		if len(methods) == 0 && pm.Method != nil {
			methods = []string{string(*pm.Method)}
		}
	}
	if len(methods) == 0 {
		return []glooMatch{gm}
	}
	var out []glooMatch
	for _, meth := range methods {
		meth = strings.ToUpper(meth)
		if !knownMethod(meth) {
			c.r.notConverted(m.file, m.field("methods"), "method %q is not one Gateway API matches", meth)
			continue
		}
		g := gm
		g.match.Headers = append([]gwv1.HTTPHeaderMatch(nil), gm.match.Headers...)
		hm := gwv1.HTTPMethod(meth)
		g.match.Method = &hm
		out = append(out, g)
	}
	return out
}

// validRE2 reports an expression that RE2, the syntax of Envoy's
// safe_regex and of Go's regexp, does not accept (Gloo Edge rejects it too).
func validRE2(n *node, k, expr string, r *Report) bool {
	if _, err := regexp.Compile(expr); err != nil {
		r.notConverted(n.file, n.field(k), "%q is not an RE2 regular expression (%v); the matcher is left out", expr, err)
		return false
	}
	return true
}

func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace, http.MethodPatch:
		return true
	}
	return false
}

func startsWithAny(path string, parents []glooMatch) bool {
	for _, p := range parents {
		if strings.HasPrefix(path, p.prefix) {
			return true
		}
	}
	return false
}

func (c *converter) headerMatch(h *node) (gwv1.HTTPHeaderMatch, bool) {
	defer h.done()
	name, value := h.str("name"), h.str("value")
	isRegex, _ := h.boolean("regex")
	if inv, _ := h.boolean("invertMatch"); inv {
		c.r.notConverted(h.file, h.field("invertMatch"), "Gateway API has no inverted header match; the header matcher %q is left out (the route matches more requests)", name)
		return gwv1.HTTPHeaderMatch{}, false
	}
	hm := gwv1.HTTPHeaderMatch{Name: gwv1.HTTPHeaderName(name), Value: value}
	switch {
	case value == "":
		t := gwv1.HeaderMatchRegularExpression
		hm.Type, hm.Value = &t, ".*"
		c.r.changed(h.file, h.path, "a presence match becomes the regular expression \".*\" (Envoy's safe_regex needs the header present)")
	case isRegex:
		t := gwv1.HeaderMatchRegularExpression
		hm.Type = &t
		if !validRE2(h, "value", value, c.r) {
			return gwv1.HTTPHeaderMatch{}, false
		}
	}
	return hm, true
}

// delegate converts a delegateAction: the routes of each RouteTable it
// selects become rules of an HTTPRoute in the RouteTable's namespace.
func (c *converter) delegate(out *routeOut, r, d *node, p parent) {
	tables := c.selectTables(out.ns, d)
	for _, rt := range tables {
		if p.seen[rt.key()] {
			c.r.notConverted(r.file, r.field("delegateAction"), "delegation cycle through RouteTable %s", rt.key())
			continue
		}
		c.rtUses[rt.key()]++
		name := rt.name
		if c.rtUses[rt.key()] > 1 || c.routeNames[rt.namespace+"/"+name] {
			name = rt.name + "-" + p.root.name
		}
		child := c.newRoute(rt.namespace, name, rt, p.root)
		seen := map[string]bool{rt.key(): true}
		for k := range p.seen {
			seen[k] = true
		}
		cp := p
		cp.seen = seen
		rt.spec.skip("weight")
		for _, cr := range rt.spec.list("routes") {
			c.route(child, cr, cp)
		}
		rt.spec.done()
	}
}

// selectTables returns the RouteTables a delegateAction names or selects,
// in Gloo Edge's order (ascending weight, then namespace/name).
func (c *converter) selectTables(own string, d *node) []*object {
	defer d.done()
	var out []*object
	byRef := func(ref *node) {
		name, ns := ref.str("name"), ref.str("namespace")
		if ns == "" {
			ns = own
		}
		for _, rt := range c.rts {
			if rt.name == name && rt.namespace == ns {
				out = append(out, rt)
				return
			}
		}
		c.r.notConverted(ref.file, ref.path, "RouteTable %s/%s is not among the inputs", ns, name)
	}
	switch {
	case d.has("ref"):
		ref := d.child("ref")
		byRef(ref)
		ref.done()
	case d.has("selector"):
		sel := d.child("selector")
		namespaces := sel.strs("namespaces")
		if len(namespaces) == 0 {
			namespaces = []string{own}
		}
		labels := map[string]string{}
		if l := sel.child("labels"); l != nil {
			for k, v := range l.m {
				labels[k] = fmt.Sprint(v)
				l.used[k] = true
			}
		}
		sel.unsupported("expressions", "label expressions are not evaluated; only labels and namespaces select RouteTables")
		sel.done()
		for _, rt := range c.rts {
			if !nsSelected(rt.namespace, namespaces) || !labelsMatch(rt.labels, labels) {
				continue
			}
			out = append(out, rt)
		}
		if len(out) == 0 {
			c.r.notConverted(sel.file, sel.path, "selects no RouteTable among the inputs")
		}
	default: // deprecated: name and namespace on the action itself
		byRef(d)
	}
	sort.SliceStable(out, func(i, j int) bool { return weight(out[i]) < weight(out[j]) })
	return out
}

func weight(rt *object) float64 {
	if w, ok := rt.spec.m["weight"].(float64); ok {
		return w
	}
	return 0
}

func nsSelected(ns string, list []string) bool {
	for _, n := range list {
		if n == "*" || n == ns {
			return true
		}
	}
	return false
}

func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
