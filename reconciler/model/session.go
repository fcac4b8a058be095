package model

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
)

// sessionPersistence validates an HTTPRoute rule's sessionPersistence
// (Gateway API v1; Cookie is Core, Header and a Permanent cookie
// Extended). The session name defaults to "gitxds-session-" and a hash of
// the route and rule, so two rules never share a cookie. A Permanent cookie
// lives absoluteTimeout (its Max-Age, whole seconds); Envoy cannot bound a
// session cookie or a header session in time, so absoluteTimeout is refused
// there.
func sessionPersistence(sp *gwv1.SessionPersistence, r *route, rule int) (*ir.SessionPersistence, string) {
	typ := gwv1.CookieBasedSessionPersistence
	if sp.Type != nil {
		typ = *sp.Type
	}
	name := ""
	if sp.SessionName != nil {
		name = *sp.SessionName
	} else {
		h := fnv.New32a()
		fmt.Fprintf(h, "%s/%s/%d", r.obj.src.Kind, r.nsName, rule)
		name = fmt.Sprintf("gitxds-session-%08x", h.Sum32())
	}
	var ttl time.Duration
	if sp.AbsoluteTimeout != nil {
		d, msg := gatewayDuration(*sp.AbsoluteTimeout)
		if msg != "" {
			return nil, "absoluteTimeout: " + msg
		}
		if d < time.Second || d%time.Second != 0 {
			return nil, "absoluteTimeout must be whole seconds, at least 1s (the cookie's Max-Age)"
		}
		ttl = d
	}
	switch typ {
	case gwv1.CookieBasedSessionPersistence:
		if !isToken(name) {
			return nil, fmt.Sprintf("sessionName %q is not a cookie name", name)
		}
		lifetime := gwv1.SessionCookieLifetimeType
		if c := sp.CookieConfig; c != nil && c.LifetimeType != nil {
			lifetime = *c.LifetimeType
		}
		switch lifetime {
		case gwv1.PermanentCookieLifetimeType:
			if ttl == 0 {
				return nil, "cookieConfig.lifetimeType Permanent needs absoluteTimeout (the cookie's Max-Age)"
			}
		case gwv1.SessionCookieLifetimeType:
			if ttl != 0 {
				return nil, "absoluteTimeout with a Session cookie is not supported: Envoy cannot end a session cookie's session; use cookieConfig.lifetimeType Permanent"
			}
		default:
			return nil, fmt.Sprintf("cookieConfig.lifetimeType %q is not Permanent or Session", lifetime)
		}
		return &ir.SessionPersistence{Cookie: &ir.SessionCookie{Name: name, Path: "/", TTL: ttl}}, ""
	case gwv1.HeaderBasedSessionPersistence:
		if sp.CookieConfig != nil {
			return nil, "cookieConfig is only for type Cookie"
		}
		if ttl != 0 {
			return nil, "absoluteTimeout with type Header is not supported: Envoy cannot end a header session"
		}
		name = strings.ToLower(name)
		if msg := validHeaderName(name); msg != "" {
			return nil, "sessionName: " + msg
		}
		return &ir.SessionPersistence{Header: name}, ""
	}
	return nil, fmt.Sprintf("type %q is not Cookie or Header", typ)
}
