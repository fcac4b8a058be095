package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecurityPolicy authenticates and authorizes the requests of HTTPRoutes,
// GRPCRoutes (or one rule of them) of its own namespace, or, defined in
// platform/, of every route attached to a Gateway. It is Envoy Gateway's
// SecurityPolicy, a subset, with the same field names. It applies on Envoy
// nodes; proxyless gRPC clients have no such filters, and the policy's
// status says so when it targets a GRPCRoute.
type SecurityPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              SecurityPolicySpec `json:"spec"`
}

// SecurityPolicySpec: at least one of the features.
type SecurityPolicySpec struct {
	TargetRefs    []PolicyTargetReference `json:"targetRefs"`
	JWT           *JWT                    `json:"jwt,omitempty"`
	ExtAuth       *ExtAuth                `json:"extAuth,omitempty"`
	BasicAuth     *BasicAuth              `json:"basicAuth,omitempty"`
	APIKeyAuth    *APIKeyAuth             `json:"apiKeyAuth,omitempty"`
	Authorization *Authorization          `json:"authorization,omitempty"`
}

// JWT authentication: a request must carry a token valid for one of the
// providers (or none at all when Optional).
type JWT struct {
	Optional  *bool         `json:"optional,omitempty"`
	Providers []JWTProvider `json:"providers"`
}

// JWTProvider is one issuer of tokens.
type JWTProvider struct {
	// Name is unique within the policy; authorization rules refer to it.
	Name      string   `json:"name"`
	Issuer    string   `json:"issuer,omitempty"`
	Audiences []string `json:"audiences,omitempty"`
	// Exactly one of RemoteJWKS and LocalJWKS.
	RemoteJWKS     *RemoteJWKS     `json:"remoteJWKS,omitempty"`
	LocalJWKS      *LocalJWKS      `json:"localJWKS,omitempty"`
	ClaimToHeaders []ClaimToHeader `json:"claimToHeaders,omitempty"`
	ExtractFrom    *JWTExtractor   `json:"extractFrom,omitempty"`
	// Forward the token to the service; by default it is removed once
	// verified, so that the external token never reaches the service.
	Forward *bool `json:"forward,omitempty"`
}

// RemoteJWKS is where the keys are fetched: an http:// URI served by a
// Backend.
type RemoteJWKS struct {
	URI         string                   `json:"uri"`
	BackendRefs []BackendObjectReference `json:"backendRefs"`
}

// LocalJWKSType is where local keys come from; only Inline.
type LocalJWKSType string

// LocalJWKSInline: the public keys are in the policy.
const LocalJWKSInline LocalJWKSType = "Inline"

// LocalJWKS is a JSON Web Key Set of public keys in the policy.
type LocalJWKS struct {
	Type   *LocalJWKSType `json:"type,omitempty"`
	Inline *string        `json:"inline,omitempty"`
}

// ClaimToHeader copies a claim of a verified token into a request header
// (a client-sent header of that name is removed first).
type ClaimToHeader struct {
	Header string `json:"header"`
	Claim  string `json:"claim"`
}

// JWTExtractor says where the token is; by default the Authorization
// header with the "Bearer " prefix.
type JWTExtractor struct {
	Headers []JWTHeaderExtractor `json:"headers,omitempty"`
	Cookies []string             `json:"cookies,omitempty"`
	Params  []string             `json:"params,omitempty"`
}

// JWTHeaderExtractor is a header and the prefix before the token.
type JWTHeaderExtractor struct {
	Name        string  `json:"name"`
	ValuePrefix *string `json:"valuePrefix,omitempty"`
}

// BackendObjectReference names a Backend (group gitxds.dev, kind Backend)
// of the policy's namespace, or of another namespace that a ReferenceGrant
// opens to SecurityPolicies.
type BackendObjectReference struct {
	Group     *string `json:"group,omitempty"`
	Kind      *string `json:"kind,omitempty"`
	Name      string  `json:"name"`
	Namespace *string `json:"namespace,omitempty"`
	Port      *int32  `json:"port,omitempty"`
}

// ExtAuth asks an external authorization service (exactly one of GRPC and
// HTTP) about every request. The headers it returns that HeadersToBackend
// names go to the service (the internal token); client-sent headers of
// those names are removed first.
type ExtAuth struct {
	GRPC             *GRPCExtAuthService `json:"grpc,omitempty"`
	HTTP             *HTTPExtAuthService `json:"http,omitempty"`
	HeadersToExtAuth []string            `json:"headersToExtAuth,omitempty"`
	FailOpen         *bool               `json:"failOpen,omitempty"`
	Timeout          *metav1.Duration    `json:"timeout,omitempty"`
}

// GRPCExtAuthService speaks envoy.service.auth.v3.Authorization.
type GRPCExtAuthService struct {
	BackendRefs      []BackendObjectReference `json:"backendRefs"`
	HeadersToBackend []string                 `json:"headersToBackend,omitempty"`
}

// HTTPExtAuthService is asked with the request's method and headers at
// Path (prefixed to the request path); a 2xx allows the request.
type HTTPExtAuthService struct {
	BackendRefs      []BackendObjectReference `json:"backendRefs"`
	Path             *string                  `json:"path,omitempty"`
	HeadersToBackend []string                 `json:"headersToBackend,omitempty"`
}

// BasicAuth checks a user and password against an htpasswd file (SHA1
// hashes) on the proxy host; the file is never in Git.
type BasicAuth struct {
	// Users names the file: a directory of the proxies' credentials
	// directory (see docs/security.md) holding a file named htpasswd.
	Users FileReference `json:"users"`
	// ForwardUsernameHeader, if set, carries the user name upstream.
	ForwardUsernameHeader *string `json:"forwardUsernameHeader,omitempty"`
}

// FileReference names a directory of the proxies' credentials directory,
// as certificateRefs name certificate directories.
type FileReference struct {
	Name string `json:"name"`
}

// APIKeyAuth checks an API key; Envoy's api_key_auth filter takes only
// inline keys, so gitxds refuses it (keys would be in Git).
type APIKeyAuth struct {
	CredentialRefs        []FileReference     `json:"credentialRefs,omitempty"`
	ExtractFrom           []APIKeyExtractFrom `json:"extractFrom,omitempty"`
	ForwardClientIDHeader *string             `json:"forwardClientIDHeader,omitempty"`
}

// APIKeyExtractFrom is where the key is.
type APIKeyExtractFrom struct {
	Headers []string `json:"headers,omitempty"`
	Params  []string `json:"params,omitempty"`
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
// JWT claims. The first rule that matches decides; DefaultAction (Deny
// unless set) decides the rest.
type Authorization struct {
	DefaultAction *AuthorizationAction `json:"defaultAction,omitempty"`
	Rules         []AuthorizationRule  `json:"rules,omitempty"`
}

// AuthorizationRule matches a principal.
type AuthorizationRule struct {
	Name      *string             `json:"name,omitempty"`
	Action    AuthorizationAction `json:"action"`
	Principal Principal           `json:"principal"`
}

// Principal: every set field must match (CIDRs: any of them).
type Principal struct {
	ClientCIDRs []string      `json:"clientCIDRs,omitempty"`
	JWT         *JWTPrincipal `json:"jwt,omitempty"`
}

// JWTPrincipal matches the verified token of a provider of the same
// policy: every claim must have one of its values, and the "scope" claim
// must hold every scope.
type JWTPrincipal struct {
	Provider string     `json:"provider"`
	Claims   []JWTClaim `json:"claims,omitempty"`
	Scopes   []string   `json:"scopes,omitempty"`
}

// JWTClaim is a claim name (a top-level claim, or nested with ".") and the
// values it may have.
type JWTClaim struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}
