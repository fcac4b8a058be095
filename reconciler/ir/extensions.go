package ir

import "time"

// RateLimitService is a Gateway's global rate limit service: a gRPC
// cluster speaking envoy.service.ratelimit.v3.
type RateLimitService struct {
	Cluster string
	// FailureModeDeny answers 500 when the service cannot be reached;
	// otherwise the request goes on (Envoy's default).
	FailureModeDeny bool `json:",omitempty" yaml:",omitempty"`
}

// RateLimitDomain is the domain of every descriptor gitxds sends to a rate
// limit service.
const RateLimitDomain = "gitxds"

// GlobalRateLimit is the global rate limit of one route: each rule is a
// descriptor the rate limit service counts.
type GlobalRateLimit struct {
	// Policy is the BackendTrafficPolicy the rules come from.
	Policy ObjectRef
	Rules  []GlobalRateLimitRule
}

// GlobalRateLimitRule is one limit on the requests its selectors match.
type GlobalRateLimitRule struct {
	// ID is the value of the descriptor's first entry ("rule"): unique per
	// rule across the fleet ("<ns>/<policy>/<i>").
	ID        string
	Headers   []RateLimitHeader   `json:",omitempty" yaml:",omitempty"`
	SourceIPs []RateLimitSourceIP `json:",omitempty" yaml:",omitempty"`
	// Path matches the request path (with its query), when set.
	Path *RateLimitPath `json:",omitempty" yaml:",omitempty"`
	// JWTClaims match claims of the token the route's Security verified.
	JWTClaims []RateLimitJWTClaim `json:",omitempty" yaml:",omitempty"`
	// Requests per Unit.
	Requests uint32
	Unit     RateLimitUnit
}

// RateLimitPath matches the request path: Exact, Prefix (a string
// prefix) or RegularExpression.
type RateLimitPath struct {
	Type  StringMatchType
	Value string
}

// MatchPrefix matches a string prefix (global rate limit paths).
const MatchPrefix StringMatchType = "Prefix"

// RateLimitUnit is the period of a global limit, as the rate limit service
// names it.
type RateLimitUnit string

const (
	UnitSecond RateLimitUnit = "SECOND"
	UnitMinute RateLimitUnit = "MINUTE"
	UnitHour   RateLimitUnit = "HOUR"
	UnitDay    RateLimitUnit = "DAY"
)

// RateLimitHeader selects requests by a header: its value matches
// (Type Exact or RegularExpression, Value), or, with Distinct, every value
// is counted apart.
type RateLimitHeader struct {
	Name     string
	Type     StringMatchType `json:",omitempty" yaml:",omitempty"`
	Value    string          `json:",omitempty" yaml:",omitempty"`
	Distinct bool            `json:",omitempty" yaml:",omitempty"`
	// Invert matches the requests whose header does not match.
	Invert bool `json:",omitempty" yaml:",omitempty"`
}

// RateLimitJWTClaim selects requests by a string claim of the token
// provider Provider (of the route's Security) verified: the claim is
// Value, or, with Distinct, every value is counted apart.
type RateLimitJWTClaim struct {
	Provider string
	// Claim is the claim's name, "a.b" for claim b of object claim a.
	Claim    string
	Value    string `json:",omitempty" yaml:",omitempty"`
	Distinct bool   `json:",omitempty" yaml:",omitempty"`
}

// RateLimitSourceIP selects requests by client address: the CIDR, every
// address in it counted together, or, with Distinct, each address apart.
type RateLimitSourceIP struct {
	CIDR     string
	Distinct bool `json:",omitempty" yaml:",omitempty"`
}

// Extension is one EnvoyExtensionPolicy applied to a route: its filters
// run on that route only.
type Extension struct {
	Policy ObjectRef
	// Before or After names the built-in HTTP filter the policy's filters
	// sit next to (an Envoy filter name such as envoy.filters.http.ext_authz);
	// both empty: the default place (after ext_authz, before RBAC).
	Before string `json:",omitempty" yaml:",omitempty"`
	After  string `json:",omitempty" yaml:",omitempty"`
	// Filters in the order the policy lists them kinds: extProc, wasm, lua.
	ExtProc []ExtProc `json:",omitempty" yaml:",omitempty"`
	Wasm    []Wasm    `json:",omitempty" yaml:",omitempty"`
	Lua     []Lua     `json:",omitempty" yaml:",omitempty"`
}

// Clusters are the clusters the policy's filters call.
func (x *Extension) Clusters() []string {
	var out []string
	for _, e := range x.ExtProc {
		out = append(out, e.Cluster)
	}
	for _, w := range x.Wasm {
		if w.Cluster != "" {
			out = append(out, w.Cluster)
		}
	}
	return out
}

// Lua is an inline Lua script (envoy_on_request / envoy_on_response).
type Lua struct {
	Source string
}

// ExtProc is an external processor: a gRPC cluster that sees the request
// and response headers.
type ExtProc struct {
	Cluster  string
	Timeout  time.Duration `json:",omitempty" yaml:",omitempty"`
	FailOpen bool          `json:",omitempty" yaml:",omitempty"`
}

// Wasm is a Wasm HTTP filter: code fetched over HTTP (URL, SHA256 and the
// cluster of the URL's host) or read from a file on the proxy host.
type Wasm struct {
	Name    string
	URL     string `json:",omitempty" yaml:",omitempty"`
	SHA256  string `json:",omitempty" yaml:",omitempty"`
	Cluster string `json:",omitempty" yaml:",omitempty"`
	File    string `json:",omitempty" yaml:",omitempty"`
	// Config is JSON handed to the plugin as its configuration.
	Config   string `json:",omitempty" yaml:",omitempty"`
	FailOpen bool   `json:",omitempty" yaml:",omitempty"`
}

// PatchPolicy is one EnvoyPatchPolicy: JSON patches on the generated Envoy
// resources, applied in order, all or none.
type PatchPolicy struct {
	Policy  ObjectRef
	Patches []JSONPatch
}

// PatchTarget is the type of resource a patch changes.
type PatchTarget string

const (
	PatchListener              PatchTarget = "Listener"
	PatchRouteConfiguration    PatchTarget = "RouteConfiguration"
	PatchCluster               PatchTarget = "Cluster"
	PatchClusterLoadAssignment PatchTarget = "ClusterLoadAssignment"
	PatchSecret                PatchTarget = "Secret"
)

// JSONPatch is one RFC 6902 operation on the resource of Type and Name, in
// the protojson form of the resource (proto field names).
type JSONPatch struct {
	Type PatchTarget
	Name string
	// Operation is the JSON of one RFC 6902 operation.
	Operation string
}
