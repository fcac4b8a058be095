package ir

import "time"

// Security is a SecurityPolicy as it applies to the routes it targets.
// Routes that share a policy share the pointer; translate builds one set
// of filters per policy (named after Name) in the filter chain of every
// listener that serves one of those routes, disabled there and enabled on
// those routes only.
type Security struct {
	// Name is "<namespace>/<name>" of the policy: unique in an IR.
	Name  string
	Owner ObjectRef
	// StripHeaders are removed from the client's request before any
	// authentication filter runs: the headers that claimToHeaders and the
	// external authorization service set, so that a client cannot forge
	// them. Sorted, lowercase.
	StripHeaders  []string       `json:",omitempty" yaml:",omitempty"`
	JWT           *JWT           `json:",omitempty" yaml:",omitempty"`
	ExtAuth       *ExtAuth       `json:",omitempty" yaml:",omitempty"`
	BasicAuth     *BasicAuth     `json:",omitempty" yaml:",omitempty"`
	APIKeyAuth    *APIKeyAuth    `json:",omitempty" yaml:",omitempty"`
	Authorization *Authorization `json:",omitempty" yaml:",omitempty"`
}

// JWT authentication: a token valid for one of the providers.
type JWT struct {
	// Optional lets requests without a token through (an invalid token is
	// still refused).
	Optional  bool `json:",omitempty" yaml:",omitempty"`
	Providers []JWTProvider
}

// JWTProvider is one issuer. Exactly one of RemoteJWKS and LocalJWKS.
type JWTProvider struct {
	Name           string
	Issuer         string          `json:",omitempty" yaml:",omitempty"`
	Audiences      []string        `json:",omitempty" yaml:",omitempty"`
	RemoteJWKS     *RemoteJWKS     `json:",omitempty" yaml:",omitempty"`
	LocalJWKS      string          `json:",omitempty" yaml:",omitempty"`
	ClaimToHeaders []ClaimToHeader `json:",omitempty" yaml:",omitempty"`
	// Headers, Params and Cookies the token is read from; all empty: the
	// Authorization header, "Bearer " prefix.
	Headers []JWTHeader `json:",omitempty" yaml:",omitempty"`
	Params  []string    `json:",omitempty" yaml:",omitempty"`
	Cookies []string    `json:",omitempty" yaml:",omitempty"`
	// Forward keeps the token in the request to the service.
	Forward bool `json:",omitempty" yaml:",omitempty"`
}

// RemoteJWKS is fetched from URI through Cluster.
type RemoteJWKS struct {
	URI     string
	Cluster string
}

// ClaimToHeader copies a claim into a request header.
type ClaimToHeader struct {
	Claim  string
	Header string
}

// JWTHeader is a header a token is read from, after Prefix.
type JWTHeader struct {
	Name   string
	Prefix string `json:",omitempty" yaml:",omitempty"`
}

// ExtAuth is an external authorization service on Cluster.
type ExtAuth struct {
	// GRPC: envoy.service.auth.v3; otherwise HTTP with PathPrefix.
	GRPC       bool `json:",omitempty" yaml:",omitempty"`
	Cluster    string
	PathPrefix string `json:",omitempty" yaml:",omitempty"`
	// HeadersToExtAuth are sent to the service; empty: all of them.
	HeadersToExtAuth []string `json:",omitempty" yaml:",omitempty"`
	// HeadersToBackend are the headers of the service's answer that reach
	// the upstream service; empty: none (HTTP) or all (gRPC).
	HeadersToBackend []string `json:",omitempty" yaml:",omitempty"`
	FailOpen         bool     `json:",omitempty" yaml:",omitempty"`
	Timeout          time.Duration
}

// BasicAuth checks users against an htpasswd file on the proxy host.
type BasicAuth struct {
	UsersFile             string
	ForwardUsernameHeader string `json:",omitempty" yaml:",omitempty"`
}

// APIKeyAuth checks an API key against key files on the proxy host.
type APIKeyAuth struct {
	// KeyFiles are read in order: "client-id:key" lines.
	KeyFiles []string
	// Sources are where the key is, in order.
	Sources []APIKeySource
	// ForwardClientIDHeader, if set, carries the client id upstream.
	ForwardClientIDHeader string `json:",omitempty" yaml:",omitempty"`
	// Sanitize removes the key from every source before the request goes
	// upstream.
	Sanitize bool `json:",omitempty" yaml:",omitempty"`
}

// APIKeySource is one place of an API key: exactly one field is set.
type APIKeySource struct {
	Header string `json:",omitempty" yaml:",omitempty"`
	Param  string `json:",omitempty" yaml:",omitempty"`
	Cookie string `json:",omitempty" yaml:",omitempty"`
}

// AuthzAction is Allow or Deny.
type AuthzAction string

// Authorization actions.
const (
	AuthzAllow AuthzAction = "Allow"
	AuthzDeny  AuthzAction = "Deny"
)

// Authorization: the first rule that matches decides, DefaultAction the
// rest.
type Authorization struct {
	DefaultAction AuthzAction
	Rules         []AuthzRule `json:",omitempty" yaml:",omitempty"`
}

// AuthzRule matches when every set part matches.
type AuthzRule struct {
	Name        string
	Action      AuthzAction
	ClientCIDRs []string      `json:",omitempty" yaml:",omitempty"`
	JWT         *JWTPrincipal `json:",omitempty" yaml:",omitempty"`
}

// JWTPrincipal matches a verified token of Provider.
type JWTPrincipal struct {
	Provider string
	Claims   []JWTClaim `json:",omitempty" yaml:",omitempty"`
	Scopes   []string   `json:",omitempty" yaml:",omitempty"`
}

// JWTClaim is a claim path ("a.b") and the values it may have.
type JWTClaim struct {
	Name   string
	Values []string
}

// Clusters the policy's filters call (JWKS hosts, the authorization
// service), in order; none for a nil policy.
func (s *Security) Clusters() []string {
	if s == nil {
		return nil
	}
	var out []string
	if s.JWT != nil {
		for _, p := range s.JWT.Providers {
			if p.RemoteJWKS != nil {
				out = append(out, p.RemoteJWKS.Cluster)
			}
		}
	}
	if s.ExtAuth != nil {
		out = append(out, s.ExtAuth.Cluster)
	}
	return out
}
