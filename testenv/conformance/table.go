package conformance

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// mapped holds, per conformance test (ShortName), the status checks its Go
// body makes, restated against gitxds's status. Each entry cites the
// suite's helper it restates (see checks.go). A test not listed here is
// not run; the report says so.
var mapped = map[string][]check{
	// tests/gateway-invalid-route-kind.go
	"GatewayInvalidRouteKind": {
		listeners(nn{infraNS, "gateway-only-invalid-route-kind"}, []gwv1.ListenerStatus{{
			Name: "http", SupportedKinds: []gwv1.RouteGroupKind{},
			Conditions: conds(cond(lcResolvedRefs, "False", string(gwv1.ListenerReasonInvalidRouteKinds))),
		}}),
		listeners(nn{infraNS, "gateway-supported-and-invalid-route-kind"}, []gwv1.ListenerStatus{{
			Name: "http", SupportedKinds: []gwv1.RouteGroupKind{httpRouteKind},
			Conditions: conds(cond(lcResolvedRefs, "False", string(gwv1.ListenerReasonInvalidRouteKinds))),
		}}),
	},
	// tests/gateway-invalid-tls-configuration.go
	"GatewayInvalidTLSConfiguration": invalidTLS(
		"gateway-certificate-nonexistent-secret", "gateway-certificate-unsupported-group",
		"gateway-certificate-unsupported-kind", "gateway-certificate-malformed-secret"),
	// tests/gateway-invalid-listeners-unsupported-protocol.go
	"GatewayListenerUnsupportedProtocol": {
		latestConditions(nn{infraNS, "gateway-only-unsupported-protocols"}),
		gatewayCond(nn{infraNS, "gateway-only-unsupported-protocols"}, cond(gcAccepted, "False", string(gwv1.GatewayReasonListenersNotValid))),
		listeners(nn{infraNS, "gateway-only-unsupported-protocols"}, []gwv1.ListenerStatus{{
			Name: "invalid", SupportedKinds: []gwv1.RouteGroupKind{},
			Conditions: conds(cond(lcAccepted, "False", string(gwv1.ListenerReasonUnsupportedProtocol))),
		}}),
		latestConditions(nn{infraNS, "gateway-supported-and-unsupported-protocols"}),
		gatewayCond(nn{infraNS, "gateway-supported-and-unsupported-protocols"}, cond(gcAccepted, "True", string(gwv1.GatewayReasonListenersNotValid))),
		listeners(nn{infraNS, "gateway-supported-and-unsupported-protocols"}, []gwv1.ListenerStatus{{
			Name: "http", SupportedKinds: []gwv1.RouteGroupKind{httpRouteKind},
			Conditions: conds(cond(lcAccepted, "True", string(gwv1.ListenerReasonAccepted))),
		}, {
			Name: "invalid", SupportedKinds: []gwv1.RouteGroupKind{},
			Conditions: conds(cond(lcAccepted, "False", string(gwv1.ListenerReasonUnsupportedProtocol))),
		}}),
	},
	// tests/gateway-secret-*.go: a certificateRef to a Secret of another
	// namespace, with or without a ReferenceGrant that allows it.
	"GatewaySecretInvalidReferenceGrant": secretRef("gateway-secret-invalid-reference-grant",
		cond(lcResolvedRefs, "False", string(gwv1.ListenerReasonRefNotPermitted))),
	"GatewaySecretMissingReferenceGrant": secretRef("gateway-secret-missing-reference-grant",
		cond(lcResolvedRefs, "False", string(gwv1.ListenerReasonRefNotPermitted))),
	"GatewaySecretReferenceGrantAllInNamespace": secretRef("gateway-secret-reference-grant-all-in-namespace",
		cond(lcProgrammed, "True", string(gwv1.ListenerReasonProgrammed)), cond(lcResolvedRefs, "True", anyReason)),
	"GatewaySecretReferenceGrantSpecific": secretRef("gateway-secret-reference-grant-specific",
		cond(lcProgrammed, "True", string(gwv1.ListenerReasonProgrammed)), cond(lcResolvedRefs, "True", anyReason)),
	// tests/gateway-with-attached-routes.go
	"GatewayWithAttachedRoutes": {
		listeners(nn{infraNS, "gateway-with-one-attached-route"}, []gwv1.ListenerStatus{{
			Name: "http", SupportedKinds: []gwv1.RouteGroupKind{httpRouteKind}, AttachedRoutes: 1,
			Conditions: conds(cond(lcAccepted, "True", anyReason), cond(lcResolvedRefs, "True", anyReason)),
		}}),
		listeners(nn{infraNS, "gateway-with-two-attached-routes"}, []gwv1.ListenerStatus{{
			Name: "http", SupportedKinds: []gwv1.RouteGroupKind{httpRouteKind}, AttachedRoutes: 2,
			Conditions: conds(cond(lcAccepted, "True", anyReason), cond(lcResolvedRefs, "True", anyReason)),
		}}),
		routeCond(httpRoute, nn{infraNS, "http-route-not-accepted"}, nn{infraNS, "gateway-with-two-attached-routes"},
			cond(rcAccepted, "False", string(gwv1.RouteReasonNoMatchingListenerHostname))),
		listeners(nn{infraNS, "unresolved-gateway-with-one-attached-unresolved-route"}, []gwv1.ListenerStatus{{
			Name: "tls", SupportedKinds: []gwv1.RouteGroupKind{httpRouteKind}, AttachedRoutes: 1,
			Conditions: conds(cond(lcProgrammed, "False", anyReason), cond(lcResolvedRefs, "False", anyReason)),
		}}),
		routeCond(httpRoute, nn{infraNS, "http-route-4"}, nn{infraNS, "unresolved-gateway-with-one-attached-unresolved-route"},
			cond(rcResolvedRefs, "False", anyReason)),
	},
	// tests/httproute-invalid-backendref-unknown-kind.go (its status
	// checks; the request that expects a 500 is not sent)
	"HTTPRouteInvalidBackendRefUnknownKind": append(
		accepted(httpRoute, nn{infraNS, "same-namespace"}, nn{infraNS, "invalid-backend-ref-unknown-kind"}),
		routeCond(httpRoute, nn{infraNS, "invalid-backend-ref-unknown-kind"}, nn{infraNS, "same-namespace"},
			cond(rcResolvedRefs, "False", string(gwv1.RouteReasonInvalidKind)))),
	// The status part of the traffic tests: each starts with
	// GatewayAndHTTPRoutesMustBeAccepted (or GatewayAndRoutesMustBeAccepted
	// for GRPCRoutes) and most with HTTPRouteMustHaveResolvedRefsConditionsTrue
	// per route; their requests are not sent (Run skips them with why).
	// tests/httproute-cross-namespace.go
	"HTTPRouteCrossNamespace": resolved(nn{infraNS, "backend-namespaces"}, nn{webNS, "cross-namespace"}),
	// tests/httproute-exact-path-matching.go
	"HTTPRouteExactPathMatching": resolved(sameNS, nn{infraNS, "exact-matching"}),
	// tests/httproute-https-listener.go (and kubernetes.GetTLSSecret of
	// the listener's certificate, to trust it: the request part)
	"HTTPRouteHTTPSListener": resolved(nn{infraNS, "same-namespace-with-https-listener"},
		nn{infraNS, "httproute-https-test"}, nn{infraNS, "httproute-https-test-no-hostname"}),
	// tests/httproute-header-matching.go
	"HTTPRouteHeaderMatching": resolved(sameNS, nn{infraNS, "header-matching"}),
	// tests/httproute-hostname-intersection.go: its three subtests.
	"HTTPRouteHostnameIntersection": join(
		resolved(nn{infraNS, "httproute-hostname-intersection"},
			nn{infraNS, "specific-host-matches-listener-specific-host"}, nn{infraNS, "specific-host-matches-listener-wildcard-host"},
			nn{infraNS, "wildcard-host-matches-listener-specific-host"}, nn{infraNS, "wildcard-host-matches-listener-wildcard-host"}),
		accepted(httpRoute, nn{infraNS, "httproute-hostname-intersection"}),
		[]check{routeParents(httpRoute, nn{infraNS, "no-intersecting-hosts"}, nn{infraNS, "httproute-hostname-intersection"},
			cond(rcAccepted, "False", string(gwv1.RouteReasonNoMatchingListenerHostname)))},
		[]check{listeners(nn{infraNS, "httproute-hostname-intersection"}, []gwv1.ListenerStatus{
			acceptedListener("listener-1", 2), acceptedListener("listener-2", 1), acceptedListener("listener-3", 1)})},
		resolved(nn{infraNS, "httproute-hostname-intersection-all"}, nn{infraNS, "httproute-hostname-intersection-all"}),
	),
	// tests/httproute-invalid-cross-namespace-backend-ref.go
	"HTTPRouteInvalidCrossNamespaceBackendRef": unresolved(nn{infraNS, "invalid-cross-namespace-backend-ref"}, gwv1.RouteReasonRefNotPermitted),
	// tests/httproute-invalid-nonexistent-backendref.go
	"HTTPRouteInvalidNonExistentBackendRef": unresolved(nn{infraNS, "invalid-nonexistent-backend-ref"}, gwv1.RouteReasonBackendNotFound),
	// tests/httproute-invalid-reference-grant.go
	"HTTPRouteInvalidReferenceGrant": unresolved(nn{infraNS, "reference-grant"}, gwv1.RouteReasonRefNotPermitted),
	// tests/httproute-partially-invalid-via-invalid-reference-grant.go
	"HTTPRoutePartiallyInvalidViaInvalidReferenceGrant": unresolved(nn{infraNS, "invalid-reference-grant"}, gwv1.RouteReasonRefNotPermitted),
	// tests/httproute-listener-hostname-matching.go (the listener names
	// pick the requests' port only)
	"HTTPRouteListenerHostnameMatching": resolved(nn{infraNS, "httproute-listener-hostname-matching"},
		nn{infraNS, "backend-v1"}, nn{infraNS, "backend-v2"}, nn{infraNS, "backend-v3"}),
	// tests/httproute-matching.go
	"HTTPRouteMatching": resolved(sameNS, nn{infraNS, "matching"}),
	// tests/httproute-matching-across-routes.go
	"HTTPRouteMatchingAcrossRoutes": resolved(sameNS, nn{infraNS, "matching-part1"}, nn{infraNS, "matching-part2"}),
	// tests/httproute-multiple-gateways.go: a route shared by two base
	// Gateways, each with a dedicated route.
	"HTTPRouteMultipleGateways": join(
		accepted(httpRoute, sameNS, nn{infraNS, "multiple-gateways-shared-route"}, nn{infraNS, "same-namespace-dedicated-route"}),
		accepted(httpRoute, nn{infraNS, "all-namespaces"}, nn{infraNS, "multiple-gateways-shared-route"}, nn{infraNS, "all-namespaces-dedicated-route"}),
	),
	// tests/httproute-omitted-backendrefs.go
	"HTTPRouteNoBackendRefs": resolved(sameNS, nn{infraNS, "omitted-backendrefs"}),
	// tests/httproute-path-match-order.go
	"HTTPRoutePathMatchOrder": resolved(sameNS, nn{infraNS, "path-matching-order"}),
	// tests/httproute-redirect-host-and-status.go
	"HTTPRouteRedirectHostAndStatus": resolved(sameNS, nn{infraNS, "redirect-host-and-status"}),
	// tests/httproute-reference-grant.go
	"HTTPRouteReferenceGrant": resolved(sameNS, nn{infraNS, "reference-grant"}),
	// tests/httproute-request-header-modifier.go
	"HTTPRouteRequestHeaderModifier": resolved(sameNS, nn{infraNS, "request-header-modifier"}),
	// tests/httproute-service-types.go
	"HTTPRouteServiceTypes": resolved(sameNS, nn{infraNS, "service-types"}),
	// tests/httproute-simple-same-namespace.go
	"HTTPRouteSimpleSameNamespace": resolved(sameNS, nn{infraNS, "gateway-conformance-infra-test"}),
	// tests/httproute-weight.go
	"HTTPRouteWeight": resolved(sameNS, nn{infraNS, "weighted-backends"}),
	// tests/grpcroute-exact-method-matching.go
	"GRPCExactMethodMatching": accepted(grpcRoute, sameNS, nn{infraNS, "exact-matching"}),
	// tests/grpcroute-header-matching.go
	"GRPCRouteHeaderMatching": accepted(grpcRoute, sameNS, nn{infraNS, "grpc-header-matching"}),
	// tests/grpcroute-listener-hostname-matching.go
	"GRPCRouteListenerHostnameMatching": accepted(grpcRoute, nn{infraNS, "grpcroute-listener-hostname-matching"},
		nn{infraNS, "backend-v1"}, nn{infraNS, "backend-v2"}, nn{infraNS, "backend-v3"}),
	// tests/grpcroute-weight.go
	"GRPCRouteWeight": accepted(grpcRoute, sameNS, nn{infraNS, "weighted-backends"}),
	// Extended tests that check status only.
	// tests/gateway-with-attached-routes.go (GatewayWithAttachedRoutesWithPort8080)
	"GatewayWithAttachedRoutesWithPort8080": {
		listeners(nn{infraNS, "gateway-with-two-listeners-and-one-attached-route"}, []gwv1.ListenerStatus{
			acceptedListener("http-unattached", 0), acceptedListener("http", 1)}),
	},
	// tests/httproute-invalid-parentref-not-matching-listener-port.go
	"HTTPRouteInvalidParentRefNotMatchingListenerPort": {
		resolvedRefsTrue(nn{infraNS, "httproute-listener-not-matching-route-port"}, sameNS),
		routeCond(httpRoute, nn{infraNS, "httproute-listener-not-matching-route-port"}, sameNS, cond(rcAccepted, "False", string(gwv1.RouteReasonNoMatchingParent))),
		noAcceptedParents(nn{infraNS, "httproute-listener-not-matching-route-port"}),
		zeroRoutes(sameNS),
	},
	// tests/httproute-invalid-parentref-section-name-not-matching-port.go
	"HTTPRouteInvalidParentRefSectionNameNotMatchingPort": {
		routeCond(httpRoute, nn{infraNS, "httproute-listener-section-name-not-matching-port"}, nn{infraNS, "gateway-with-one-not-matching-port-and-section-name-route"}, cond(rcAccepted, "False", string(gwv1.RouteReasonNoMatchingParent))),
		noAcceptedParents(nn{infraNS, "httproute-listener-section-name-not-matching-port"}),
		zeroRoutes(nn{infraNS, "gateway-with-one-not-matching-port-and-section-name-route"}),
	},
	// tests/httproute-invalid-cross-namespace-parent-ref.go
	"HTTPRouteInvalidCrossNamespaceParentRef": {
		resolvedRefsTrue(nn{webNS, "invalid-cross-namespace-parent-ref"}, nn{infraNS, "same-namespace"}),
		routeCond(httpRoute, nn{webNS, "invalid-cross-namespace-parent-ref"}, nn{infraNS, "same-namespace"}, cond(rcAccepted, "False", string(gwv1.RouteReasonNotAllowedByListeners))),
		noAcceptedParents(nn{webNS, "invalid-cross-namespace-parent-ref"}),
		zeroRoutes(nn{infraNS, "same-namespace"}),
	},
	// tests/httproute-invalid-parentref-not-matching-section-name.go
	"HTTPRouteInvalidParentRefNotMatchingSectionName": {
		routeCond(httpRoute, nn{infraNS, "httproute-listener-not-matching-section-name"}, nn{infraNS, "same-namespace"}, cond(rcAccepted, "False", string(gwv1.RouteReasonNoMatchingParent))),
		noAcceptedParents(nn{infraNS, "httproute-listener-not-matching-section-name"}),
		zeroRoutes(nn{infraNS, "same-namespace"}),
	},
}

// sameNS is the base Gateway most tests route through.
var sameNS = nn{infraNS, "same-namespace"}

// resolved is GatewayAndHTTPRoutesMustBeAccepted for gw and the routes,
// then HTTPRouteMustHaveResolvedRefsConditionsTrue for each route.
func resolved(gw nn, routes ...nn) []check {
	out := accepted(httpRoute, gw, routes...)
	for _, r := range routes {
		out = append(out, resolvedRefsTrue(r, gw))
	}
	return out
}

// unresolved is the status part of the invalid-backendRef tests:
// GatewayAndHTTPRoutesMustBeAccepted for Gateway same-namespace and the
// route, then HTTPRouteMustHaveCondition ResolvedRefs False with reason.
func unresolved(route nn, reason gwv1.RouteConditionReason) []check {
	return append(accepted(httpRoute, sameNS, route),
		routeCond(httpRoute, route, sameNS, cond(rcResolvedRefs, "False", string(reason))))
}

// acceptedListener is a listener the suite expects with supportedKinds
// HTTPRoute, Accepted and ResolvedRefs True and n attached routes.
func acceptedListener(name string, n int32) gwv1.ListenerStatus {
	return gwv1.ListenerStatus{Name: gwv1.SectionName(name), SupportedKinds: []gwv1.RouteGroupKind{httpRouteKind}, AttachedRoutes: n,
		Conditions: conds(cond(lcAccepted, "True", anyReason), cond(lcResolvedRefs, "True", anyReason))}
}

func join(cs ...[]check) []check {
	var out []check
	for _, c := range cs {
		out = append(out, c...)
	}
	return out
}

// invalidTLS is the check of GatewayInvalidTLSConfiguration for each of
// its Gateways: listener https with supportedKinds HTTPRoute, ResolvedRefs
// False InvalidCertificateRef, no routes.
func invalidTLS(gateways ...string) []check {
	var out []check
	for _, g := range gateways {
		out = append(out, listeners(nn{infraNS, g}, []gwv1.ListenerStatus{{
			Name: "https", SupportedKinds: []gwv1.RouteGroupKind{httpRouteKind},
			Conditions: conds(cond(lcResolvedRefs, "False", string(gwv1.ListenerReasonInvalidCertificateRef))),
		}}))
	}
	return out
}

// secretRef is the check of the GatewaySecret* tests: Gateway gw's
// listener https with supportedKinds HTTPRoute, no route and conditions c.
func secretRef(gw string, c ...metav1.Condition) []check {
	return []check{listeners(nn{infraNS, gw}, []gwv1.ListenerStatus{{
		Name: "https", SupportedKinds: []gwv1.RouteGroupKind{httpRouteKind}, Conditions: c,
	}})}
}

const (
	httpRoute      = "HTTPRoute"
	grpcRoute      = "GRPCRoute"
	lcAccepted     = string(gwv1.ListenerConditionAccepted)
	lcResolvedRefs = string(gwv1.ListenerConditionResolvedRefs)
	lcProgrammed   = string(gwv1.ListenerConditionProgrammed)
	rcResolvedRefs = string(gwv1.RouteConditionResolvedRefs)
	// anyReason matches any reason, as the suite's empty Reason does.
	anyReason    = ""
	gcAccepted   = string(gwv1.GatewayConditionAccepted)
	gcProgrammed = string(gwv1.GatewayConditionProgrammed)
	rcAccepted   = string(gwv1.RouteConditionAccepted)
)

var httpRouteKind = gwv1.RouteGroupKind{Kind: httpRoute}
