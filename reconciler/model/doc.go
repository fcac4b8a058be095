// Package model is the model stage of gitxds: it turns the rendered objects
// of one revision into the IR (package ir) and a Gateway API status per
// object. Build is its one entry point; it is pure and deterministic.
//
// # Steps
//
// Build runs small steps over one per-call builder (model.go): strict
// decoding (decode.go), directory identity (ownership.go), duplicates,
// indexing of Namespaces, Backends, ReferenceGrants and the RolloutPolicy
// (index.go), Gateway listeners (gateway.go), routes and their attachment
// (route.go, httproute.go, grpcroute.go, filters.go, backends.go),
// HTTPRoute/GRPCRoute hostname conflicts and match precedence
// (precedence.go), BackendTrafficPolicies (policy.go). Each step's comment
// lists the conditions it sets.
//
// # Identity
//
// An object's owner is the directory of its source file: the first path
// element named "platform" or "teams" decides, so the layout may sit below a
// directory of the repository (repo-layout/teams/a/x.yaml is team a's).
// Objects of teams/<team>/ must be in namespace <team>; teams/platform/ is
// refused. Objects of platform/ are in namespace "platform" (Namespace is
// cluster-scoped; a RolloutPolicy may have no namespace). Only platform/
// defines Gateway, Namespace, RolloutPolicy and BackendAddressPolicy. A file under neither
// directory is refused (reason NotOwner).
//
// # Rejections and last accepted versions
//
// A rejected object (Accepted=False and nothing of it served) is left out
// and everything else is built without it. If Input.LastAccepted has an
// earlier accepted version of it, that version is built instead, its status
// keeps the conditions that explain the rejection and sets
// ServingLastAccepted. Output.Accepted holds, for the next revision, every
// fully accepted object and the kept last accepted versions; an object
// deleted from Git is not brought back.
//
// Validation errors that Gateway API's schema or CEL rules would refuse, and
// invalid regular expressions (RE2, as Envoy), reject the whole route with
// reason UnsupportedValue (IncompatibleFilters for filter combinations). A
// backendRef that cannot be resolved does not: the route is Accepted with
// ResolvedRefs=False (RefNotPermitted, BackendNotFound, InvalidKind) and the
// share of requests for that backend gets HTTP 500 (ir.Route.InvalidWeight,
// or a DirectResponse 500 when no backend of the rule is valid or all
// weights are 0).
//
// What Envoy cannot serve is refused the same way: a RequestHeaderModifier
// or ResponseHeaderModifier that sets, adds or removes Host (Envoy rejects
// the whole route table; a URLRewrite hostname changes the Host sent
// upstream). A RequestRedirect rule is Accepted with a note that proxyless
// gRPC clients, which are sent only route actions (gRFC A28), fail its
// calls with UNAVAILABLE.
//
// # Precedence
//
// Each listener gets one virtual host per hostname a route serves there.
// Listeners the proxies serve as one (the plaintext listeners of a port,
// the HTTPS listeners of a port and hostname) are assembled together
// (assemble.go): the virtual host of a hostname holds the matches of every
// such listener, listener by listener from the most specific listener
// hostname, and within a listener its own hostname's matches first and
// then those of every broader hostname that covers it (wildcards, longest
// first, then "*"), so the most specific hostname wins without hiding the
// others. Within one hostname, HTTPRoute matches are ordered as Gateway API
// specifies: Exact path, then RegularExpression (implementation-specific
// in the spec; here longer expressions first), then PathPrefix by length;
// then method; then number of header matches; then of query parameter
// matches. GRPCRoute matches are ordered by characters of service, then
// method, exact before regular expression, then header matches. Ties go to
// the oldest route (age.go): one whose version serves already, then by the
// revision that first accepted it (Input.FirstAccepted, Git having no
// creation timestamps), then by "namespace/name"; then rule and match
// order. A match identical to one of an older route on the same virtual
// host is reported on the newer route as Overlapped=True, reason Shadowed,
// naming the holder. An HTTPRoute and a GRPCRoute whose hostnames
// intersect on one listener: the oldest keeps it, the other gets
// Accepted=False reason HostnameConflict there, and keeps serving its last
// accepted version if it has one.
//
// # Owned hostnames
//
// A Namespace of platform/ may own hostnames (annotation
// gitxds.dev/hostnames, hostowners.go). Only its routes are attached for
// them: another route claiming one, exactly or through a wildcard, gets
// HostnameNotOwned (Accepted=False, or PartiallyInvalid=True when the rest
// serves), and an owned hostname covered by a broader one gets a virtual
// host of its own with the owner's matches only.
//
// # Backend address policy
//
// Backends are checked against built-in deny rules (link-local,
// unspecified, multicast, broadcast) and the BackendAddressPolicies of
// platform/ (addresspolicy.go); a refused Backend is Accepted=False reason
// AddressNotAllowed and routes using it get ResolvedRefs=False.
//
// # Listeners
//
// All Gateways are served by the same proxies, so listeners of every Gateway
// share the port space: listeners on one port must use the same protocol and
// distinct hostnames (translate merges them per port). Within a Gateway
// conflicting listeners are all left out, as Gateway API requires; across
// Gateways the Gateway first by namespace/name keeps the port. A Gateway
// with some invalid listeners is Accepted with reason ListenersNotValid and
// PartiallyInvalid=True; with none valid it is rejected.
//
// # TLS certificates
//
// Private keys never live in Git. An HTTPS listener's certificateRef
// {name: N, [namespace: NS]} (kind Secret, NS defaulting to the Gateway's)
// names files on every proxy host, delivered to Envoy by file-based SDS:
//
//	/etc/gitxds/certs/<NS>/<N>/tls.crt
//	/etc/gitxds/certs/<NS>/<N>/tls.key
//
// with SDS secret name "<NS>/<N>" (the layout of a mounted Kubernetes TLS
// Secret). The annotation gitxds.dev/certs-dir on the Gateway replaces
// /etc/gitxds/certs. A certificateRef to another namespace needs a
// ReferenceGrant there from Gateways of namespace platform to Secrets.
// The annotation gitxds.dev/access-log (a path such as /dev/stdout) gives
// every listener of the Gateway a file access log.
//
// # BackendTrafficPolicy
//
// Targets are HTTPRoute/GRPCRoute (optionally one rule by sectionName, the
// rule's name) or Backend, of the policy's own namespace (targetRefs have no
// namespace field). For a route match the most specific policy wins whole,
// as in Envoy Gateway (no merging): rule, then route, then the Backend
// policy shared by every backend of the rule. A route's own rules[].retry
// and rules[].timeouts beat any policy, including retry.attempts: 0 (no
// retries) and timeouts.request: 0s (no request timeout). Connection settings (timeout.tcp,
// timeout.http.connectionIdleTimeout, circuitBreaker, healthCheck,
// outlierDetection, loadBalancer) apply to clusters and are only accepted on Backend
// targets. Two policies on the same target: the first by name wins, the
// other is Accepted=False reason Conflicted.
//
// # SecurityPolicy
//
// Targets are HTTPRoute/GRPCRoute (optionally one rule) of the policy's
// own namespace, or a Gateway, which only platform/ may target. The most
// specific policy is a route's whole security (rule, route, then the
// first Gateway by name the route is attached to); two on one target: the
// first by name wins. A valid policy becomes one shared *ir.Security set
// on the IR routes it reaches; its JWKS hosts and authorization service
// are Backends (a ReferenceGrant from SecurityPolicies opens another
// namespace's). https JWKS URIs and private keys in localJWKS are refused
// (docs/security.md).
//
// # BackendTLSPolicy
//
// Gateway API v1 BackendTLSPolicies of a team target its Backends
// (backendtls.go): the Backend's clusters get TLS with the SNI hostname,
// a CA bundle from a file on the proxy host (<certs dir>/<ns>/<name>/ca.crt
// for caCertificateRefs, DefaultSystemCAFile for wellKnownCACertificates:
// System) and the subject alt names to match. gRPC nodes get no cluster
// for such a Backend (gRFC A29 certificate providers are not managed).
//
// # Gateway API status
//
// Besides the summary conditions of every object, routes get Gateway API's
// status.parents (one entry per parentRef, controllerName
// status.ControllerName, that parent's Accepted and the route's
// ResolvedRefs, PartiallyInvalid, Overlapped) and Gateways get
// status.listeners (supportedKinds, attachedRoutes, Accepted, Programmed,
// ResolvedRefs, Conflicted) and a Programmed condition (gwstatus.go).
//
// # Golden tests
//
// testdata/<case>.in.yaml is a YAML stream of objects, each document led by
// "# file: <path>" (and "# lastAccepted: true" for Input.LastAccepted,
// "# firstAccepted: SEQ REV" for Input.FirstAccepted);
// <case>.out.yaml is the status, accepted keys and IR. Regenerate with
// go test ./reconciler/model -update.
package model
