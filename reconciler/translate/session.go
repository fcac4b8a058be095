package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	statefulv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/stateful_session/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	cookiev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/stateful_session/cookie/v3"
	headerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/stateful_session/header/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/type/http/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"gitxds.dev/gitxds/reconciler/ir"
)

const (
	filterStatefulSession = "envoy.filters.http.stateful_session"
	sessionStateCookie    = "envoy.http.stateful_session.cookie"
	sessionStateHeader    = "envoy.http.stateful_session.header"
)

// usesSessions reports whether a route of the chain has session
// persistence: only such chains get the stateful session filter.
func usesSessions(vhs *vhostSet) bool {
	for _, h := range vhs.hostnames() {
		for i := range vhs.routes[h] {
			if vhs.routes[h][i].Session != nil {
				return true
			}
		}
	}
	return false
}

// statefulSessionFilter is the chain's stateful session filter, without a
// session state: Envoy then creates no session for a request
// (StatefulSessionConfig's constructor in
// source/extensions/filters/http/stateful_session/stateful_session.cc
// uses an EmptySessionStateFactory), so it does nothing until a route's
// typed_per_filter_config gives it one (PerRouteStatefulSession).
func statefulSessionFilter() (slottedFilter, error) {
	cfg, err := pack(&statefulv3.StatefulSession{})
	if err != nil {
		return slottedFilter{}, err
	}
	return slottedFilter{slot: slotStatefulSession, filter: &hcmv3.HttpFilter{Name: filterStatefulSession, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg}}}, nil
}

// statefulSessionPerRoute is a route's session state: a cookie (name,
// path, and TTL in whole seconds: Envoy reads only ttl().seconds(),
// CookieBasedSessionStateFactory in
// source/extensions/http/stateful_session/cookie/cookie.cc) or a header.
// Not strict: when the recorded endpoint is gone, the request is balanced
// as usual, as Gateway API asks.
func statefulSessionPerRoute(s *ir.SessionPersistence) (*anypb.Any, error) {
	var state *corev3.TypedExtensionConfig
	switch {
	case s.Cookie != nil:
		c := &httpv3.Cookie{Name: s.Cookie.Name, Path: s.Cookie.Path}
		if s.Cookie.TTL > 0 {
			c.Ttl = duration(s.Cookie.TTL)
		}
		cfg, err := pack(&cookiev3.CookieBasedSessionState{Cookie: c})
		if err != nil {
			return nil, err
		}
		state = &corev3.TypedExtensionConfig{Name: sessionStateCookie, TypedConfig: cfg}
	default:
		cfg, err := pack(&headerv3.HeaderBasedSessionState{Name: s.Header})
		if err != nil {
			return nil, err
		}
		state = &corev3.TypedExtensionConfig{Name: sessionStateHeader, TypedConfig: cfg}
	}
	return pack(&statefulv3.StatefulSessionPerRoute{Override: &statefulv3.StatefulSessionPerRoute_StatefulSession{
		StatefulSession: &statefulv3.StatefulSession{SessionState: state},
	}})
}
