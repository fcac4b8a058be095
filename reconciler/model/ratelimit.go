package model

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// Gateway annotations of the global rate limit service.
const (
	// AnnotationRateLimitGRPC names a Backend of the Gateway's namespace
	// that runs a rate limit service (envoy.service.ratelimit.v3); the
	// global rate limits of routes on the Gateway's listeners are checked
	// against it. Envoy only.
	AnnotationRateLimitGRPC = "gitxds.dev/rate-limit-grpc"
	// AnnotationRateLimitFailureMode is "allow" (the default: a request
	// goes on when the service cannot be reached) or "deny" (it gets 500).
	AnnotationRateLimitFailureMode = "gitxds.dev/rate-limit-failure-mode"
)

// Values of AnnotationRateLimitFailureMode.
const (
	FailureModeAllow = "allow"
	FailureModeDeny  = "deny"
)

var globalUnits = map[v1alpha1.RateLimitUnit]ir.RateLimitUnit{
	v1alpha1.RateLimitSecond: ir.UnitSecond, v1alpha1.RateLimitMinute: ir.UnitMinute,
	v1alpha1.RateLimitHour: ir.UnitHour, v1alpha1.RateLimitDay: ir.UnitDay,
}

// headerName is an HTTP header name (RFC 9110 token), lowercase as
// Envoy compares it.
var headerName = regexp.MustCompile(`^[a-z0-9!#$%&'*+.^_` + "`" + `|~-]+$`)

// newGlobalRateLimit validates the rules of a global rate limit: each
// becomes a descriptor ("rule" = "<ns>/<policy>/<i>", then one entry per
// selector) that the rate limit service counts (docs/operations.md,
// "Global rate limits").
func newGlobalRateLimit(o *object, g *v1alpha1.GlobalRateLimitSpec) (*ir.GlobalRateLimit, string) {
	if len(g.Rules) == 0 {
		return nil, "rateLimit.global.rules is empty"
	}
	out := &ir.GlobalRateLimit{Policy: o.ref()}
	out.Policy.File = ""
	for i, r := range g.Rules {
		where := fmt.Sprintf("rateLimit.global.rules[%d]", i)
		unit, ok := globalUnits[r.Limit.Unit]
		if !ok {
			return nil, fmt.Sprintf("%s.limit.unit %q is not one of Second, Minute, Hour, Day", where, r.Limit.Unit)
		}
		if r.Limit.Requests == 0 {
			return nil, where + ".limit.requests must be at least 1"
		}
		rule := ir.GlobalRateLimitRule{ID: fmt.Sprintf("%s/%s/%d", o.src.Namespace, o.src.Name, i), Requests: r.Limit.Requests, Unit: unit}
		// Every condition of every selector must hold (Envoy Gateway's
		// ClientSelectors): all of them are actions of the rule's one
		// rate_limits entry.
		for si, sel := range r.ClientSelectors {
			sw := fmt.Sprintf("%s.clientSelectors[%d]", where, si)
			if len(sel.Headers) == 0 && sel.Path == nil && sel.SourceCIDR == nil && len(sel.JWTClaims) == 0 {
				return nil, sw + " is empty"
			}
			for j, h := range sel.Headers {
				hw := fmt.Sprintf("%s.headers[%d]", sw, j)
				name := strings.ToLower(h.Name)
				if !headerName.MatchString(name) || strings.HasPrefix(name, ":") {
					return nil, fmt.Sprintf("%s.name %q is not a header name", hw, h.Name)
				}
				typ := v1alpha1.HeaderMatchExact
				if h.Type != nil {
					typ = *h.Type
				}
				invert := h.Invert != nil && *h.Invert
				m := ir.RateLimitHeader{Name: name, Invert: invert}
				switch typ {
				case v1alpha1.HeaderMatchDistinct:
					if h.Value != nil || invert {
						return nil, hw + ": type Distinct takes no value and no invert"
					}
					m.Distinct = true
				case v1alpha1.HeaderMatchExact, v1alpha1.HeaderMatchRegularExpression:
					if h.Value == nil {
						return nil, hw + ".value is required for type " + string(typ)
					}
					m.Type, m.Value = ir.MatchExact, *h.Value
					if typ == v1alpha1.HeaderMatchRegularExpression {
						m.Type = ir.MatchRegex
						if msg := validRegex(*h.Value); msg != "" {
							return nil, hw + ".value: " + msg
						}
					}
				default:
					return nil, fmt.Sprintf("%s.type %q is not one of Exact, RegularExpression, Distinct", hw, typ)
				}
				rule.Headers = append(rule.Headers, m)
			}
			if p := sel.Path; p != nil {
				pw := sw + ".path"
				if rule.Path != nil {
					return nil, pw + ": another selector of the rule has a path; a rule has at most one"
				}
				typ := v1alpha1.PathMatchPrefix
				if p.Type != nil {
					typ = *p.Type
				}
				switch typ {
				case v1alpha1.PathMatchExact:
					rule.Path = &ir.RateLimitPath{Type: ir.MatchExact, Value: p.Value}
				case v1alpha1.PathMatchPrefix:
					rule.Path = &ir.RateLimitPath{Type: ir.MatchPrefix, Value: p.Value}
				case v1alpha1.PathMatchRegularExpression:
					if msg := validRegex(p.Value); msg != "" {
						return nil, pw + ".value: " + msg
					}
					rule.Path = &ir.RateLimitPath{Type: ir.MatchRegex, Value: p.Value}
				default:
					return nil, fmt.Sprintf("%s.type %q is not one of Exact, PathPrefix, RegularExpression", pw, typ)
				}
				if typ != v1alpha1.PathMatchRegularExpression && !strings.HasPrefix(p.Value, "/") {
					return nil, pw + ".value must start with /"
				}
			}
			if sc := sel.SourceCIDR; sc != nil {
				cw := sw + ".sourceCIDR"
				pfx, err := netip.ParsePrefix(sc.Value)
				if err != nil || pfx.Masked() != pfx {
					return nil, fmt.Sprintf("%s.value %q is not a CIDR such as 10.0.0.0/8 (host bits zero)", cw, sc.Value)
				}
				distinct := false
				if sc.Type != nil {
					switch *sc.Type {
					case v1alpha1.SourceMatchExact:
					case v1alpha1.SourceMatchDistinct:
						distinct = true
					default:
						return nil, fmt.Sprintf("%s.type %q is not one of Exact, Distinct", cw, *sc.Type)
					}
				}
				rule.SourceIPs = append(rule.SourceIPs, ir.RateLimitSourceIP{CIDR: pfx.String(), Distinct: distinct})
			}
			for j, c := range sel.JWTClaims {
				claim, msg := newRateLimitClaim(fmt.Sprintf("%s.jwtClaims[%d]", sw, j), c)
				if msg != "" {
					return nil, msg
				}
				rule.JWTClaims = append(rule.JWTClaims, claim)
			}
		}
		out.Rules = append(out.Rules, rule)
	}
	return out, ""
}

func newRateLimitClaim(where string, c v1alpha1.JWTClaimMatch) (ir.RateLimitJWTClaim, string) {
	out := ir.RateLimitJWTClaim{Claim: c.Name}
	if c.Name == "" || strings.Contains("."+c.Name+".", "..") {
		return out, fmt.Sprintf("%s.name %q is empty or has an empty path element", where, c.Name)
	}
	if c.Provider != nil {
		if msg := validName(*c.Provider); msg != "" {
			return out, where + ".provider " + msg
		}
		out.Provider = *c.Provider
	}
	typ := v1alpha1.JWTClaimMatchExact
	if c.Type != nil {
		typ = *c.Type
	}
	switch typ {
	case v1alpha1.JWTClaimMatchExact:
		if c.Value == nil || *c.Value == "" {
			return out, where + ".value is required for type Exact"
		}
		out.Value = *c.Value
	case v1alpha1.JWTClaimMatchDistinct:
		if c.Value != nil {
			return out, where + ": type Distinct takes no value"
		}
		out.Distinct = true
	default:
		return out, fmt.Sprintf("%s.type %q is not one of Exact, Distinct", where, typ)
	}
	return out, ""
}

// routeGlobalLimit is g as it applies to a route with security sec: the
// JWT claims of its rules name the provider of sec that verifies the
// token (the only one when a claim names none). A rule whose claims the
// route's security cannot give (no jwt, no such provider, several
// providers and none named) is off on the route; why is in the returned
// notes. The result is nil when no rule is left.
func routeGlobalLimit(g *ir.GlobalRateLimit, sec *ir.Security, route string) (*ir.GlobalRateLimit, []string) {
	out := *g
	out.Rules = nil
	var notes []string
	for i, rule := range g.Rules {
		if len(rule.JWTClaims) == 0 {
			out.Rules = append(out.Rules, rule)
			continue
		}
		why := ""
		claims := make([]ir.RateLimitJWTClaim, len(rule.JWTClaims))
		for j, c := range rule.JWTClaims {
			switch {
			case sec == nil || sec.JWT == nil:
				why = "it has no SecurityPolicy with jwt"
			case c.Provider == "" && len(sec.JWT.Providers) != 1:
				why = fmt.Sprintf("its SecurityPolicy %s has %d jwt providers; name one in provider", sec.Name, len(sec.JWT.Providers))
			case c.Provider == "":
				c.Provider = sec.JWT.Providers[0].Name
			default:
				found := false
				for _, p := range sec.JWT.Providers {
					found = found || p.Name == c.Provider
				}
				if !found {
					why = fmt.Sprintf("its SecurityPolicy %s has no jwt provider %q", sec.Name, c.Provider)
				}
			}
			if why != "" {
				break
			}
			claims[j] = c
		}
		if why != "" {
			notes = append(notes, fmt.Sprintf("rateLimit.global.rules[%d] is off on %s, which cannot give its JWT claims: %s", i, route, why))
			continue
		}
		rule.JWTClaims = claims
		out.Rules = append(out.Rules, rule)
	}
	if len(out.Rules) == 0 {
		return nil, notes
	}
	return &out, notes
}

// rateLimitService resolves a Gateway's rate limit annotations. A missing
// Backend or a bad failure mode leaves global limits off on the Gateway
// and says so (PartiallyInvalid, the rest serves).
func (b *builder) rateLimitService(g *gateway) *ir.RateLimitService {
	name, ok := g.gw.Annotations[AnnotationRateLimitGRPC]
	if !ok {
		return nil
	}
	deny := false
	switch mode := g.gw.Annotations[AnnotationRateLimitFailureMode]; mode {
	case "", FailureModeAllow:
	case FailureModeDeny:
		deny = true
	default:
		g.obj.set(CondPartiallyInvalid, metav1.ConditionTrue, string(gwv1.GatewayReasonInvalid),
			g.obj.msg("annotation %s: %q is not %s or %s; global rate limits are off on this Gateway", AnnotationRateLimitFailureMode, mode, FailureModeAllow, FailureModeDeny))
		return nil
	}
	key := g.gw.Namespace + "/" + name
	be, ok := b.backends[key]
	if !ok {
		g.obj.set(CondPartiallyInvalid, metav1.ConditionTrue, string(gwv1.RouteReasonBackendNotFound),
			g.obj.msg("annotation %s: Backend %s does not exist or is not accepted; global rate limits are off on this Gateway", AnnotationRateLimitGRPC, key))
		return nil
	}
	if _, ok := b.clusters[key]; !ok {
		b.clusters[key] = &ir.Cluster{Name: key, Owner: be.obj.ref(), Endpoints: be.endpoints, DNS: be.dns}
	}
	return &ir.RateLimitService{Cluster: key, FailureModeDeny: deny}
}

// withoutRateLimit names the Gateways route r is attached to that have no
// usable rate limit service: the filter that enforces a route's global
// limit is in the chain of a port only when its Gateway has one, so a
// route keeps its global limit only when every Gateway it is on does.
func (b *builder) withoutRateLimit(r *route) []string {
	var out []string
	seen := map[*gateway]bool{}
	for _, a := range r.attached {
		g := a.l.gw
		if seen[g] {
			continue
		}
		seen[g] = true
		if !b.rateLimitUsable(g) {
			out = append(out, "Gateway "+g.gw.Namespace+"/"+g.gw.Name)
		}
	}
	sort.Strings(out)
	return out
}

// rateLimitUsable reports whether rateLimitService would give g a service.
func (b *builder) rateLimitUsable(g *gateway) bool {
	name, ok := g.gw.Annotations[AnnotationRateLimitGRPC]
	if !ok {
		return false
	}
	switch g.gw.Annotations[AnnotationRateLimitFailureMode] {
	case "", FailureModeAllow, FailureModeDeny:
	default:
		return false
	}
	_, ok = b.backends[g.gw.Namespace+"/"+name]
	return ok
}
