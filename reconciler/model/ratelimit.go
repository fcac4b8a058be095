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
		if len(r.ClientSelectors) > 1 {
			return nil, where + ".clientSelectors: at most one selector (put every condition in it; a request must match them all)"
		}
		for _, sel := range r.ClientSelectors {
			if len(sel.Headers) == 0 && sel.Path == nil && sel.SourceCIDR == nil {
				return nil, where + ".clientSelectors[0] is empty"
			}
			for j, h := range sel.Headers {
				hw := fmt.Sprintf("%s.clientSelectors[0].headers[%d]", where, j)
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
				pw := where + ".clientSelectors[0].path"
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
				sw := where + ".clientSelectors[0].sourceCIDR"
				pfx, err := netip.ParsePrefix(sc.Value)
				if err != nil || pfx.Masked() != pfx {
					return nil, fmt.Sprintf("%s.value %q is not a CIDR such as 10.0.0.0/8 (host bits zero)", sw, sc.Value)
				}
				distinct := false
				if sc.Type != nil {
					switch *sc.Type {
					case v1alpha1.SourceMatchExact:
					case v1alpha1.SourceMatchDistinct:
						distinct = true
					default:
						return nil, fmt.Sprintf("%s.type %q is not one of Exact, Distinct", sw, *sc.Type)
					}
				}
				rule.SourceIPs = append(rule.SourceIPs, ir.RateLimitSourceIP{CIDR: pfx.String(), Distinct: distinct})
			}
		}
		out.Rules = append(out.Rules, rule)
	}
	return out, ""
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
