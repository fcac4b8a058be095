package model

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
)

var httpMethods = map[gwv1.HTTPMethod]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// routeCommon validates what HTTPRoute and GRPCRoute share.
func (b *builder) routeCommon(o *object, spec gwv1.CommonRouteSpec, hostnames []gwv1.Hostname, grpc bool) (*route, string) {
	r := &route{obj: o, nsName: o.src.Namespace + "/" + o.src.Name, grpc: grpc, parents: spec.ParentRefs}
	if spec.UseDefaultGateways != "" {
		return nil, "spec.useDefaultGateways is not supported; name the Gateway in spec.parentRefs"
	}
	for i, h := range hostnames {
		if msg := b.validHostname(string(h)); msg != "" {
			return nil, fmt.Sprintf("spec.hostnames[%d]: %s", i, msg)
		}
		r.hostnames = append(r.hostnames, string(h))
	}
	return r, ""
}

// httpRoute validates an HTTPRoute and builds its IR routes. A message is
// returned when the route is invalid as a whole.
func (b *builder) httpRoute(o *object, t *gwv1.HTTPRoute) (*route, string) {
	r, msg := b.routeCommon(o, t.Spec.CommonRouteSpec, t.Spec.Hostnames, false)
	if msg != "" {
		return nil, msg
	}
	for i := range t.Spec.Rules {
		rule := &t.Spec.Rules[i] // read only: t is shared (DecodeCache)
		if msg := r.addRuleName(i, rule.Name); msg != "" {
			return nil, msg
		}
		if msg := b.httpRule(r, i, rule); msg != "" {
			return nil, msg
		}
	}
	if len(t.Spec.Rules) == 0 {
		// Gateway API defaults to one rule matching every request with no
		// backend: a 500 for everything, which is never what a team means.
		return nil, "spec.rules is empty; add a rule with backendRefs"
	}
	return r, ""
}

func (b *builder) httpRule(r *route, i int, rule *gwv1.HTTPRouteRule) string {
	where := "spec.rules[" + strconv.Itoa(i) + "]"
	matches := rule.Matches
	if len(matches) == 0 {
		matches = []gwv1.HTTPRouteMatch{{}}
	}
	var irMatches []ir.Match
	var ranks []rank
	allPrefix := true
	for j := range matches {
		im, rk, msg := httpMatch(&matches[j])
		if msg != "" {
			return fmt.Sprintf("%s.matches[%d]: %s", where, j, msg)
		}
		if im.PathType != ir.PathPrefix {
			allPrefix = false
		}
		irMatches = append(irMatches, im)
		ranks = append(ranks, rk)
	}
	for j, br := range rule.BackendRefs {
		if len(br.Filters) > 0 {
			return fmt.Sprintf("%s.backendRefs[%d].filters are not supported; put the filters on the rule", where, j)
		}
		if br.Weight != nil && (*br.Weight < 0 || *br.Weight > 1000000) {
			return fmt.Sprintf("%s.backendRefs[%d].weight %d must be 0..1000000", where, j, *br.Weight)
		}
	}
	tmpl := ir.Route{}
	fs, msg := b.httpFilters(r, rule.Filters, where, allPrefix)
	if msg != "" {
		return msg
	}
	tmpl.Filters = fs.filters
	if fs.extAuth != nil {
		tmpl.Security = &ir.Security{
			Name:         "HTTPRoute/" + r.nsName + "/rule/" + strconv.Itoa(i),
			Owner:        r.obj.ref(),
			ExtAuth:      fs.extAuth,
			StripHeaders: sortedUnique(fs.extAuth.HeadersToBackend),
		}
	}
	timeouts, msg := httpTimeouts(rule.Timeouts)
	if msg != "" {
		return where + ".timeouts: " + msg
	}
	tmpl.Timeouts = timeouts
	retry, msg := httpRetry(rule.Retry)
	if msg != "" {
		return where + ".retry: " + msg
	}
	tmpl.Retry = retry
	if sp := rule.SessionPersistence; sp != nil {
		session, msg := sessionPersistence(sp, r, i)
		if msg != "" {
			return where + ".sessionPersistence: " + msg
		}
		tmpl.Session = session
		// gRPC-Go has no stateful session affinity (gRFC A55): gRPC nodes
		// get the rule without it.
		if note := "proxyless gRPC clients do not keep sessions (sessionPersistence): their calls are balanced as usual"; !slices.Contains(r.notes, note) {
			r.notes = append(r.notes, note)
		}
	}

	var keys []string
	switch {
	case fs.redirect != nil:
		if len(rule.BackendRefs) > 0 {
			return fmt.Sprintf("%s: a RequestRedirect filter answers the request itself; remove backendRefs or the filter (IncompatibleFilters)", where)
		}
		tmpl.Redirect = fs.redirect
		// gRFC A28: a proxyless gRPC client rejects a route whose action
		// is not a route, so gRPC nodes get the rule as a route to a
		// cluster without endpoints (see translate's grpcAction).
		r.notes = append(r.notes, where+": proxyless gRPC clients do not follow redirects; their calls matching this rule fail with UNAVAILABLE")
	default:
		refs := make([]gwv1.BackendRef, len(rule.BackendRefs))
		for j, br := range rule.BackendRefs {
			refs[j] = br.BackendRef
		}
		var backends []ir.WeightedBackend
		var invalid uint32
		backends, invalid, keys = b.backendAction(r, refs, where)
		setAction(&tmpl, backends, invalid)
	}
	r.ruleBackends = append(r.ruleBackends, keys)
	r.addMatches(i, tmpl, irMatches, ranks)
	return ""
}

// addMatches adds the matches of rule i to r: one IR route per match, each
// a copy of tmpl (the rule's filters and action) with its own name, owner,
// match and rank.
func (r *route) addMatches(i int, tmpl ir.Route, irMatches []ir.Match, ranks []rank) {
	for j, im := range irMatches {
		m := &match{ir: cloneRoute(tmpl), rule: i, idx: j, rank: ranks[j]}
		m.ir.Name = matchName(r, i, j)
		m.ir.Owner = r.obj.ref()
		m.ir.Match = im
		r.matches = append(r.matches, m)
	}
}

// matchName is the IR name of match j of rule i of route r:
// "<namespace>/<route>/rule/<i>/match/<j>".
func matchName(r *route, i, j int) string {
	return r.nsName + "/rule/" + strconv.Itoa(i) + "/match/" + strconv.Itoa(j)
}

// httpMatch validates one HTTPRouteMatch, applying Gateway API defaults.
func httpMatch(m *gwv1.HTTPRouteMatch) (ir.Match, rank, string) {
	out := ir.Match{PathType: ir.PathPrefix, Path: "/"}
	if p := m.Path; p != nil {
		if p.Type != nil {
			out.PathType = ir.PathMatchType(*p.Type)
		}
		if p.Value != nil {
			out.Path = *p.Value
		}
	}
	switch out.PathType {
	case ir.PathExact, ir.PathPrefix:
		if msg := validPath(out.Path); msg != "" {
			return out, rank{}, "path " + msg
		}
	case ir.PathRegex:
		if msg := validRegex(out.Path); msg != "" {
			return out, rank{}, "path " + msg
		}
	default:
		return out, rank{}, fmt.Sprintf("path type %q is not one of Exact, PathPrefix, RegularExpression", out.PathType)
	}
	if m.Method != nil {
		if !httpMethods[*m.Method] {
			return out, rank{}, fmt.Sprintf("method %q is not an HTTP method", *m.Method)
		}
		out.Method = string(*m.Method)
	}
	seen := map[string]bool{}
	for k, h := range m.Headers {
		name := strings.ToLower(string(h.Name))
		if msg := validHeaderName(name); msg != "" {
			return out, rank{}, fmt.Sprintf("headers[%d]: %s", k, msg)
		}
		if seen[name] {
			continue // Gateway API: only the first match of a name counts.
		}
		seen[name] = true
		sm, msg := stringMatch(name, (*string)(h.Type), h.Value)
		if msg != "" {
			return out, rank{}, fmt.Sprintf("headers[%d] (%s): %s", k, name, msg)
		}
		out.Headers = append(out.Headers, sm)
	}
	seen = map[string]bool{}
	for k, q := range m.QueryParams {
		name := string(q.Name)
		if name == "" {
			return out, rank{}, fmt.Sprintf("queryParams[%d]: name is empty", k)
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		sm, msg := stringMatch(name, (*string)(q.Type), q.Value)
		if msg != "" {
			return out, rank{}, fmt.Sprintf("queryParams[%d] (%s): %s", k, name, msg)
		}
		out.Query = append(out.Query, sm)
	}
	return out, httpRank(out), ""
}

func stringMatch(name string, typ *string, value string) (ir.StringMatch, string) {
	sm := ir.StringMatch{Name: name, Type: ir.MatchExact, Value: value}
	if typ != nil {
		sm.Type = ir.StringMatchType(*typ)
	}
	switch sm.Type {
	case ir.MatchExact:
	case ir.MatchRegex:
		if msg := validRegex(value); msg != "" {
			return sm, msg
		}
	default:
		return sm, fmt.Sprintf("type %q is not one of Exact, RegularExpression", sm.Type)
	}
	return sm, ""
}

// validRegex compiles a regular expression as RE2, the syntax Envoy and
// gRPC use.
func validRegex(re string) string {
	if _, err := regexp.Compile(re); err != nil {
		return fmt.Sprintf("regular expression %q is invalid (UnsupportedValue; RE2 syntax): %v", re, err)
	}
	return ""
}

func validPath(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q must start with /", p)
	case strings.ContainsAny(p, "?# \t\r\n"):
		return fmt.Sprintf("%q must not contain a query, a fragment or whitespace", p)
	case strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/.."):
		return fmt.Sprintf("%q must be a normalized path (no //, /./ or /../)", p)
	case strings.Contains(strings.ToLower(p), "%2f"):
		return fmt.Sprintf("%q must not contain an encoded slash (%%2f)", p)
	}
	return ""
}

func validHeaderName(n string) string {
	if n == "" {
		return "header name is empty"
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return fmt.Sprintf("header name %q is not a valid HTTP header name", n)
		}
	}
	return ""
}

// gatewayDuration parses a Gateway API Duration (GEP-2257: 1 to 4 of
// <number><h|m|s|ms>).
var gatewayDurationRE = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

func gatewayDuration(d gwv1.Duration) (time.Duration, string) {
	if !gatewayDurationRE.MatchString(string(d)) {
		return 0, fmt.Sprintf("%q is not a Gateway API duration such as 10s, 500ms or 1m30s", d)
	}
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Sprintf("%q: %v", d, err)
	}
	return v, ""
}

func httpTimeouts(t *gwv1.HTTPRouteTimeouts) (ir.Timeouts, string) {
	var out ir.Timeouts
	if t == nil {
		return out, ""
	}
	var msg string
	if t.Request != nil {
		if out.Request, msg = gatewayDuration(*t.Request); msg != "" {
			return out, "request: " + msg
		}
		// "0s" disables the timeout (Gateway API HTTPRouteTimeouts).
		out.NoRequestTimeout = out.Request == 0
	}
	if t.BackendRequest != nil {
		if out.BackendRequest, msg = gatewayDuration(*t.BackendRequest); msg != "" {
			return out, "backendRequest: " + msg
		}
	}
	if out.Request > 0 && out.BackendRequest > out.Request {
		return out, fmt.Sprintf("backendRequest (%s) must not be longer than request (%s)", out.BackendRequest, out.Request)
	}
	return out, ""
}

// httpRetry maps the HTTPRoute retry stanza: connection errors are always
// retried (as Gateway API recommends), status codes when listed. Attempts
// counts retries; 0 disables them (and beats a policy's retries).
func httpRetry(r *gwv1.HTTPRouteRetry) (*ir.Retry, string) {
	if r == nil {
		return nil, ""
	}
	out := &ir.Retry{Attempts: 1, RetryOn: []string{"connect-failure", "refused-stream", "reset"}}
	if r.Attempts != nil {
		if *r.Attempts < 0 || *r.Attempts > 100 {
			return nil, fmt.Sprintf("attempts %d must be 0..100", *r.Attempts)
		}
		out.Attempts = uint32(*r.Attempts)
	}
	for _, c := range r.Codes {
		if c < 400 || c > 599 {
			return nil, fmt.Sprintf("code %d must be 400..599", c)
		}
		out.StatusCodes = append(out.StatusCodes, uint32(c))
	}
	if len(out.StatusCodes) > 0 {
		out.RetryOn = append(out.RetryOn, "retriable-status-codes")
	}
	if r.Backoff != nil {
		d, msg := gatewayDuration(*r.Backoff)
		if msg != "" {
			return nil, "backoff: " + msg
		}
		out.BackoffBase = d
	}
	return out, ""
}

// cloneRoute copies an IR route template so matches share no slices.
func cloneRoute(r ir.Route) ir.Route {
	out := r
	out.Backends = append([]ir.WeightedBackend(nil), r.Backends...)
	out.Filters.Mirrors = append([]ir.Mirror(nil), r.Filters.Mirrors...)
	if r.Retry != nil {
		c := *r.Retry
		out.Retry = &c
	}
	return out
}

// addRuleName records the name of rule i (sectionName of policies); names
// must be unique within a route.
func (r *route) addRuleName(i int, name *gwv1.SectionName) string {
	n := ""
	if name != nil {
		n = string(*name)
		if n != "" && slices.Contains(r.ruleNames, n) {
			return fmt.Sprintf("spec.rules[%d]: rule name %q is used twice", i, n)
		}
	}
	r.ruleNames = append(r.ruleNames, n)
	return ""
}
