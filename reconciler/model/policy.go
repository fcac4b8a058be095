package model

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// policyIndex holds the winning BackendTrafficPolicy per target.
type policyIndex struct {
	// byTarget maps "Kind ns/name" or "Kind ns/name#section" to the policy.
	byTarget map[string]*policy
}

// policy is a validated BackendTrafficPolicy, translated to IR pieces.
type policy struct {
	obj *object
	// Route-level settings.
	retry     *ir.Retry
	request   time.Duration
	rateLimit *ir.RateLimit
	global    *ir.GlobalRateLimit
	// notes are added to an accepted policy's message: where a setting
	// does not apply.
	notes []string
	// Backend-level settings.
	cluster clusterSettings
	// grpcNote says what gRPC nodes get differently; added to Accepted.
	grpcNote string
}

type clusterSettings struct {
	connect, idle time.Duration
	cb            *ir.CircuitBreaker
	hc            *ir.HealthCheck
	od            *ir.OutlierDetection
	lb            *ir.LoadBalancer
}

func (c clusterSettings) empty() bool {
	return c.connect == 0 && c.idle == 0 && c.cb == nil && c.hc == nil && c.od == nil && c.lb == nil
}

// policies validates the BackendTrafficPolicies and applies them: to IR
// routes (retry, request timeout, rate limit), where a policy on a rule
// (targetRef sectionName) beats one on the route, which beats one on the
// Backend; and to clusters (timeouts, circuit breaker, health checks,
// outlier detection), from policies on Backends. What a route sets itself
// (rules[].timeouts, rules[].retry) beats every policy. A policy's targets
// have no namespace field: it reaches only objects of its own namespace.
//
// Sets on policies: Accepted (Accepted, Invalid, TargetNotFound, Conflicted).
func (b *builder) policies() {
	idx := &policyIndex{byTarget: map[string]*policy{}}
	b.pols = idx
	var pols []*policy
	for _, o := range b.live() {
		t, ok := o.typed.(*v1alpha1.BackendTrafficPolicy)
		if !ok {
			continue
		}
		p, msg := newPolicy(o, t)
		if msg != "" {
			o.reject(string(gwv1.PolicyReasonInvalid), "%s", msg)
			continue
		}
		pols = append(pols, p)
	}
	sort.Slice(pols, func(i, j int) bool { return pols[i].obj.src.Name < pols[j].obj.src.Name })
	routes := map[string]*route{}
	for _, r := range b.rts {
		routes[r.obj.src.Kind+" "+r.key()] = r
	}
	for _, p := range pols {
		t := p.obj.typed.(*v1alpha1.BackendTrafficPolicy)
		ns := p.obj.src.Namespace
		var missing, conflicts []string
		for i, ref := range t.Spec.TargetRefs {
			key, msg := b.policyTarget(ns, ref, routes)
			if msg != "" {
				missing = append(missing, fmt.Sprintf("targetRefs[%d]: %s", i, msg))
				continue
			}
			if (ref.Kind != v1alpha1.KindBackend) && !p.cluster.empty() {
				p.obj.reject(string(gwv1.PolicyReasonInvalid), "targetRefs[%d]: timeout.tcp, timeout.http.connectionIdleTimeout, circuitBreaker, healthCheck, outlierDetection and loadBalancer apply to Backends; put them in a policy that targets the Backend", i)
				break
			}
			if w, ok := idx.byTarget[key]; ok && w != p {
				conflicts = append(conflicts, fmt.Sprintf("targetRefs[%d]: %s is already targeted by BackendTrafficPolicy %s, which wins (first by name)", i, key, w.obj.src.Name))
				continue
			}
			idx.byTarget[key] = p
		}
		if p.obj.dropped {
			for k, w := range idx.byTarget {
				if w == p {
					delete(idx.byTarget, k)
				}
			}
			continue
		}
		switch {
		case len(conflicts) > 0:
			p.obj.set(CondAccepted, metav1.ConditionFalse, string(gwv1.PolicyReasonConflicted), p.obj.msg("%s", strings.Join(append(conflicts, missing...), "; ")))
		case len(missing) > 0:
			p.obj.set(CondAccepted, metav1.ConditionFalse, string(gwv1.PolicyReasonTargetNotFound), p.obj.msg("%s", strings.Join(missing, "; ")))
		default:
			msg := "accepted"
			if p.grpcNote != "" {
				msg += "; " + p.grpcNote
			}
			p.obj.set(CondAccepted, metav1.ConditionTrue, string(gwv1.PolicyReasonAccepted), msg)
		}
	}
	b.applyPolicies()
	for _, p := range pols {
		if c := p.obj.get(CondAccepted); c != nil && c.Status == metav1.ConditionTrue && len(p.notes) > 0 {
			sort.Strings(p.notes)
			c.Message += "; " + strings.Join(dedupStrings(p.notes), "; ")
		}
	}
}

func dedupStrings(in []string) []string {
	var out []string
	for i, s := range in {
		if i == 0 || s != in[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// policyTarget resolves a targetRef to its index key, or says why not.
func (b *builder) policyTarget(ns string, ref v1alpha1.PolicyTargetReference, routes map[string]*route) (string, string) {
	switch {
	case ref.Group == gatewayGroup && (ref.Kind == "HTTPRoute" || ref.Kind == "GRPCRoute"):
		r, ok := routes[ref.Kind+" "+ns+"/"+ref.Name]
		if !ok {
			var names []string
			for key := range routes {
				if n, ok := strings.CutPrefix(key, ref.Kind+" "+ns+"/"); ok {
					names = append(names, n)
				}
			}
			return "", fmt.Sprintf("%s %s/%s does not exist or is not accepted%s", ref.Kind, ns, ref.Name,
				validList(names, fmt.Sprintf("namespace %s has no accepted %s", ns, ref.Kind)))
		}
		key := ref.Kind + " " + ns + "/" + ref.Name
		if ref.SectionName != nil {
			found := false
			for _, n := range r.ruleNames {
				found = found || n == *ref.SectionName
			}
			if !found {
				var names []string
				for _, n := range r.ruleNames {
					if n != "" {
						names = append(names, n)
					}
				}
				return "", fmt.Sprintf("%s %s/%s has no rule named %q%s", ref.Kind, ns, ref.Name, *ref.SectionName,
					validList(names, "its rules have no names"))
			}
			key += "#" + *ref.SectionName
		}
		return key, ""
	case ref.Group == v1alpha1.Group && ref.Kind == v1alpha1.KindBackend:
		if ref.SectionName != nil {
			return "", "sectionName is not supported on a Backend target"
		}
		if _, ok := b.backends[ns+"/"+ref.Name]; !ok {
			return "", b.noBackend(ns, ref.Name)
		}
		return "Backend " + ns + "/" + ref.Name, ""
	default:
		return "", fmt.Sprintf("%s/%s is not a supported target; target an HTTPRoute, GRPCRoute (group %s) or Backend (group %s)", ref.Group, ref.Kind, gatewayGroup, v1alpha1.Group)
	}
}

// applyPolicies sets the winning policies on IR routes and clusters.
func (b *builder) applyPolicies() {
	idx := b.pols
	if len(idx.byTarget) == 0 {
		return // no policy applies anywhere
	}
	for _, r := range b.rts {
		rkey := r.obj.src.Kind + " " + r.key()
		for _, m := range r.matches {
			p := idx.byTarget[rkey+"#"+r.ruleNames[m.rule]]
			if r.ruleNames[m.rule] == "" {
				p = nil
			}
			if p == nil {
				p = idx.byTarget[rkey]
			}
			if p == nil {
				p = idx.backendPolicy(r.ruleBackends[m.rule])
			}
			if p == nil {
				continue
			}
			if m.ir.Retry == nil && p.retry != nil {
				c := *p.retry
				c.RetryOn = append([]string(nil), p.retry.RetryOn...)
				c.StatusCodes = append([]uint32(nil), p.retry.StatusCodes...)
				m.ir.Retry = &c
			}
			if m.ir.Timeouts.Request == 0 && !m.ir.Timeouts.NoRequestTimeout {
				m.ir.Timeouts.Request = p.request
			}
			if p.rateLimit != nil {
				rl := *p.rateLimit
				m.ir.RateLimit = &rl
			}
			if p.global != nil {
				if r.grpc {
					p.notes = append(p.notes, fmt.Sprintf("the global rate limit "+envoyOnlyNote, "GRPCRoute "+r.key()))
				}
				if missing := b.withoutRateLimit(r); len(missing) > 0 {
					p.notes = append(p.notes, fmt.Sprintf("%s %s is attached to %s without a rate limit service (annotation %s): its global limit is off", r.obj.src.Kind, r.key(), strings.Join(missing, ", "), AnnotationRateLimitGRPC))
				} else {
					g, notes := routeGlobalLimit(p.global, m.ir.Security, r.obj.src.Kind+" "+r.key())
					p.notes = append(p.notes, notes...)
					m.ir.GlobalRateLimit = g
				}
			}
		}
	}
	for _, c := range b.clusters {
		if c.Service != nil {
			continue // policies target Backends, not Services
		}
		key := "Backend " + c.Owner.Namespace + "/" + c.Owner.Name
		p := idx.byTarget[key]
		if p == nil {
			continue
		}
		s := p.cluster
		c.ConnectTimeout, c.IdleTimeout = s.connect, s.idle
		if s.cb != nil {
			v := *s.cb
			c.CircuitBreaker = &v
		}
		if s.hc != nil {
			v := *s.hc
			v.ExpectedStatuses = append([]uint32(nil), s.hc.ExpectedStatuses...)
			c.HealthCheck = &v
		}
		if s.od != nil {
			v := *s.od
			c.OutlierDetection = &v
		}
		if s.lb != nil {
			v := *s.lb
			if s.lb.Hash != nil {
				h := *s.lb.Hash
				v.Hash = &h
			}
			c.LoadBalancer = &v
		}
	}
	b.routeHashes()
}

// backendPolicy is the policy every Backend of a rule shares, or nil.
func (idx *policyIndex) backendPolicy(keys []string) *policy {
	var p *policy
	for i, k := range keys {
		q := idx.byTarget["Backend "+k]
		if q == nil || (i > 0 && q != p) {
			return nil
		}
		p = q
	}
	return p
}

func dur(d *metav1.Duration, def time.Duration) (time.Duration, bool) {
	if d == nil {
		return def, true
	}
	return d.Duration, d.Duration > 0
}

// retryTriggers are the retryOn triggers gitxds passes on (Envoy Gateway's).
var retryTriggers = map[string]bool{
	"5xx": true, "gateway-error": true, "reset": true, "connect-failure": true,
	"retriable-4xx": true, "refused-stream": true, "retriable-status-codes": true,
	"cancelled": true, "deadline-exceeded": true, "internal": true,
	"resource-exhausted": true, "unavailable": true,
}

// newPolicy validates a policy's settings; a message is returned when the
// policy is invalid.
func newPolicy(o *object, t *v1alpha1.BackendTrafficPolicy) (*policy, string) {
	s := t.Spec
	p := &policy{obj: o}
	if len(s.TargetRefs) == 0 {
		return nil, "spec.targetRefs is empty"
	}
	if r := s.Retry; r != nil {
		rt := &ir.Retry{Attempts: 2}
		if r.NumRetries != nil {
			if *r.NumRetries < 0 || *r.NumRetries > 100 {
				return nil, "retry.numRetries must be 0..100"
			}
			rt.Attempts = uint32(*r.NumRetries)
		}
		if r.RetryOn == nil {
			rt.RetryOn = []string{"connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"}
			rt.StatusCodes = []uint32{503}
		} else {
			for _, tr := range r.RetryOn.Triggers {
				if !retryTriggers[tr] {
					return nil, fmt.Sprintf("retry.retryOn.triggers: %q is not one of %s", tr, strings.Join(sortedKeys(retryTriggers), ", "))
				}
				rt.RetryOn = append(rt.RetryOn, tr)
			}
			for _, c := range r.RetryOn.HTTPStatusCodes {
				if c < 100 || c > 599 {
					return nil, fmt.Sprintf("retry.retryOn.httpStatusCodes: %d is not an HTTP status code", c)
				}
				rt.StatusCodes = append(rt.StatusCodes, uint32(c))
			}
			if len(rt.StatusCodes) > 0 && !hasTrigger(rt.RetryOn, "retriable-status-codes") {
				rt.RetryOn = append(rt.RetryOn, "retriable-status-codes")
			}
			if len(rt.RetryOn) == 0 {
				return nil, "retry.retryOn needs triggers or httpStatusCodes"
			}
		}
		if pr := r.PerRetry; pr != nil {
			var ok bool
			if rt.PerTryTimeout, ok = dur(pr.Timeout, 0); !ok {
				return nil, "retry.perRetry.timeout must be positive"
			}
			if bo := pr.BackOff; bo != nil {
				if rt.BackoffBase, ok = dur(bo.BaseInterval, 0); !ok {
					return nil, "retry.perRetry.backOff.baseInterval must be positive"
				}
				if rt.BackoffMax, ok = dur(bo.MaxInterval, 0); !ok {
					return nil, "retry.perRetry.backOff.maxInterval must be positive"
				}
				if rt.BackoffMax > 0 && rt.BackoffMax < rt.BackoffBase {
					return nil, "retry.perRetry.backOff.maxInterval must not be shorter than baseInterval"
				}
			}
		}
		p.retry = rt
	}
	if to := s.Timeout; to != nil {
		var ok bool
		if h := to.HTTP; h != nil {
			if p.request, ok = dur(h.RequestTimeout, 0); !ok {
				return nil, "timeout.http.requestTimeout must be positive"
			}
			if p.cluster.idle, ok = dur(h.ConnectionIdleTimeout, 0); !ok {
				return nil, "timeout.http.connectionIdleTimeout must be positive"
			}
		}
		if tcp := to.TCP; tcp != nil {
			if p.cluster.connect, ok = dur(tcp.ConnectTimeout, 0); !ok {
				return nil, "timeout.tcp.connectTimeout must be positive"
			}
		}
	}
	if cb := s.CircuitBreaker; cb != nil {
		out := &ir.CircuitBreaker{}
		for _, f := range []struct {
			name string
			v    *int64
			dst  *uint32
		}{
			{"maxConnections", cb.MaxConnections, &out.MaxConnections},
			{"maxPendingRequests", cb.MaxPendingRequests, &out.MaxPendingRequests},
			{"maxParallelRequests", cb.MaxParallelRequests, &out.MaxParallelRequests},
			{"maxParallelRetries", cb.MaxParallelRetries, &out.MaxParallelRetries},
		} {
			if f.v == nil {
				continue
			}
			if *f.v < 1 || *f.v > math.MaxUint32 {
				return nil, fmt.Sprintf("circuitBreaker.%s must be 1..%d", f.name, uint32(math.MaxUint32))
			}
			*f.dst = uint32(*f.v)
		}
		p.cluster.cb = out
	}
	if lb := s.LoadBalancer; lb != nil {
		var msg string
		if p.cluster.lb, p.grpcNote, msg = loadBalancer(lb); msg != "" {
			return nil, msg
		}
	}
	if rl := s.RateLimit; rl != nil {
		switch {
		case rl.Type == v1alpha1.LocalRateLimit && rl.Local != nil && rl.Global == nil:
			if len(rl.Local.Rules) != 1 {
				return nil, "rateLimit.local.rules must have exactly one rule"
			}
			lim := rl.Local.Rules[0].Limit
			per := map[v1alpha1.RateLimitUnit]time.Duration{
				v1alpha1.RateLimitSecond: time.Second, v1alpha1.RateLimitMinute: time.Minute,
				v1alpha1.RateLimitHour: time.Hour, v1alpha1.RateLimitDay: 24 * time.Hour,
			}[lim.Unit]
			if per == 0 {
				return nil, fmt.Sprintf("rateLimit.local.rules[0].limit.unit %q is not one of Second, Minute, Hour, Day", lim.Unit)
			}
			if lim.Requests == 0 {
				return nil, "rateLimit.local.rules[0].limit.requests must be at least 1"
			}
			p.rateLimit = &ir.RateLimit{Requests: lim.Requests, Per: per}
		case rl.Type == v1alpha1.GlobalRateLimit && rl.Global != nil && rl.Local == nil:
			g, msg := newGlobalRateLimit(o, rl.Global)
			if msg != "" {
				return nil, msg
			}
			p.global = g
		default:
			return nil, "rateLimit: set type Local with rateLimit.local, or type Global with rateLimit.global"
		}
	}
	if hc := s.HealthCheck; hc != nil {
		a := hc.Active
		if a == nil {
			return nil, "healthCheck: only active health checks are supported; set healthCheck.active"
		}
		if a.Type != v1alpha1.HTTPHealthCheck || a.HTTP == nil {
			return nil, "healthCheck.active: only type HTTP with active.http is supported"
		}
		if msg := validPath(a.HTTP.Path); msg != "" {
			return nil, "healthCheck.active.http.path " + msg
		}
		out := &ir.HealthCheck{Path: a.HTTP.Path, UnhealthyThreshold: 3, HealthyThreshold: 1, ExpectedStatuses: []uint32{200}}
		var ok bool
		if out.Interval, ok = dur(a.Interval, 3*time.Second); !ok {
			return nil, "healthCheck.active.interval must be positive"
		}
		if out.Timeout, ok = dur(a.Timeout, time.Second); !ok {
			return nil, "healthCheck.active.timeout must be positive"
		}
		if a.UnhealthyThreshold != nil {
			out.UnhealthyThreshold = *a.UnhealthyThreshold
		}
		if a.HealthyThreshold != nil {
			out.HealthyThreshold = *a.HealthyThreshold
		}
		if out.UnhealthyThreshold == 0 || out.HealthyThreshold == 0 {
			return nil, "healthCheck.active thresholds must be at least 1"
		}
		if len(a.HTTP.ExpectedStatuses) > 0 {
			out.ExpectedStatuses = nil
			for _, c := range a.HTTP.ExpectedStatuses {
				if c < 100 || c > 599 {
					return nil, fmt.Sprintf("healthCheck.active.http.expectedStatuses: %d is not an HTTP status code", c)
				}
				out.ExpectedStatuses = append(out.ExpectedStatuses, uint32(c))
			}
		}
		p.cluster.hc = out
	}
	if od := s.OutlierDetection; od != nil {
		out := &ir.OutlierDetection{Consecutive5xx: 5, MaxEjectionPercent: 10}
		var ok bool
		if od.Consecutive5xxErrors != nil {
			out.Consecutive5xx = *od.Consecutive5xxErrors
		}
		if out.Interval, ok = dur(od.Interval, 3*time.Second); !ok {
			return nil, "outlierDetection.interval must be positive"
		}
		if out.BaseEjectionTime, ok = dur(od.BaseEjectionTime, 30*time.Second); !ok {
			return nil, "outlierDetection.baseEjectionTime must be positive"
		}
		if od.MaxEjectionPercent != nil {
			if *od.MaxEjectionPercent < 0 || *od.MaxEjectionPercent > 100 {
				return nil, "outlierDetection.maxEjectionPercent must be 0..100"
			}
			out.MaxEjectionPercent = uint32(*od.MaxEjectionPercent)
		}
		p.cluster.od = out
	}
	return p, ""
}

func hasTrigger(on []string, trigger string) bool {
	for _, t := range on {
		if t == trigger {
			return true
		}
	}
	return false
}
