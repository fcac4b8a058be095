package model

import (
	"fmt"
	"strings"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
)

type filterResult struct {
	filters  ir.Filters
	redirect *ir.Redirect
	// extAuth is the rule's ExternalAuth filter (experimental channel),
	// served like a SecurityPolicy's extAuth.
	extAuth *ir.ExtAuth
}

// httpFilters validates the filters of a rule (HTTPRoute, or GRPCRoute
// through the shared types). allPrefix says whether every match of the rule
// is a PathPrefix match, which ReplacePrefixMatch needs.
func (b *builder) httpFilters(r *route, filters []gwv1.HTTPRouteFilter, where string, allPrefix bool) (filterResult, string) {
	var out filterResult
	count := map[gwv1.HTTPRouteFilterType]int{}
	for k, f := range filters {
		at := fmt.Sprintf("%s.filters[%d]", where, k)
		count[f.Type]++
		if f.Type != gwv1.HTTPRouteFilterRequestMirror && count[f.Type] > 1 {
			return out, fmt.Sprintf("%s: filter %s is given more than once", at, f.Type)
		}
		if msg := filterFieldMatchesType(f); msg != "" {
			return out, at + ": " + msg
		}
		var msg string
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier:
			out.filters.RequestHeaders, msg = headerModifier(f.RequestHeaderModifier)
		case gwv1.HTTPRouteFilterResponseHeaderModifier:
			out.filters.ResponseHeaders, msg = headerModifier(f.ResponseHeaderModifier)
		case gwv1.HTTPRouteFilterRequestRedirect:
			out.redirect, msg = redirect(f.RequestRedirect, allPrefix)
		case gwv1.HTTPRouteFilterURLRewrite:
			out.filters.Rewrite, msg = rewrite(f.URLRewrite, allPrefix)
		case gwv1.HTTPRouteFilterRequestMirror:
			var m *ir.Mirror
			m, msg = b.mirror(r, f.RequestMirror, at)
			if m != nil {
				out.filters.Mirrors = append(out.filters.Mirrors, *m)
			}
		case gwv1.HTTPRouteFilterCORS:
			out.filters.CORS, msg = cors(f.CORS)
		case gwv1.HTTPRouteFilterExternalAuth:
			out.extAuth, msg = b.externalAuth(r, f.ExternalAuth, at)
		default:
			msg = fmt.Sprintf("filter type %q is not supported by gitxds (supported: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror, CORS, ExternalAuth)", f.Type)
		}
		if msg != "" {
			return out, at + ": " + msg
		}
	}
	if out.redirect != nil && out.filters.Rewrite != nil {
		return out, where + ": RequestRedirect and URLRewrite cannot be used together (IncompatibleFilters)"
	}
	return out, ""
}

// externalAuth maps Gateway API's ExternalAuth filter to the extAuth of a
// SecurityPolicy: the service is a Backend the route may use; a rule whose
// service cannot be resolved is invalid (it is never served without its
// authorization).
func (b *builder) externalAuth(r *route, f *gwv1.HTTPExternalAuthFilter, at string) (*ir.ExtAuth, string) {
	out := &ir.ExtAuth{Timeout: defaultExtAuthTimeout}
	var allowed []string
	switch f.ExternalAuthProtocol {
	case gwv1.HTTPRouteExternalAuthGRPCProtocol:
		out.GRPC = true
		if f.HTTPAuthConfig != nil {
			return nil, "protocol GRPC takes grpc settings, not http"
		}
		if f.GRPCAuthConfig != nil {
			allowed = f.GRPCAuthConfig.AllowedRequestHeaders
		}
	case gwv1.HTTPRouteExternalAuthHTTPProtocol:
		if f.GRPCAuthConfig != nil {
			return nil, "protocol HTTP takes http settings, not grpc"
		}
		if h := f.HTTPAuthConfig; h != nil {
			if h.Path != "" {
				if msg := validPath(h.Path); msg != "" {
					return nil, "http.path " + msg
				}
				out.PathPrefix = strings.TrimSuffix(h.Path, "/")
			}
			allowed = h.AllowedRequestHeaders
			for i, n := range h.AllowedResponseHeaders {
				name := strings.ToLower(n)
				if msg := validHeaderName(name); msg != "" {
					return nil, fmt.Sprintf("http.allowedResponseHeaders[%d]: %s", i, msg)
				}
				out.HeadersToBackend = append(out.HeadersToBackend, name)
			}
		}
	default:
		return nil, fmt.Sprintf("protocol %q is not GRPC or HTTP", f.ExternalAuthProtocol)
	}
	if f.ForwardBody != nil {
		return nil, "forwardBody is not supported; remove it"
	}
	for i, n := range allowed {
		name := strings.ToLower(n)
		if msg := validHeaderName(name); msg != "" {
			return nil, fmt.Sprintf("allowedHeaders[%d]: %s", i, msg)
		}
		out.HeadersToExtAuth = append(out.HeadersToExtAuth, name)
	}
	c, _, ok := b.resolveBackend(r, at+".backendRef", f.BackendRef)
	if !ok {
		return nil, "backendRef: " + r.refProblems[len(r.refProblems)-1].msg + " (the rule is not served without its authorization service)"
	}
	out.Cluster = c
	return out, ""
}

// filterFieldMatchesType checks that the filter's config field is the one
// its type names, and only that one.
func filterFieldMatchesType(f gwv1.HTTPRouteFilter) string {
	set := []struct {
		t  gwv1.HTTPRouteFilterType
		ok bool
	}{
		{gwv1.HTTPRouteFilterRequestHeaderModifier, f.RequestHeaderModifier != nil},
		{gwv1.HTTPRouteFilterResponseHeaderModifier, f.ResponseHeaderModifier != nil},
		{gwv1.HTTPRouteFilterRequestRedirect, f.RequestRedirect != nil},
		{gwv1.HTTPRouteFilterURLRewrite, f.URLRewrite != nil},
		{gwv1.HTTPRouteFilterRequestMirror, f.RequestMirror != nil},
		{gwv1.HTTPRouteFilterCORS, f.CORS != nil},
		{gwv1.HTTPRouteFilterExternalAuth, f.ExternalAuth != nil},
		{gwv1.HTTPRouteFilterExtensionRef, f.ExtensionRef != nil},
	}
	for _, s := range set {
		if s.ok && s.t != f.Type {
			return fmt.Sprintf("type is %s but the filter sets the %s configuration", f.Type, s.t)
		}
		if !s.ok && s.t == f.Type {
			return fmt.Sprintf("type %s needs its configuration (the field named after the type)", f.Type)
		}
	}
	return ""
}

// hostHeader is the one header name (besides ":"-prefixed pseudo-headers,
// which validHeaderName refuses) that Envoy's header parser does not let a
// route set, add or remove: source/common/router/header_parser.cc,
// HeaderParser::configure and parseHttpHeaderFormatter, through
// Http::HeaderUtility::isModifiableHeader (":-prefixed or host headers may
// not be modified"). The whole RouteConfiguration would be rejected.
const hostHeader = "host"

// opPast is the participle of a header modifier operation, for messages.
var opPast = map[string]string{"set": "set", "add": "added", "remove": "removed"}

// headerModifier maps a RequestHeaderModifier or ResponseHeaderModifier.
// Host is refused (UnsupportedValue): Envoy cannot modify it, and the
// Gateway API way to change the Host sent upstream is a URLRewrite
// filter's hostname, which gitxds serves as host_rewrite_literal.
func headerModifier(h *gwv1.HTTPHeaderFilter) (ir.HeaderModifier, string) {
	var out ir.HeaderModifier
	seen := map[string]string{}
	use := func(name, op string) string {
		n := strings.ToLower(name)
		if msg := validHeaderName(n); msg != "" {
			return msg
		}
		if n == hostHeader {
			return fmt.Sprintf("header %q cannot be %s by a header modifier (Envoy refuses to modify Host; use a URLRewrite filter's hostname to change the Host sent upstream)", name, opPast[op])
		}
		if prev, ok := seen[n]; ok {
			return fmt.Sprintf("header %q is both in %s and %s", name, prev, op)
		}
		seen[n] = op
		return ""
	}
	for _, x := range h.Set {
		if msg := use(string(x.Name), "set"); msg != "" {
			return out, msg
		}
		out.Set = append(out.Set, ir.Header{Name: string(x.Name), Value: x.Value})
	}
	for _, x := range h.Add {
		if msg := use(string(x.Name), "add"); msg != "" {
			return out, msg
		}
		out.Add = append(out.Add, ir.Header{Name: string(x.Name), Value: x.Value})
	}
	for _, x := range h.Remove {
		if msg := use(x, "remove"); msg != "" {
			return out, msg
		}
		out.Remove = append(out.Remove, x)
	}
	return out, ""
}

func pathModifier(p *gwv1.HTTPPathModifier, allPrefix bool) (*ir.PathModifier, string) {
	if p == nil {
		return nil, ""
	}
	switch p.Type {
	case gwv1.FullPathHTTPPathModifier:
		if p.ReplaceFullPath == nil || p.ReplacePrefixMatch != nil {
			return nil, "path type ReplaceFullPath needs replaceFullPath (and only it)"
		}
		if msg := validPath(*p.ReplaceFullPath); msg != "" {
			return nil, "path.replaceFullPath " + msg
		}
		return &ir.PathModifier{FullPath: *p.ReplaceFullPath}, ""
	case gwv1.PrefixMatchHTTPPathModifier:
		if p.ReplacePrefixMatch == nil || p.ReplaceFullPath != nil {
			return nil, "path type ReplacePrefixMatch needs replacePrefixMatch (and only it)"
		}
		if !allPrefix {
			return nil, "ReplacePrefixMatch needs every match of the rule to be a PathPrefix match"
		}
		if msg := validPath(*p.ReplacePrefixMatch); msg != "" {
			return nil, "path.replacePrefixMatch " + msg
		}
		v := *p.ReplacePrefixMatch
		return &ir.PathModifier{PrefixReplace: &v}, ""
	default:
		return nil, fmt.Sprintf("path type %q is not one of ReplaceFullPath, ReplacePrefixMatch", p.Type)
	}
}

func redirect(f *gwv1.HTTPRequestRedirectFilter, allPrefix bool) (*ir.Redirect, string) {
	out := &ir.Redirect{StatusCode: 302}
	if f.Scheme != nil {
		if *f.Scheme != "http" && *f.Scheme != "https" {
			return nil, fmt.Sprintf("requestRedirect.scheme %q must be http or https", *f.Scheme)
		}
		out.Scheme = *f.Scheme
	}
	if f.Hostname != nil {
		if msg := validHostname(string(*f.Hostname)); msg != "" || strings.HasPrefix(string(*f.Hostname), "*") {
			return nil, fmt.Sprintf("requestRedirect.hostname %q must be a hostname without wildcard", *f.Hostname)
		}
		out.Hostname = string(*f.Hostname)
	}
	if f.Port != nil {
		if !validPort(*f.Port) {
			return nil, fmt.Sprintf("requestRedirect.port %d must be 1..65535", *f.Port)
		}
		out.Port = uint32(*f.Port)
	}
	if f.StatusCode != nil {
		switch *f.StatusCode {
		case 301, 302, 303, 307, 308:
			out.StatusCode = *f.StatusCode
		default:
			return nil, fmt.Sprintf("requestRedirect.statusCode %d must be 301, 302, 303, 307 or 308", *f.StatusCode)
		}
	}
	var msg string
	if out.Path, msg = pathModifier(f.Path, allPrefix); msg != "" {
		return nil, "requestRedirect." + msg
	}
	return out, ""
}

func rewrite(f *gwv1.HTTPURLRewriteFilter, allPrefix bool) (*ir.Rewrite, string) {
	out := &ir.Rewrite{}
	if f.Hostname != nil {
		if msg := validHostname(string(*f.Hostname)); msg != "" || strings.HasPrefix(string(*f.Hostname), "*") {
			return nil, fmt.Sprintf("urlRewrite.hostname %q must be a hostname without wildcard", *f.Hostname)
		}
		out.Hostname = string(*f.Hostname)
	}
	var msg string
	if out.Path, msg = pathModifier(f.Path, allPrefix); msg != "" {
		return nil, "urlRewrite." + msg
	}
	if out.Hostname == "" && out.Path == nil {
		return nil, "urlRewrite sets neither hostname nor path"
	}
	return out, ""
}

// mirror resolves a RequestMirror. An unresolvable backend is a ResolvedRefs
// problem and the mirror is left out; bad percentages reject the route.
func (b *builder) mirror(r *route, f *gwv1.HTTPRequestMirrorFilter, at string) (*ir.Mirror, string) {
	percent := uint32(100)
	switch {
	case f.Percent != nil && f.Fraction != nil:
		return nil, "requestMirror: set percent or fraction, not both"
	case f.Percent != nil:
		if *f.Percent < 0 || *f.Percent > 100 {
			return nil, fmt.Sprintf("requestMirror.percent %d must be 0..100", *f.Percent)
		}
		percent = uint32(*f.Percent)
	case f.Fraction != nil:
		den := int32(100)
		if f.Fraction.Denominator != nil {
			den = *f.Fraction.Denominator
		}
		if den < 1 || f.Fraction.Numerator < 0 || f.Fraction.Numerator > den {
			return nil, "requestMirror.fraction needs 0 <= numerator <= denominator and denominator >= 1"
		}
		if (f.Fraction.Numerator*100)%den != 0 {
			return nil, fmt.Sprintf("requestMirror.fraction %d/%d is not a whole percentage; gitxds mirrors whole percents", f.Fraction.Numerator, den)
		}
		percent = uint32(f.Fraction.Numerator * 100 / den)
	}
	name, _, ok := b.resolveBackend(r, at+".requestMirror.backendRef", f.BackendRef)
	if !ok {
		last := &r.refProblems[len(r.refProblems)-1]
		last.msg += " (the mirror is left out)"
		return nil, ""
	}
	return &ir.Mirror{Cluster: name, Percent: percent}, ""
}

func cors(f *gwv1.HTTPCORSFilter) (*ir.CORS, string) {
	out := &ir.CORS{MaxAge: 5 * time.Second}
	for _, o := range f.AllowOrigins {
		if o == "*" && len(f.AllowOrigins) > 1 {
			return nil, "cors.allowOrigins cannot contain \"*\" alongside other origins"
		}
		s := string(o)
		if s != "*" && !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
			return nil, fmt.Sprintf("cors.allowOrigins %q must be * or <scheme>://<host>[:<port>] with scheme http or https", s)
		}
		out.AllowOrigins = append(out.AllowOrigins, s)
	}
	for _, m := range f.AllowMethods {
		if m != "*" && !httpMethods[gwv1.HTTPMethod(m)] {
			return nil, fmt.Sprintf("cors.allowMethods %q is not an HTTP method", m)
		}
		out.AllowMethods = append(out.AllowMethods, string(m))
	}
	for _, h := range f.AllowHeaders {
		out.AllowHeaders = append(out.AllowHeaders, string(h))
	}
	for _, h := range f.ExposeHeaders {
		out.ExposeHeaders = append(out.ExposeHeaders, string(h))
	}
	if f.MaxAge < 0 {
		return nil, "cors.maxAge must not be negative"
	}
	if f.MaxAge > 0 {
		out.MaxAge = time.Duration(f.MaxAge) * time.Second
	}
	if f.AllowCredentials != nil {
		out.AllowCredentials = *f.AllowCredentials
	}
	return out, ""
}
