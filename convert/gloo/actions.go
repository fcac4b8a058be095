package gloo

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

const (
	groupGitxds = gwv1.Group("gitxds.dev")
	kindBackend = gwv1.Kind("Backend")
)

// routeAction converts routeAction.single, .multi and .upstreamGroup into
// backendRefs. It reports whether the rule has a destination.
func (c *converter) routeAction(out *routeOut, rule *ruleOut, a *node) bool {
	defer a.done()
	var dests []*node
	var weights []int32
	switch {
	case a.has("single"):
		dests = append(dests, a.child("single"))
		weights = append(weights, 1)
	case a.has("multi"):
		m := a.child("multi")
		for _, wd := range m.list("destinations") {
			w, _ := wd.num("weight")
			d := wd.child("destination")
			wd.unsupported("options", "options of a weighted destination (per-backend filters) are not converted")
			wd.done()
			if d == nil {
				continue
			}
			dests = append(dests, d)
			weights = append(weights, int32(w))
		}
		m.done()
	case a.has("upstreamGroup"):
		ref := a.child("upstreamGroup")
		name, ns := ref.str("name"), ref.str("namespace")
		ref.done()
		if ns == "" {
			ns = out.ns
		}
		g, ok := c.groups[ns+"/"+name]
		if !ok {
			c.r.notConverted(ref.file, ref.path, "UpstreamGroup %s/%s is not among the inputs; the route is left out", ns, name)
			return false
		}
		for _, wd := range g.spec.list("destinations") {
			w, _ := wd.num("weight")
			d := wd.child("destination")
			wd.unsupported("options", "options of a weighted destination (per-backend filters) are not converted")
			wd.done()
			if d != nil {
				dests = append(dests, d)
				weights = append(weights, int32(w))
			}
		}
	}
	a.unsupported("clusterHeader", "routing to a cluster named by a request header is not supported")
	a.unsupported("dynamicForwardProxy", "the dynamic forward proxy is not supported")
	for i, d := range dests {
		ref, ok := c.destination(out, d)
		if !ok {
			continue
		}
		if len(dests) > 1 {
			w := weights[i]
			ref.Weight = &w
		}
		rule.rule.BackendRefs = append(rule.rule.BackendRefs, ref)
	}
	if len(rule.rule.BackendRefs) == 0 {
		c.r.notConverted(a.file, a.path, "no destination converts; the route is left out")
		return false
	}
	return true
}

// destination converts one Gloo destination (an Upstream or a Kubernetes
// Service) into a backendRef to a Backend.
func (c *converter) destination(out *routeOut, d *node) (gwv1.HTTPBackendRef, bool) {
	defer d.done()
	d.unsupported("destinationSpec", "per-destination protocol settings (AWS Lambda, REST, gRPC transcoding) are not supported")
	d.unsupported("subset", "upstream subsets are not supported; the whole upstream is used")
	var ns, name string
	switch {
	case d.has("upstream"):
		u := d.child("upstream")
		name, ns = u.str("name"), u.str("namespace")
		u.done()
		if ns == "" {
			ns = out.ns
		}
		if _, ok := c.backends[ns+"/"+name]; !ok {
			if _, isUpstream := c.upstreams[ns+"/"+name]; !isUpstream {
				c.missingUpstream(u, ns, name)
			}
		}
	case d.has("kube"):
		k := d.child("kube")
		ref := k.child("ref")
		svc, svcNS := ref.str("name"), ref.str("namespace")
		ref.done()
		port, _ := k.num("port")
		k.done()
		if svcNS == "" {
			svcNS = out.ns
		}
		ns, name = svcNS, dnsLabel(fmt.Sprintf("kube-%s-%d", svc, int(port)))
		host := fmt.Sprintf("%s.%s.svc.cluster.local", svc, svcNS)
		c.r.changed(k.file, k.path, "Kubernetes Service %s/%s port %d becomes Backend %s/%s with the DNS name %s: Envoy connects to the Service's cluster IP, not to its pods", svcNS, svc, int(port), ns, name, host)
		if _, ok := c.backends[ns+"/"+name]; !ok {
			c.addBackend(ns, name, nil, v1alpha1.BackendEndpoint{FQDN: &v1alpha1.FQDNEndpoint{Hostname: host, Port: int32(port)}})
		}
	default:
		c.r.notConverted(d.file, d.path, "only upstream and kube destinations convert")
		return gwv1.HTTPBackendRef{}, false
	}
	group, kind := groupGitxds, kindBackend
	ref := gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
		Group: &group, Kind: &kind, Name: gwv1.ObjectName(name),
	}}}
	if ns != out.ns {
		n := gwv1.Namespace(ns)
		ref.Namespace = &n
		c.grant(ns, out.ns, name)
	}
	return ref, true
}

// discovered matches the name Gloo Edge's discovery gives the Upstream of
// a Kubernetes Service port: <namespace>-<service>-<port>.
var discovered = regexp.MustCompile(`^([a-z0-9-]+)-([0-9]{1,5})$`)

// missingUpstream handles a reference to an Upstream that is not among the
// inputs. A name of discovery's form becomes a Backend with the Service's
// DNS name (the namespace is the longest known one the name starts with,
// else its first segment); any other is reported.
func (c *converter) missingUpstream(u *node, ns, name string) {
	m := discovered.FindStringSubmatch(name)
	if m == nil {
		c.r.notConverted(u.file, u.path, "Upstream %s/%s is not among the inputs: add a Backend %s to teams/%s/", ns, name, name, ns)
		return
	}
	rest, port := m[1], m[2]
	svcNS, svc := "", ""
	known := append(sortedKeys(c.inputNS), DefaultNamespace)
	for _, k := range known {
		if strings.HasPrefix(rest, k+"-") && len(k) > len(svcNS) {
			svcNS, svc = k, strings.TrimPrefix(rest, k+"-")
		}
	}
	if svcNS == "" {
		var ok bool
		if svcNS, svc, ok = strings.Cut(rest, "-"); !ok {
			c.r.notConverted(u.file, u.path, "Upstream %s/%s is not among the inputs: add a Backend %s to teams/%s/", ns, name, name, ns)
			return
		}
	}
	var p int32
	fmt.Sscan(port, &p)
	host := fmt.Sprintf("%s.%s.svc.cluster.local", svc, svcNS)
	c.r.changed(u.file, u.path, "Upstream %s/%s is not among the inputs; taken as the one Gloo Edge's discovery makes for Service %s/%s port %s: Backend %s/%s with the DNS name %s (check it; Envoy connects to the Service's cluster IP, not to its pods)", ns, name, svcNS, svc, port, ns, name, host)
	c.addBackend(ns, name, nil, v1alpha1.BackendEndpoint{FQDN: &v1alpha1.FQDNEndpoint{Hostname: host, Port: p}})
}

// grant records that HTTPRoutes of namespace from may refer to Backend name
// of namespace to.
func (c *converter) grant(to, from, name string) {
	if c.grants[to] == nil {
		c.grants[to] = map[string]map[string]bool{}
	}
	if c.grants[to][from] == nil {
		c.grants[to][from] = map[string]bool{}
	}
	c.grants[to][from][name] = true
	c.namespaces[to] = true
}

// redirectCodes maps Gloo Edge's RedirectResponseCode to HTTP status codes.
var redirectCodes = map[string]int{
	"MOVED_PERMANENTLY": 301, "0": 301,
	"FOUND": 302, "1": 302,
	"SEE_OTHER": 303, "2": 303,
	"TEMPORARY_REDIRECT": 307, "3": 307,
	"PERMANENT_REDIRECT": 308, "4": 308,
}

// redirect converts redirectAction into a RequestRedirect filter.
func (c *converter) redirect(rule *ruleOut, a *node, matches []glooMatch) bool {
	defer a.done()
	f := &gwv1.HTTPRequestRedirectFilter{}
	code := 301 // Gloo Edge's default, MOVED_PERMANENTLY
	if a.has("responseCode") {
		v := a.str("responseCode")
		cd, ok := redirectCodes[v]
		if !ok {
			c.r.notConverted(a.file, a.field("responseCode"), "unknown response code %q; 301 is used", v)
			cd = 301
		}
		code = cd
	}
	f.StatusCode = &code
	if h := a.str("hostRedirect"); h != "" {
		hn := gwv1.PreciseHostname(h)
		f.Hostname = &hn
	}
	if https, _ := a.boolean("httpsRedirect"); https {
		s := "https"
		f.Scheme = &s
	}
	if p := a.str("pathRedirect"); p != "" {
		f.Path = &gwv1.HTTPPathModifier{Type: gwv1.FullPathHTTPPathModifier, ReplaceFullPath: &p}
	}
	if a.has("prefixRewrite") {
		if f.Path = rewritePath(a.str("prefixRewrite"), matches); f.Path == nil {
			c.r.notConverted(a.file, a.field("prefixRewrite"), "Gateway API replaces a prefix only on a rule whose matches are all PathPrefix (or, for exact paths, the whole path); the redirect keeps the path")
		}
	}
	if v, _ := a.boolean("stripQuery"); v {
		c.r.notConverted(a.file, a.field("stripQuery"), "Gateway API redirects keep the query string")
	}
	a.unsupported("portRedirect", "the redirect keeps the port")
	a.unsupported("regexRewrite", "regex rewrites are not supported; the redirect keeps the path")
	rule.rule.Filters = append(rule.rule.Filters, gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: f})
	return true
}

// rewritePath converts a Gloo prefixRewrite, Envoy's prefix_rewrite, which
// swaps "the matched prefix (or path)" for the value
// (api/envoy/config/route/v3/route_components.proto, RouteAction and
// RedirectAction prefix_rewrite): ReplacePrefixMatch on prefix matches, the
// whole path (ReplaceFullPath) on exact ones. Regular expressions, and a mix,
// have no equivalent (nil).
func rewritePath(p string, matches []glooMatch) *gwv1.HTTPPathModifier {
	switch {
	case allPrefix(matches):
		return &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: &p}
	case allExact(matches):
		return &gwv1.HTTPPathModifier{Type: gwv1.FullPathHTTPPathModifier, ReplaceFullPath: &p}
	}
	return nil
}

func allExact(ms []glooMatch) bool {
	for _, m := range ms {
		if m.match.Path == nil || *m.match.Path.Type != gwv1.PathMatchExact {
			return false
		}
	}
	return len(ms) > 0
}

func allPrefix(ms []glooMatch) bool {
	for _, m := range ms {
		if m.match.Path == nil || *m.match.Path.Type != gwv1.PathMatchPathPrefix {
			return false
		}
	}
	return len(ms) > 0
}

// optionKeys are the route and virtual host options the converter reads;
// every other key of an options mapping is reported by optionsDone.
var optionKeys = []string{"timeout", "retries", "headerManipulation", "prefixRewrite", "hostRewrite", "ratelimit", "ratelimitEarly", "ratelimitRegular", "cors"}

// first returns the nearest options mapping that has key k, marking k read
// in the farther ones (overridden).
func first(chain []*node, k string) *node {
	var found *node
	for _, n := range chain {
		if n.has(k) {
			if found == nil {
				found = n
			} else {
				n.skip(k)
			}
		}
	}
	return found
}

// unsupportedOptions are options with no gitxds equivalent, and why.
var unsupportedOptions = map[string]string{
	"ratelimitBasic":                "global rate limiting (Gloo Edge Enterprise's rate limit server) is not supported; gitxds has local rate limits",
	"rateLimitConfigs":              "global rate limiting (RateLimitConfig, a rate limit server) is not supported; gitxds has local rate limits",
	"rateLimitEarlyConfigs":         "global rate limiting (RateLimitConfig, a rate limit server) is not supported; gitxds has local rate limits",
	"rateLimitRegularConfigs":       "global rate limiting (RateLimitConfig, a rate limit server) is not supported; gitxds has local rate limits",
	"extauth":                       "external authorization is not supported",
	"jwt":                           "JWT verification is not supported",
	"jwtStaged":                     "JWT verification is not supported",
	"rbac":                          "RBAC is not supported",
	"waf":                           "the web application firewall is not supported",
	"dlp":                           "data loss prevention is not supported",
	"transformations":               "transformations are not supported",
	"stagedTransformations":         "transformations are not supported",
	"faults":                        "fault injection is not supported",
	"shadowing":                     "request shadowing is not converted; add a RequestMirror filter to the rule by hand",
	"regexRewrite":                  "regex rewrites are not supported; the path is forwarded unchanged",
	"autoHostRewrite":               "automatic host rewrites are not supported",
	"lbHash":                        "hash-based load balancing is not supported",
	"upgrades":                      "protocol upgrades (WebSocket) are not configured by gitxds convert",
	"bufferPerRoute":                "request buffering is not supported",
	"envoyMetadata":                 "Envoy route metadata is not supported",
	"maxStreamDuration":             "stream durations are not supported",
	"idleTimeout":                   "route idle timeouts are not supported",
	"tracing":                       "per-route tracing is not supported",
	"includeRequestAttemptCount":    "attempt count headers are not supported",
	"includeAttemptCountInResponse": "attempt count headers are not supported",
}

func (c *converter) optionsDone(chain []*node) {
	for _, n := range chain {
		for _, k := range sortedKeys(unsupportedOptions) {
			n.unsupported(k, unsupportedOptions[k])
		}
		n.done()
	}
}

// applyOptions converts the options of a route (its own, else its parents',
// else the virtual host's).
func (c *converter) applyOptions(out *routeOut, rule *ruleOut, chain []*node, matches []glooMatch, redirect bool) {
	policy := &v1alpha1.BackendTrafficPolicySpec{}
	if n := first(chain, "timeout"); n != nil {
		if d, ok := n.duration("timeout"); ok {
			rule.rule.Timeouts = &gwv1.HTTPRouteTimeouts{Request: gwDuration(d)}
		}
	}
	if n := first(chain, "retries"); n != nil {
		policy.Retry = c.retries(n.child("retries"))
	}
	if n := first(chain, "headerManipulation"); n != nil {
		rule.rule.Filters = append(rule.rule.Filters, c.headers(n.child("headerManipulation"))...)
	}
	var rewrite *gwv1.HTTPURLRewriteFilter
	if n := first(chain, "prefixRewrite"); n != nil {
		p := rewritePath(n.str("prefixRewrite"), matches)
		switch {
		case redirect:
			c.r.notConverted(n.file, n.field("prefixRewrite"), "a rewrite on a redirect route has no effect")
		case p == nil:
			c.r.notConverted(n.file, n.field("prefixRewrite"), "Gateway API replaces a prefix only on a rule whose matches are all PathPrefix (or, for exact paths, the whole path); the path is forwarded unchanged")
		default:
			rewrite = &gwv1.HTTPURLRewriteFilter{Path: p}
		}
	}
	if n := first(chain, "hostRewrite"); n != nil {
		h := gwv1.PreciseHostname(n.str("hostRewrite"))
		if redirect {
			c.r.notConverted(n.file, n.field("hostRewrite"), "a rewrite on a redirect route has no effect")
		} else {
			if rewrite == nil {
				rewrite = &gwv1.HTTPURLRewriteFilter{}
			}
			rewrite.Hostname = &h
		}
	}
	if rewrite != nil {
		rule.rule.Filters = append(rule.rule.Filters, gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterURLRewrite, URLRewrite: rewrite})
	}
	if n := first(chain, "cors"); n != nil {
		if f := c.cors(n.child("cors")); f != nil {
			rule.rule.Filters = append(rule.rule.Filters, gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterCORS, CORS: f})
		}
	}
	for _, k := range []string{"ratelimitEarly", "ratelimit", "ratelimitRegular"} {
		n := first(chain, k)
		if n == nil {
			continue
		}
		rl := n.child(k)
		if lr := rl.child("localRatelimit"); lr != nil {
			if policy.RateLimit != nil {
				c.r.notConverted(lr.file, lr.path, "a second local rate limit on the route; only the first converts")
			} else {
				policy.RateLimit = c.localRateLimit(lr)
				if policy.RateLimit != nil && strings.Contains(n.path, "virtualHost.options") {
					c.r.changed(lr.file, lr.path, "a virtual host's local rate limit becomes one per route: each route has its own bucket")
				}
			}
			lr.done()
		}
		rl.unsupported("rateLimits", "global rate limits (descriptors for a rate limit server) are not supported; gitxds has local rate limits")
		rl.unsupported("setActions", "global rate limits (descriptors for a rate limit server) are not supported; gitxds has local rate limits")
		rl.done()
	}
	if policy.Retry != nil || policy.RateLimit != nil {
		rule.policy = policy
	}
}

// retries converts a Gloo RetryPolicy into a BackendTrafficPolicy retry.
func (c *converter) retries(n *node) *v1alpha1.Retry {
	defer n.done()
	r := &v1alpha1.Retry{}
	// Envoy's RetryPolicy.num_retries defaults to 1
	// (api/envoy/config/route/v3/route_components.proto, RetryPolicy); the
	// BackendTrafficPolicy's default is 2, so it is always written.
	num := int32(1)
	if v, ok := n.num("numRetries"); ok {
		num = int32(v)
	}
	r.NumRetries = &num
	if on := n.str("retryOn"); on != "" {
		r.RetryOn = &v1alpha1.RetryOn{}
		for _, t := range strings.Split(on, ",") {
			t = strings.TrimSpace(t)
			if retryTriggers[t] {
				r.RetryOn.Triggers = append(r.RetryOn.Triggers, t)
			} else {
				c.r.notConverted(n.file, n.field("retryOn"), "retry condition %q is not one gitxds passes on (%s)", t, strings.Join(sortedKeys(retryTriggers), ", "))
			}
		}
		if len(r.RetryOn.Triggers) == 0 {
			r.RetryOn = nil
		}
	}
	if r.RetryOn == nil {
		c.r.changed(n.file, n.path, "no retry condition converts: gitxds's default conditions are used (connect-failure, refused-stream, unavailable, cancelled, 503)")
	}
	if n.has("retriableStatusCodes") {
		for _, s := range n.strs("retriableStatusCodes") {
			var code int32
			if _, err := fmt.Sscan(s, &code); err == nil {
				if r.RetryOn == nil {
					r.RetryOn = &v1alpha1.RetryOn{}
				}
				r.RetryOn.HTTPStatusCodes = append(r.RetryOn.HTTPStatusCodes, code)
			}
		}
	}
	pr := &v1alpha1.PerRetry{}
	if d, ok := n.duration("perTryTimeout"); ok {
		pr.Timeout = &metav1.Duration{Duration: d}
	}
	if b := n.child("retryBackOff"); b != nil {
		bo := &v1alpha1.BackOff{}
		if d, ok := b.duration("baseInterval"); ok {
			bo.BaseInterval = &metav1.Duration{Duration: d}
		}
		if d, ok := b.duration("maxInterval"); ok {
			bo.MaxInterval = &metav1.Duration{Duration: d}
		}
		b.done()
		pr.BackOff = bo
	}
	if pr.Timeout != nil || pr.BackOff != nil {
		r.PerRetry = pr
	}
	return r
}

// retryTriggers are the retry conditions a BackendTrafficPolicy accepts
// (Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on values that Envoy
// Gateway passes on).
var retryTriggers = map[string]bool{
	"5xx": true, "gateway-error": true, "reset": true, "connect-failure": true,
	"retriable-4xx": true, "refused-stream": true, "retriable-status-codes": true,
	"cancelled": true, "deadline-exceeded": true, "internal": true,
	"resource-exhausted": true, "unavailable": true,
}

// headers converts headerManipulation into header modifier filters. An
// added header with append false replaces the value (set); with append
// true, Gloo Edge's default, it is added.
func (c *converter) headers(n *node) []gwv1.HTTPRouteFilter {
	defer n.done()
	var out []gwv1.HTTPRouteFilter
	for _, side := range []struct {
		add, remove string
		typ         gwv1.HTTPRouteFilterType
	}{
		{"requestHeadersToAdd", "requestHeadersToRemove", gwv1.HTTPRouteFilterRequestHeaderModifier},
		{"responseHeadersToAdd", "responseHeadersToRemove", gwv1.HTTPRouteFilterResponseHeaderModifier},
	} {
		f := &gwv1.HTTPHeaderFilter{}
		for _, h := range n.list(side.add) {
			h.unsupported("headerSecretRef", "header values from Secrets are not supported")
			hv := h.child("header")
			if hv == nil {
				h.done()
				continue
			}
			hdr := gwv1.HTTPHeader{Name: gwv1.HTTPHeaderName(hv.str("key")), Value: hv.str("value")}
			hv.done()
			if appendV, set := h.boolean("append"); set && !appendV {
				f.Set = append(f.Set, hdr)
			} else {
				f.Add = append(f.Add, hdr)
			}
			h.done()
		}
		f.Remove = n.strs(side.remove)
		if len(f.Set)+len(f.Add)+len(f.Remove) == 0 {
			continue
		}
		hf := gwv1.HTTPRouteFilter{Type: side.typ}
		if side.typ == gwv1.HTTPRouteFilterRequestHeaderModifier {
			hf.RequestHeaderModifier = f
		} else {
			hf.ResponseHeaderModifier = f
		}
		out = append(out, hf)
	}
	return out
}

// localRateLimit converts a token bucket into a BackendTrafficPolicy's
// local rate limit of N requests per unit, which gitxds serves as a bucket
// of N tokens refilled with N every unit: exact only when the bucket is
// refilled whole (tokensPerFill = maxTokens) every second, minute, hour or
// day.
func (c *converter) localRateLimit(n *node) *v1alpha1.RateLimit {
	maxTokens, _ := n.num("maxTokens")
	perFill, set := n.num("tokensPerFill")
	if !set {
		// Envoy's TokenBucket.tokens_per_fill defaults to 1
		// (api/envoy/type/v3/token_bucket.proto, TokenBucket).
		perFill = 1
	}
	interval, ok := n.duration("fillInterval")
	units := map[time.Duration]v1alpha1.RateLimitUnit{
		time.Second: v1alpha1.RateLimitSecond, time.Minute: v1alpha1.RateLimitMinute,
		time.Hour: v1alpha1.RateLimitHour, 24 * time.Hour: v1alpha1.RateLimitDay,
	}
	unit, exact := units[interval]
	if !ok || !exact || perFill != maxTokens || maxTokens < 1 {
		c.r.notConverted(n.file, n.path, "a token bucket of %v tokens refilled with %v every %v is not N requests per second, minute, hour or day; the route has no rate limit", maxTokens, perFill, interval)
		return nil
	}
	return &v1alpha1.RateLimit{Type: v1alpha1.LocalRateLimit, Local: &v1alpha1.LocalRateLimitSpec{
		Rules: []v1alpha1.RateLimitRule{{Limit: v1alpha1.RateLimitValue{Requests: uint32(maxTokens), Unit: unit}}},
	}}
}

// cors converts a Gloo CorsPolicy into Gateway API's CORS filter.
func (c *converter) cors(n *node) *gwv1.HTTPCORSFilter {
	defer n.done()
	if off, _ := n.boolean("disableForRoute"); off {
		n.skip(keysOf(n.m)...)
		return nil
	}
	f := &gwv1.HTTPCORSFilter{}
	for _, o := range n.strs("allowOrigin") {
		f.AllowOrigins = append(f.AllowOrigins, gwv1.CORSOrigin(o))
	}
	if len(n.strs("allowOriginRegex")) > 0 {
		c.r.notConverted(n.file, n.field("allowOriginRegex"), "Gateway API's CORS origins are exact or a leading host wildcard, not regular expressions; these origins are not allowed")
	}
	for _, m := range n.strs("allowMethods") {
		f.AllowMethods = append(f.AllowMethods, gwv1.HTTPMethodWithWildcard(strings.ToUpper(m)))
	}
	for _, h := range n.strs("allowHeaders") {
		f.AllowHeaders = append(f.AllowHeaders, gwv1.HTTPHeaderName(h))
	}
	for _, h := range n.strs("exposeHeaders") {
		f.ExposeHeaders = append(f.ExposeHeaders, gwv1.HTTPHeaderName(h))
	}
	if v, set := n.boolean("allowCredentials"); set {
		f.AllowCredentials = &v
	}
	if n.has("maxAge") {
		// Envoy's CorsPolicy.max_age is the Access-Control-Max-Age value,
		// in seconds (api/envoy/config/route/v3/route_components.proto).
		var secs int32
		if _, err := fmt.Sscan(n.str("maxAge"), &secs); err != nil || secs < 1 {
			c.r.notConverted(n.file, n.field("maxAge"), "not a whole number of seconds")
		} else {
			f.MaxAge = secs
		}
	}
	if len(f.AllowOrigins) == 0 {
		c.r.notConverted(n.file, n.path, "no origin converts; the route has no CORS policy")
		return nil
	}
	return f
}

// gwDuration formats d as a Gateway API duration (whole milliseconds).
func gwDuration(d time.Duration) *gwv1.Duration {
	var s string
	switch {
	case d%time.Hour == 0:
		s = fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		s = fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		s = fmt.Sprintf("%ds", d/time.Second)
	default:
		s = fmt.Sprintf("%dms", d/time.Millisecond)
	}
	v := gwv1.Duration(s)
	return &v
}
