package model

import (
	"fmt"
	"regexp"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
)

// grpcRoute validates a GRPCRoute and builds its IR routes (Match.GRPC set;
// its Backends' clusters speak HTTP/2).
func (b *builder) grpcRoute(o *object, t *gwv1.GRPCRoute) (*route, string) {
	r, msg := b.routeCommon(o, t.Spec.CommonRouteSpec, t.Spec.Hostnames, true)
	if msg != "" {
		return nil, msg
	}
	if len(t.Spec.Rules) == 0 {
		return nil, "spec.rules is empty; add a rule with backendRefs"
	}
	for i := range t.Spec.Rules {
		rule := &t.Spec.Rules[i] // read only: t is shared (DecodeCache)
		if msg := r.addRuleName(i, rule.Name); msg != "" {
			return nil, msg
		}
		if msg := b.grpcRule(r, i, rule); msg != "" {
			return nil, msg
		}
	}
	return r, ""
}

func (b *builder) grpcRule(r *route, i int, rule *gwv1.GRPCRouteRule) string {
	where := fmt.Sprintf("spec.rules[%d]", i)
	matches := rule.Matches
	if len(matches) == 0 {
		matches = []gwv1.GRPCRouteMatch{{}}
	}
	var irMatches []ir.Match
	var ranks []rank
	for j := range matches {
		im, rk, msg := grpcMatch(&matches[j])
		if msg != "" {
			return fmt.Sprintf("%s.matches[%d]: %s", where, j, msg)
		}
		irMatches = append(irMatches, im)
		ranks = append(ranks, rk)
	}
	var filters []gwv1.HTTPRouteFilter
	for _, f := range rule.Filters {
		filters = append(filters, gwv1.HTTPRouteFilter{
			Type:                   gwv1.HTTPRouteFilterType(f.Type),
			RequestHeaderModifier:  f.RequestHeaderModifier,
			ResponseHeaderModifier: f.ResponseHeaderModifier,
			RequestMirror:          f.RequestMirror,
			ExtensionRef:           f.ExtensionRef,
		})
	}
	fs, msg := b.httpFilters(r, filters, where, false)
	if msg != "" {
		return msg
	}
	refs := make([]gwv1.BackendRef, len(rule.BackendRefs))
	for j, br := range rule.BackendRefs {
		if len(br.Filters) > 0 {
			return fmt.Sprintf("%s.backendRefs[%d].filters are not supported; put the filters on the rule", where, j)
		}
		if br.Weight != nil && (*br.Weight < 0 || *br.Weight > 1000000) {
			return fmt.Sprintf("%s.backendRefs[%d].weight %d must be 0..1000000", where, j, *br.Weight)
		}
		refs[j] = br.BackendRef
	}
	if rule.SessionPersistence != nil {
		return where + ".sessionPersistence is not supported; remove it"
	}
	tmpl := ir.Route{Filters: fs.filters}
	backends, invalid, keys := b.backendAction(r, refs, where)
	setAction(&tmpl, backends, invalid)
	r.ruleBackends = append(r.ruleBackends, keys)
	r.addMatches(i, tmpl, irMatches, ranks)
	return ""
}

// grpcName is what Gateway API allows for an exact service or method.
var (
	grpcServiceRE = regexp.MustCompile(`^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$`)
	grpcMethodRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z_0-9]*$`)
)

// grpcMatch turns a GRPCRouteMatch into a path match on "/<service>/<method>":
// both exact → Exact "/svc/Method"; only the service → PathPrefix "/svc/";
// only the method or a regular expression → RegularExpression.
func grpcMatch(m *gwv1.GRPCRouteMatch) (ir.Match, rank, string) {
	out := ir.Match{GRPC: true, PathType: ir.PathPrefix, Path: "/"}
	rk := rank{grpc: true}
	if mm := m.Method; mm != nil {
		typ := gwv1.GRPCMethodMatchExact
		if mm.Type != nil {
			typ = *mm.Type
		}
		svc, meth := deref(mm.Service), deref(mm.Method)
		if svc == "" && meth == "" {
			return out, rk, "method match needs service or method"
		}
		rk.serviceLen, rk.methodLen = len(svc), len(meth)
		switch typ {
		case gwv1.GRPCMethodMatchExact:
			if svc != "" && !grpcServiceRE.MatchString(svc) {
				return out, rk, fmt.Sprintf("method.service %q is not a gRPC service name", svc)
			}
			if meth != "" && !grpcMethodRE.MatchString(meth) {
				return out, rk, fmt.Sprintf("method.method %q is not a gRPC method name", meth)
			}
			switch {
			case svc != "" && meth != "":
				out.PathType, out.Path = ir.PathExact, "/"+svc+"/"+meth
			case svc != "":
				out.PathType, out.Path = ir.PathPrefix, "/"+svc+"/"
			default:
				out.PathType, out.Path = ir.PathRegex, "/[^/]+/"+regexp.QuoteMeta(meth)
			}
		case gwv1.GRPCMethodMatchRegularExpression:
			rk.regex = true
			for _, re := range []string{svc, meth} {
				if msg := validRegex(re); re != "" && msg != "" {
					return out, rk, "method " + msg
				}
			}
			if svc == "" {
				svc = "[^/]+"
			}
			if meth == "" {
				meth = "[^/]+"
			}
			out.PathType, out.Path = ir.PathRegex, "/(?:"+svc+")/(?:"+meth+")"
		default:
			return out, rk, fmt.Sprintf("method.type %q is not one of Exact, RegularExpression", typ)
		}
	}
	seen := map[string]bool{}
	for k, h := range m.Headers {
		name := strings.ToLower(string(h.Name))
		if msg := validHeaderName(name); msg != "" {
			return out, rk, fmt.Sprintf("headers[%d]: %s", k, msg)
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		sm, msg := stringMatch(name, (*string)(h.Type), h.Value)
		if msg != "" {
			return out, rk, fmt.Sprintf("headers[%d] (%s): %s", k, name, msg)
		}
		out.Headers = append(out.Headers, sm)
	}
	rk.headers = len(out.Headers)
	return out, rk, ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
