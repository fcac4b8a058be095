package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecurityPolicy authenticates and authorizes the requests of HTTPRoutes,
// GRPCRoutes (or one rule of them) of its own namespace, or, defined in
// platform/, of every route attached to a Gateway. It is Envoy Gateway's
// SecurityPolicy, a subset, with the same field names. It applies on Envoy
// nodes; proxyless gRPC clients have no such filters, and the policy's
// status says so. docs/security.md explains
// each field and token separation.
type SecurityPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec is the targets and the checks.
	Spec SecurityPolicySpec `json:"spec"`
}

// SecurityPolicySpec: the targets and at least one check.
type SecurityPolicySpec struct {
	// TargetRefs are the routes and route rules of the policy's namespace,
	// or (platform/ only) Gateways. The most specific policy is a route's
	// whole security: rule, then route, then Gateway. A target taken by
	// another policy goes to the first by name; this one is then
	// Conflicted.
	// Validation: at least one; HTTPRoute, GRPCRoute or (platform/ only)
	// Gateway.
	TargetRefs []PolicyTargetReference `json:"targetRefs"`
	// JWT requires a valid JSON Web Token.
	JWT *JWT `json:"jwt,omitempty"`
	// ExtAuth asks an external authorization service about every request.
	ExtAuth *ExtAuth `json:"extAuth,omitempty"`
	// BasicAuth checks a user and password against a file on the proxy
	// host.
	BasicAuth *BasicAuth `json:"basicAuth,omitempty"`
	// APIKeyAuth checks an API key against files on the proxy host.
	APIKeyAuth *APIKeyAuth `json:"apiKeyAuth,omitempty"`
	// Authorization allows or denies requests by client address and
	// verified JWT claims.
	Authorization *Authorization `json:"authorization,omitempty"`
}

// JWT authentication: a request must carry a token valid for one of the
// providers (or none at all when Optional).
type JWT struct {
	// Optional lets a request without a token through; a request with an
	// invalid token is still refused.
	// Default: false.
	Optional *bool `json:"optional,omitempty"`
	// Providers are the accepted issuers; a token valid for any of them
	// passes.
	// Validation: at least one; names unique.
	Providers []JWTProvider `json:"providers"`
}

// JWTProvider is one issuer of tokens.
type JWTProvider struct {
	// Name of the provider; authorization rules refer to it.
	// Validation: a DNS subdomain name, unique within the policy.
	Name string `json:"name"`
	// Issuer the token's iss claim must equal; empty: not checked.
	Issuer string `json:"issuer,omitempty"`
	// Audiences one of which the token's aud claim must hold; empty: not
	// checked.
	Audiences []string `json:"audiences,omitempty"`
	// RemoteJWKS is where the public keys are fetched.
	// Validation: exactly one of remoteJWKS and localJWKS.
	RemoteJWKS *RemoteJWKS `json:"remoteJWKS,omitempty"`
	// LocalJWKS are public keys written in the policy.
	LocalJWKS *LocalJWKS `json:"localJWKS,omitempty"`
	// ClaimToHeaders copy claims of a verified token into request headers.
	ClaimToHeaders []ClaimToHeader `json:"claimToHeaders,omitempty"`
	// ExtractFrom says where the token is.
	// Default: the Authorization header, after "Bearer ".
	ExtractFrom *JWTExtractor `json:"extractFrom,omitempty"`
	// Forward keeps the token in the request to the service.
	// Default: false (the external token does not reach the service).
	Forward *bool `json:"forward,omitempty"`
}

// RemoteJWKS is a JSON Web Key Set fetched over HTTP from a Backend.
type RemoteJWKS struct {
	// URI of the key set.
	// Validation: an absolute http:// URL (Backends have no upstream TLS).
	URI string `json:"uri"`
	// BackendRefs is the Backend that serves URI.
	// Validation: exactly one.
	BackendRefs []BackendObjectReference `json:"backendRefs"`
}

// LocalJWKSType is where local keys come from; only Inline.
type LocalJWKSType string

// LocalJWKSInline: the public keys are in the policy.
const LocalJWKSInline LocalJWKSType = "Inline"

// LocalJWKS is a JSON Web Key Set of public keys in the policy.
type LocalJWKS struct {
	// Type of the source.
	// Default: Inline.
	// Validation: Inline.
	Type *LocalJWKSType `json:"type,omitempty"`
	// Inline is the key set as JSON (RFC 7517).
	// Validation: required; RSA, EC or OKP public keys only (no private
	// members, no symmetric keys).
	Inline *string `json:"inline,omitempty"`
}

// ClaimToHeader copies a claim of a verified token into a request header;
// a client-sent header of that name is removed first.
type ClaimToHeader struct {
	// Header to set.
	// Validation: an HTTP header name.
	Header string `json:"header"`
	// Claim to copy; nested claims as "a.b".
	// Validation: not empty.
	Claim string `json:"claim"`
}

// JWTExtractor says where the token is.
type JWTExtractor struct {
	// Headers that may hold the token.
	Headers []JWTHeaderExtractor `json:"headers,omitempty"`
	// Cookies that may hold the token.
	Cookies []string `json:"cookies,omitempty"`
	// Params are query parameters that may hold the token.
	Params []string `json:"params,omitempty"`
}

// JWTHeaderExtractor is a header and the prefix before the token.
type JWTHeaderExtractor struct {
	// Name of the header.
	// Validation: an HTTP header name.
	Name string `json:"name"`
	// ValuePrefix before the token, e.g. "Bearer ".
	// Default: none.
	ValuePrefix *string `json:"valuePrefix,omitempty"`
}

// BackendObjectReference names a Backend of the policy's namespace, or of
// another namespace whose ReferenceGrant opens it to SecurityPolicies.
type BackendObjectReference struct {
	// Group of the Backend.
	// Default: gitxds.dev.
	// Validation: gitxds.dev.
	Group *string `json:"group,omitempty"`
	// Kind of the Backend.
	// Default: Backend.
	// Validation: Backend.
	Kind *string `json:"kind,omitempty"`
	// Name of the Backend.
	Name string `json:"name"`
	// Namespace of the Backend.
	// Default: the policy's namespace.
	Namespace *string `json:"namespace,omitempty"`
	// Port overrides the port of the Backend's endpoints.
	// Validation: 1..65535.
	Port *int32 `json:"port,omitempty"`
}

// ExtAuth asks an external authorization service about every request.
// The headers it returns that headersToBackend names go to the service
// (the internal token); client-sent headers of those names are removed
// first.
type ExtAuth struct {
	// GRPC is a service of envoy.service.auth.v3.Authorization.
	// Validation: exactly one of grpc and http.
	GRPC *GRPCExtAuthService `json:"grpc,omitempty"`
	// HTTP is a service asked with the request's method and headers.
	HTTP *HTTPExtAuthService `json:"http,omitempty"`
	// HeadersToExtAuth are the request headers sent to the service.
	// Default: all of them.
	HeadersToExtAuth []string `json:"headersToExtAuth,omitempty"`
	// HeadersToBackend are the headers of the service's answer that reach
	// the upstream service, for a gRPC or an HTTP service alike (the same
	// as grpc.headersToBackend or http.headersToBackend, Envoy Gateway's
	// places for it).
	// Default: all of them.
	// Validation: not with grpc.headersToBackend or http.headersToBackend.
	HeadersToBackend []string `json:"headersToBackend,omitempty"`
	// FailOpen lets requests through when the service cannot be reached.
	// Default: false.
	FailOpen *bool `json:"failOpen,omitempty"`
	// Timeout of a call to the service.
	// Default: 10s.
	// Validation: positive.
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// GRPCExtAuthService speaks envoy.service.auth.v3.Authorization.
type GRPCExtAuthService struct {
	// BackendRefs is the Backend of the service.
	// Validation: exactly one.
	BackendRefs []BackendObjectReference `json:"backendRefs"`
	// HeadersToBackend are the headers of the service's answer that reach
	// the upstream service.
	// Default: all of them.
	HeadersToBackend []string `json:"headersToBackend,omitempty"`
}

// HTTPExtAuthService is asked with the request's method and headers at
// Path (prefixed to the request path); a 2xx answer allows the request.
type HTTPExtAuthService struct {
	// BackendRefs is the Backend of the service.
	// Validation: exactly one.
	BackendRefs []BackendObjectReference `json:"backendRefs"`
	// Path prefixed to the request's path.
	// Default: none.
	// Validation: starts with /.
	Path *string `json:"path,omitempty"`
	// HeadersToBackend are the headers of the service's answer that reach
	// the upstream service.
	// Default: none.
	HeadersToBackend []string `json:"headersToBackend,omitempty"`
}

// BasicAuth checks a user and password against an htpasswd file (SHA1
// hashes) on the proxy host; the file is never in Git.
type BasicAuth struct {
	// Users names the directory of the file
	// /etc/gitxds/certs/<namespace>/<name>/.htpasswd on the proxy host.
	Users FileReference `json:"users"`
	// ForwardUsernameHeader, if set, carries the user name upstream.
	// Validation: an HTTP header name.
	ForwardUsernameHeader *string `json:"forwardUsernameHeader,omitempty"`
}

// FileReference names a directory of the proxies' credentials directory,
// as certificateRefs name certificate directories.
type FileReference struct {
	// Name of the directory.
	// Validation: a DNS subdomain name.
	Name string `json:"name"`
}

// APIKeyAuth checks an API key against key files on the proxy host (the
// keys are never in Git), like Envoy Gateway's apiKeyAuth with files in
// place of Secrets.
type APIKeyAuth struct {
	// CredentialRefs name the directories of the key files
	// /etc/gitxds/certs/<namespace>/<name>/api-keys on the proxy host:
	// one "client-id:key" a line. A client or a key listed twice: the
	// first wins.
	// Validation: at least one.
	CredentialRefs []FileReference `json:"credentialRefs"`
	// ExtractFrom says where the key is: the first source (in order)
	// that has one gives it.
	// Validation: at least one.
	ExtractFrom []APIKeyExtractFrom `json:"extractFrom"`
	// ForwardClientIDHeader, if set, carries the client's id upstream.
	// Validation: an HTTP header name.
	ForwardClientIDHeader *string `json:"forwardClientIDHeader,omitempty"`
	// Sanitize removes the key (every source of extractFrom) from the
	// request before it goes upstream.
	// Default: false.
	Sanitize *bool `json:"sanitize,omitempty"`
}

// APIKeyExtractFrom is where an API key is.
// Validation: exactly one of headers, params and cookies.
type APIKeyExtractFrom struct {
	// Headers that may hold the key, in order; a "Bearer " prefix is
	// removed.
	// Validation: HTTP header names.
	Headers []string `json:"headers,omitempty"`
	// Params are query parameters that may hold the key, in order.
	Params []string `json:"params,omitempty"`
	// Cookies that may hold the key, in order.
	Cookies []string `json:"cookies,omitempty"`
}

// AuthorizationAction is Allow or Deny.
type AuthorizationAction string

// Actions of authorization rules.
const (
	AuthorizationAllow AuthorizationAction = "Allow"
	AuthorizationDeny  AuthorizationAction = "Deny"
)

// Authorization allows or denies requests by client address and verified
// JWT claims. The first rule that matches decides; DefaultAction decides
// the rest.
type Authorization struct {
	// DefaultAction for a request no rule matches.
	// Default: Deny.
	DefaultAction *AuthorizationAction `json:"defaultAction,omitempty"`
	// Rules in order; the first that matches decides.
	Rules []AuthorizationRule `json:"rules,omitempty"`
}

// AuthorizationRule matches a principal.
type AuthorizationRule struct {
	// Name of the rule.
	// Default: rule-<index>.
	// Validation: a DNS subdomain name.
	Name *string `json:"name,omitempty"`
	// Action when the rule matches.
	Action AuthorizationAction `json:"action"`
	// Principal the rule matches.
	Principal Principal `json:"principal"`
}

// Principal: every set field must match.
type Principal struct {
	// ClientCIDRs: the client address (as the listener determines it) is
	// in one of them.
	// Validation: CIDRs without host bits.
	ClientCIDRs []string `json:"clientCIDRs,omitempty"`
	// JWT: the verified token of a provider of this policy.
	// Validation: clientCIDRs or jwt.
	JWT *JWTPrincipal `json:"jwt,omitempty"`
}

// JWTPrincipal matches the verified token of a provider of the same
// policy.
type JWTPrincipal struct {
	// Provider is a jwt.providers[].name of this policy.
	Provider string `json:"provider"`
	// Claims: every claim must have one of its values.
	Claims []JWTClaim `json:"claims,omitempty"`
	// Scopes: the space-separated scope claim holds every one of them.
	// Validation: claims or scopes.
	Scopes []string `json:"scopes,omitempty"`
}

// JWTClaim is a claim and the values it may have.
type JWTClaim struct {
	// Name of the claim; nested claims as "a.b".
	Name string `json:"name"`
	// Values the claim may have (a string, or a list holding one).
	// Validation: at least one.
	Values []string `json:"values"`
}
