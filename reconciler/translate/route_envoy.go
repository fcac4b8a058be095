package translate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"gitxds.dev/gitxds/reconciler/ir"
)

// minFillInterval is the smallest token bucket fill interval Envoy accepts
// in the local rate limit filter.
const minFillInterval = 50 * time.Millisecond

// envoyRoute translates one IR route for Envoy.
func (t *translation) envoyRoute(r *ir.Route) (*routev3.Route, error) {
	m, err := envoyMatch(&r.Match)
	if err != nil {
		return nil, err
	}
	out := &routev3.Route{Name: r.Name, Match: m}
	switch {
	case r.DirectResponse != nil:
		out.Action = directResponse(r.DirectResponse)
	case r.Redirect != nil:
		a, err := redirect(r)
		if err != nil {
			return nil, err
		}
		out.Action = a
	default:
		a, err := t.envoyRouteAction(r)
		if err != nil {
			return nil, err
		}
		out.Action = &routev3.Route_Route{Route: a}
	}
	f := &r.Filters
	out.RequestHeadersToAdd = headersToAdd(f.RequestHeaders)
	out.RequestHeadersToRemove = lowerAll(f.RequestHeaders.Remove)
	out.ResponseHeadersToAdd = headersToAdd(f.ResponseHeaders)
	out.ResponseHeadersToRemove = lowerAll(f.ResponseHeaders.Remove)
	if f.CORS != nil {
		cfg, err := corsPolicy(f.CORS)
		if err != nil {
			return nil, fmt.Errorf("CORS: %w", err)
		}
		out.TypedPerFilterConfig = map[string]*anypb.Any{filterCORS: cfg}
	}
	if r.RateLimit != nil {
		cfg, err := localRateLimit(r.RateLimit)
		if err != nil {
			return nil, fmt.Errorf("rate limit: %w", err)
		}
		if out.TypedPerFilterConfig == nil {
			out.TypedPerFilterConfig = map[string]*anypb.Any{}
		}
		out.TypedPerFilterConfig[filterLocalRateLimit] = cfg
	}
	if r.Security != nil {
		if out.TypedPerFilterConfig == nil {
			out.TypedPerFilterConfig = map[string]*anypb.Any{}
		}
		if err := securityPerRoute(r.Security, out.TypedPerFilterConfig); err != nil {
			return nil, fmt.Errorf("SecurityPolicy %s: %w", r.Security.Name, err)
		}
	}
	if r.Session != nil {
		cfg, err := statefulSessionPerRoute(r.Session)
		if err != nil {
			return nil, fmt.Errorf("session persistence: %w", err)
		}
		if out.TypedPerFilterConfig == nil {
			out.TypedPerFilterConfig = map[string]*anypb.Any{}
		}
		out.TypedPerFilterConfig[filterStatefulSession] = cfg
	}
	if r.GlobalRateLimit != nil || len(r.Extensions) > 0 {
		if out.TypedPerFilterConfig == nil {
			out.TypedPerFilterConfig = map[string]*anypb.Any{}
		}
		if err := routeFilterConfigs(r, out.TypedPerFilterConfig); err != nil {
			return nil, err
		}
	}
	if err := out.ValidateAll(); err != nil {
		return nil, err
	}
	return out, nil
}

// envoyRouteAction forwards to the route's backends with its timeouts,
// retries, rewrites and mirrors.
func (t *translation) envoyRouteAction(r *ir.Route) (*routev3.RouteAction, error) {
	a := &routev3.RouteAction{}
	setClusters(a, r.Backends, r.InvalidWeight)
	a.HashPolicy = envoyHashPolicy(r.Hash)
	if r.InvalidWeight > 0 {
		a.ClusterNotFoundResponseCode = routev3.RouteAction_INTERNAL_SERVER_ERROR
	}
	envoyTimeouts(a, r)
	a.IdleTimeout = duration(r.Timeouts.Idle)
	if retries(r) {
		perTry := r.Retry.PerTryTimeout
		if perTry == 0 {
			perTry = r.Timeouts.BackendRequest
		}
		rp, err := envoyRetry(r.Retry, perTry)
		if err != nil {
			return nil, err
		}
		a.RetryPolicy = rp
	}
	if rw := r.Filters.Rewrite; rw != nil {
		if rw.Hostname != "" {
			a.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Hostname}
		}
		if pm := rw.Path; pm != nil {
			switch {
			case pm.PrefixReplace != nil:
				pr, err := replacePrefix(&r.Match, *pm.PrefixReplace)
				if err != nil {
					return nil, fmt.Errorf("URL rewrite: %w", err)
				}
				a.PrefixRewrite, a.RegexRewrite = pr.prefix, pr.regex
			case pm.FullPath != "":
				a.RegexRewrite = fullPathRewrite(pm.FullPath)
			}
		}
	}
	for _, m := range r.Filters.Mirrors {
		p := &routev3.RouteAction_RequestMirrorPolicy{Cluster: m.Cluster}
		if m.Percent < 100 {
			p.RuntimeFraction = fraction(m.Percent)
		}
		a.RequestMirrorPolicies = append(a.RequestMirrorPolicies, p)
	}
	return a, nil
}

// invalidBackendCluster takes the share of requests of unresolved
// backendRefs (ir.Route.InvalidWeight). Envoy is never given a cluster of
// that name, so those requests get the route's cluster_not_found_response_code,
// 500 as Gateway API requires; gRPC nodes get an EDS cluster without
// endpoints, whose RPCs fail with UNAVAILABLE. IR cluster names always
// contain a "/", so this one cannot collide with them.
const invalidBackendCluster = "invalid-backend"

// setClusters: one backend is a cluster, several (or one and an invalid
// share) are weighted clusters.
func setClusters(a *routev3.RouteAction, bs []ir.WeightedBackend, invalid uint32) {
	if len(bs) == 1 && invalid == 0 {
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: bs[0].Cluster}
		return
	}
	wc := &routev3.WeightedCluster{}
	for _, b := range bs {
		wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{
			Name:   b.Cluster,
			Weight: wrapperspb.UInt32(b.Weight),
		})
	}
	if invalid > 0 {
		wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{
			Name:   invalidBackendCluster,
			Weight: wrapperspb.UInt32(invalid),
		})
	}
	a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
}

// defaultRouteTimeout is the request timeout of an HTTPRoute rule that sets
// none. It is Envoy's own default for an absent RouteAction.timeout
// (DEFAULT_ROUTE_TIMEOUT_MS in source/common/router/config_impl.cc,
// RouteEntryImplBase), written out so that the served config says it.
const defaultRouteTimeout = 15 * time.Second

// retries reports whether a route retries: a policy of 0 attempts
// (HTTPRoute retry.attempts: 0) disables retries.
func retries(r *ir.Route) bool { return r.Retry != nil && r.Retry.Attempts > 0 }

// overallTimeout is the deadline of the whole request, every attempt
// included, 0 for none. Without retries the single backend request must
// also finish within its BackendRequest timeout; with retries that is a
// per-try timeout.
func overallTimeout(r *ir.Route) time.Duration {
	req, be := r.Timeouts.Request, r.Timeouts.BackendRequest
	retries := retries(r)
	switch {
	case req > 0 && !retries && be > 0 && be < req:
		return be
	case req > 0:
		return req
	case !retries:
		return be
	}
	return 0
}

// envoyTimeouts sets the route timeout, always explicitly: Envoy reads an
// absent timeout as 15s. 0 disables it. The default when nothing sets one:
//   - an HTTPRoute rule gets defaultRouteTimeout (15s);
//   - a GRPCRoute rule (Gateway API gives it no timeouts) gets none, so
//     streaming calls are not cut, and its max_stream_duration takes the
//     client's grpc-timeout header as the deadline (grpc_timeout_header_max
//     0: the header's value, unlimited), as a gRPC server would;
//   - timeouts.request: 0s disables the timeout (overall 0 unless a
//     backendRequest timeout without retries bounds the single attempt).
func envoyTimeouts(a *routev3.RouteAction, r *ir.Route) {
	d := overallTimeout(r)
	if d == 0 && !r.Match.GRPC && !r.Timeouts.NoRequestTimeout {
		d = defaultRouteTimeout
	}
	a.Timeout = durationpb.New(d)
	if r.Match.GRPC {
		a.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{GrpcTimeoutHeaderMax: durationpb.New(d)}
	}
}

func envoyRetry(r *ir.Retry, perTry time.Duration) (*routev3.RetryPolicy, error) {
	on := append([]string(nil), r.RetryOn...)
	if len(r.StatusCodes) > 0 && !contains(on, "retriable-status-codes") {
		on = append(on, "retriable-status-codes")
	}
	rp := &routev3.RetryPolicy{
		RetryOn: strings.Join(on, ","),
		// Always explicit: Envoy reads an absent num_retries as 1
		// (RetryPolicyImpl's PROTOBUF_GET_WRAPPED_OR_DEFAULT(retry_policy,
		// num_retries, 1), source/common/router/config_impl.cc, in
		// retry_policy_impl.cc since it moved there).
		NumRetries:           wrapperspb.UInt32(r.Attempts),
		PerTryTimeout:        duration(perTry),
		RetriableStatusCodes: r.StatusCodes,
	}
	bo, err := backoff(r)
	if err != nil {
		return nil, err
	}
	rp.RetryBackOff = bo
	return rp, nil
}

// backoff of a retry policy; Envoy's and gRPC's base default is 25ms.
func backoff(r *ir.Retry) (*routev3.RetryPolicy_RetryBackOff, error) {
	if r.BackoffBase <= 0 && r.BackoffMax <= 0 {
		return nil, nil
	}
	base := r.BackoffBase
	if base <= 0 {
		base = 25 * time.Millisecond
	}
	if r.BackoffMax > 0 && r.BackoffMax < base {
		return nil, fmt.Errorf("retry backoff max %v is less than its base %v", r.BackoffMax, base)
	}
	return &routev3.RetryPolicy_RetryBackOff{BaseInterval: duration(base), MaxInterval: duration(r.BackoffMax)}, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func directResponse(d *ir.DirectResponse) *routev3.Route_DirectResponse {
	a := &routev3.DirectResponseAction{Status: d.Status}
	if d.Body != "" {
		a.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: d.Body}}
	}
	return &routev3.Route_DirectResponse{DirectResponse: a}
}

var redirectCodes = map[int]routev3.RedirectAction_RedirectResponseCode{
	301: routev3.RedirectAction_MOVED_PERMANENTLY,
	302: routev3.RedirectAction_FOUND,
	303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT,
	308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

// redirect answers with a redirect; the status defaults to 302 as in the
// Gateway API (Envoy's own default is 301).
func redirect(r *ir.Route) (*routev3.Route_Redirect, error) {
	rd := r.Redirect
	code := rd.StatusCode
	if code == 0 {
		code = 302
	}
	rc, ok := redirectCodes[code]
	if !ok {
		return nil, fmt.Errorf("redirect status %d is not one of 301, 302, 303, 307, 308", code)
	}
	a := &routev3.RedirectAction{HostRedirect: rd.Hostname, PortRedirect: rd.Port, ResponseCode: rc}
	if rd.Scheme != "" {
		a.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: rd.Scheme}
	}
	if pm := rd.Path; pm != nil {
		switch {
		case pm.PrefixReplace != nil:
			pr, err := replacePrefix(&r.Match, *pm.PrefixReplace)
			if err != nil {
				return nil, fmt.Errorf("redirect: %w", err)
			}
			if pr.regex != nil {
				a.PathRewriteSpecifier = &routev3.RedirectAction_RegexRewrite{RegexRewrite: pr.regex}
			} else {
				a.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: pr.prefix}
			}
		case pm.FullPath != "":
			a.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: pm.FullPath}
		}
	}
	return &routev3.Route_Redirect{Redirect: a}, nil
}

// headersToAdd: Set overwrites, Add appends. Values are sent literally.
func headersToAdd(h ir.HeaderModifier) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for _, s := range h.Set {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: s.Name, Value: literalHeaderValue(s.Value)},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	for _, a := range h.Add {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: a.Name, Value: literalHeaderValue(a.Value)},
			AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
		})
	}
	return out
}

// literalHeaderValue escapes a header value so that Envoy sends it as
// written. Envoy parses request_headers_to_add and response_headers_to_add
// values as format strings (source/common/router/header_parser.cc,
// parseHttpHeaderFormatter, which hands them to Formatter::FormatterImpl and
// so to SubstitutionFormatParser::parse in
// source/common/formatter/substitution_formatter.h): "%%" is a literal
// "%", "%REQ(x)%" is replaced by a request header, and a lone "%" (as in
// "50%off") fails the parse and with it the whole RouteConfiguration.
func literalHeaderValue(v string) string { return strings.ReplaceAll(v, "%", "%%") }

func lowerAll(ss []string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, strings.ToLower(s))
	}
	return out
}

// corsPolicy is the per-route config of the CORS filter. An origin with "*"
// is a regular expression in which "*" matches any characters.
func corsPolicy(c *ir.CORS) (*anypb.Any, error) {
	p := &corsv3.CorsPolicy{
		AllowMethods:  strings.Join(c.AllowMethods, ","),
		AllowHeaders:  strings.Join(c.AllowHeaders, ","),
		ExposeHeaders: strings.Join(c.ExposeHeaders, ","),
	}
	for _, o := range c.AllowOrigins {
		if !strings.Contains(o, "*") {
			p.AllowOriginStringMatch = append(p.AllowOriginStringMatch, exact(o))
			continue
		}
		parts := strings.Split(o, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re := strings.Join(parts, ".*")
		if err := compileRegex(re); err != nil {
			return nil, err
		}
		p.AllowOriginStringMatch = append(p.AllowOriginStringMatch, &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: regexMatcher(re)},
		})
	}
	if c.MaxAge > 0 {
		p.MaxAge = strconv.FormatInt(int64(c.MaxAge/time.Second), 10)
	}
	if c.AllowCredentials {
		p.AllowCredentials = wrapperspb.Bool(true)
	}
	return pack(p)
}

// localRateLimit is a token bucket of Requests tokens refilled every Per,
// enabled and enforced for every request of the route. The bucket is shared
// by every connection of one Envoy.
func localRateLimit(rl *ir.RateLimit) (*anypb.Any, error) {
	if rl.Per < minFillInterval {
		return nil, fmt.Errorf("interval %v is shorter than Envoy's minimum of %v", rl.Per, minFillInterval)
	}
	all := func(key string) *corev3.RuntimeFractionalPercent {
		f := fraction(100)
		f.RuntimeKey = key
		return f
	}
	return pack(&localratelimitv3.LocalRateLimit{
		StatPrefix: localRateLimitStatPrefix,
		TokenBucket: &typev3.TokenBucket{
			MaxTokens:     rl.Requests,
			TokensPerFill: u32(rl.Requests),
			FillInterval:  duration(rl.Per),
		},
		FilterEnabled:  all("local_rate_limit_enabled"),
		FilterEnforced: all("local_rate_limit_enforced"),
	})
}
