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
		routesAccepted(nn{infraNS, "same-namespace"}, nn{infraNS, "invalid-backend-ref-unknown-kind"}),
		routeCond(httpRoute, nn{infraNS, "invalid-backend-ref-unknown-kind"}, nn{infraNS, "same-namespace"},
			cond(rcResolvedRefs, "False", string(gwv1.RouteReasonInvalidKind)))),
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
	lcAccepted     = string(gwv1.ListenerConditionAccepted)
	lcResolvedRefs = string(gwv1.ListenerConditionResolvedRefs)
	lcProgrammed   = string(gwv1.ListenerConditionProgrammed)
	rcResolvedRefs = string(gwv1.RouteConditionResolvedRefs)
	// anyReason matches any reason, as the suite's empty Reason does.
	anyReason  = ""
	gcAccepted = string(gwv1.GatewayConditionAccepted)
	rcAccepted = string(gwv1.RouteConditionAccepted)
)

var httpRouteKind = gwv1.RouteGroupKind{Kind: httpRoute}
