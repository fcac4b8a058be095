package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BackendTrafficPolicy sets retries, timeouts, rate limits and upstream
// health settings on HTTPRoutes, GRPCRoutes (or one rule of them) and
// Backends of its own namespace. A policy on a route rule beats one on the
// route, which beats one on the Backend.
type BackendTrafficPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec is the targets and the settings.
	Spec BackendTrafficPolicySpec `json:"spec"`
}

// BackendTrafficPolicySpec is Envoy Gateway's shape, a subset.
type BackendTrafficPolicySpec struct {
	// TargetRefs are the routes, route rules and Backends the policy
	// applies to, in its own namespace. A target taken by another policy
	// goes to the first by name; this one is then Conflicted.
	// Validation: at least one.
	TargetRefs []PolicyTargetReference `json:"targetRefs"`
	// Retry of requests. A route rule's own retry beats it.
	Retry *Retry `json:"retry,omitempty"`
	// Timeout of requests and connections; timeout.tcp and
	// timeout.http.connectionIdleTimeout only on Backend targets.
	Timeout *Timeout `json:"timeout,omitempty"`
	// CircuitBreaker limits of the upstream cluster; only on Backend
	// targets.
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
	// RateLimit of the requests of a route or rule, per proxy.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// HealthCheck of the upstream's endpoints; only on Backend targets.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	// OutlierDetection of the upstream's endpoints; only on Backend
	// targets.
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// LoadBalancer chooses how requests are spread over the endpoints of
	// the upstream; only on Backend targets. Default: RoundRobin.
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`
}

// LoadBalancer is the load balancing of a Backend's endpoints, in Envoy
// Gateway's shape. Envoy nodes get the cluster's lb_policy (ROUND_ROBIN,
// LEAST_REQUEST, RANDOM, or MAGLEV for ConsistentHash, as Envoy Gateway
// does) and, for ConsistentHash, a hash policy on every route to the
// Backend. gRPC nodes get ROUND_ROBIN, LEAST_REQUEST (gRFC A48) or, for a
// ConsistentHash by header, RING_HASH (gRFC A42); gRPC has no Random, no
// hashing by cookie or source IP and no slow start: those nodes get round
// robin instead, and the policy's status says so.
type LoadBalancer struct {
	// Type of load balancing.
	// Validation: RoundRobin, LeastRequest, Random or ConsistentHash.
	Type LoadBalancerType `json:"type"`
	// ConsistentHash is what requests are hashed on.
	// Validation: set exactly when type is ConsistentHash.
	ConsistentHash *ConsistentHash `json:"consistentHash,omitempty"`
	// SlowStart ramps up the traffic to endpoints newly added.
	// Validation: only with RoundRobin and LeastRequest.
	SlowStart *SlowStart `json:"slowStart,omitempty"`
}

// LoadBalancerType is the kind of load balancing.
type LoadBalancerType string

// Load balancer types.
const (
	RoundRobinLoadBalancer     LoadBalancerType = "RoundRobin"
	LeastRequestLoadBalancer   LoadBalancerType = "LeastRequest"
	RandomLoadBalancer         LoadBalancerType = "Random"
	ConsistentHashLoadBalancer LoadBalancerType = "ConsistentHash"
)

// ConsistentHash sends requests with the same hash key to the same
// endpoint while the endpoints do not change.
type ConsistentHash struct {
	// Type is what is hashed.
	// Validation: SourceIP, Header or Cookie.
	Type ConsistentHashType `json:"type"`
	// Header hashed when type is Header.
	// Validation: set exactly when type is Header.
	Header *HashHeader `json:"header,omitempty"`
	// Cookie hashed when type is Cookie.
	// Validation: set exactly when type is Cookie.
	Cookie *HashCookie `json:"cookie,omitempty"`
	// TableSize of the Maglev lookup table on Envoy nodes.
	// Default: 65537.
	// Validation: a prime number, 2..5000011 (Envoy refuses a table size
	// that is not prime).
	TableSize *uint64 `json:"tableSize,omitempty"`
}

// ConsistentHashType is what a consistent hash is computed from.
type ConsistentHashType string

// Consistent hash types.
const (
	SourceIPHash ConsistentHashType = "SourceIP"
	HeaderHash   ConsistentHashType = "Header"
	CookieHash   ConsistentHashType = "Cookie"
)

// HashHeader names the request header a consistent hash is computed from.
type HashHeader struct {
	// Name of the header.
	// Validation: an HTTP header name.
	Name string `json:"name"`
}

// HashCookie names the cookie a consistent hash is computed from. When a
// request has no such cookie, Envoy generates one and sets it on the
// response when TTL is set.
type HashCookie struct {
	// Name of the cookie.
	// Validation: a cookie name (an HTTP token).
	Name string `json:"name"`
	// TTL is the Max-Age of a generated cookie.
	TTL *metav1.Duration `json:"ttl,omitempty"`
	// Attributes added to a generated cookie (e.g. SameSite: Strict).
	Attributes map[string]string `json:"attributes,omitempty"`
}

// SlowStart ramps the traffic of a new endpoint up over a window.
type SlowStart struct {
	// Window during which traffic to a new endpoint grows linearly.
	// Validation: positive.
	Window *metav1.Duration `json:"window"`
}

// PolicyTargetReference names an object of the policy's namespace (there is
// no namespace field: a policy cannot reach another team's objects).
type PolicyTargetReference struct {
	// Group of the target: gateway.networking.k8s.io for routes, gitxds.dev
	// for a Backend.
	Group string `json:"group"`
	// Kind of the target.
	// Validation: HTTPRoute, GRPCRoute or Backend.
	Kind string `json:"kind"`
	// Name of the target, in the policy's namespace.
	Name string `json:"name"`
	// SectionName is a rule name (rules[].name) of the targeted route.
	// Validation: routes only; the rule must exist.
	SectionName *string `json:"sectionName,omitempty"`
}

// Retry of a request to the backend.
type Retry struct {
	// NumRetries is how many times a request is retried.
	// Default: 2.
	// Validation: 0..100.
	NumRetries *int32 `json:"numRetries,omitempty"`
	// RetryOn says what is retried.
	// Default: connect-failure, refused-stream, unavailable, cancelled and HTTP 503.
	RetryOn *RetryOn `json:"retryOn,omitempty"`
	// PerRetry sets the timeout and back-off of each attempt.
	PerRetry *PerRetry `json:"perRetry,omitempty"`
}

// RetryOn lists what is retried. Triggers are Envoy Gateway's: 5xx,
// gateway-error, reset, connect-failure, retriable-4xx, refused-stream,
// retriable-status-codes, cancelled, deadline-exceeded, internal,
// resource-exhausted, unavailable.
type RetryOn struct {
	// Triggers are Envoy Gateway's retry triggers.
	// Validation: each one of 5xx, gateway-error, reset, connect-failure,
	// retriable-4xx, refused-stream, retriable-status-codes, cancelled,
	// deadline-exceeded, internal, resource-exhausted, unavailable;
	// triggers or httpStatusCodes, or both.
	Triggers []string `json:"triggers,omitempty"`
	// HTTPStatusCodes retried (adds the retriable-status-codes trigger).
	// Validation: each 100..599.
	HTTPStatusCodes []int32 `json:"httpStatusCodes,omitempty"`
}

// PerRetry settings.
type PerRetry struct {
	// Timeout of each attempt.
	// Default: the route rule's timeouts.backendRequest, else none (the
	// request timeout bounds all attempts).
	// Validation: positive.
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// BackOff between attempts.
	BackOff *BackOff `json:"backOff,omitempty"`
}

// BackOff between retries.
type BackOff struct {
	// BaseInterval of the exponential back-off.
	// Default: Envoy's, 25ms.
	// Validation: positive.
	BaseInterval *metav1.Duration `json:"baseInterval,omitempty"`
	// MaxInterval caps the back-off.
	// Default: Envoy's, 10 times baseInterval.
	// Validation: positive; not shorter than baseInterval.
	MaxInterval *metav1.Duration `json:"maxInterval,omitempty"`
}

// Timeout settings.
type Timeout struct {
	// HTTP timeouts.
	HTTP *HTTPTimeout `json:"http,omitempty"`
	// TCP timeouts; only on Backend targets.
	TCP *TCPTimeout `json:"tcp,omitempty"`
}

// HTTPTimeout settings.
type HTTPTimeout struct {
	// RequestTimeout is the whole request's timeout, retries included. A
	// route rule's timeouts.request beats it.
	// Validation: positive.
	RequestTimeout *metav1.Duration `json:"requestTimeout,omitempty"`
	// ConnectionIdleTimeout closes upstream connections idle this long;
	// only on Backend targets.
	// Validation: positive.
	ConnectionIdleTimeout *metav1.Duration `json:"connectionIdleTimeout,omitempty"`
}

// TCPTimeout settings.
type TCPTimeout struct {
	// ConnectTimeout of a new upstream connection.
	// Default: 5s.
	// Validation: positive.
	ConnectTimeout *metav1.Duration `json:"connectTimeout,omitempty"`
}

// CircuitBreaker thresholds of the upstream.
type CircuitBreaker struct {
	// MaxConnections to the upstream, per proxy.
	// Default: Envoy's, 1024.
	// Validation: 1..4294967295.
	MaxConnections *int64 `json:"maxConnections,omitempty"`
	// MaxPendingRequests waiting for a connection, per proxy.
	// Default: Envoy's, 1024.
	// Validation: 1..4294967295.
	MaxPendingRequests *int64 `json:"maxPendingRequests,omitempty"`
	// MaxParallelRequests in flight to the upstream, per proxy.
	// Default: Envoy's, 1024.
	// Validation: 1..4294967295.
	MaxParallelRequests *int64 `json:"maxParallelRequests,omitempty"`
	// MaxParallelRetries in flight to the upstream, per proxy.
	// Default: Envoy's, 3.
	// Validation: 1..4294967295.
	MaxParallelRetries *int64 `json:"maxParallelRetries,omitempty"`
}

// RateLimitType is the kind of rate limit: Local or Global.
type RateLimitType string

const (
	// LocalRateLimit is a per-proxy token bucket.
	LocalRateLimit RateLimitType = "Local"
	// GlobalRateLimit is counted by the rate limit service of the
	// Gateway (annotation gitxds.dev/rate-limit-grpc) across proxies.
	GlobalRateLimit RateLimitType = "Global"
)

// RateLimit of a route.
type RateLimit struct {
	// Type of the limit.
	Type RateLimitType `json:"type"`
	// Local is the per-proxy limit.
	// Validation: required (type Local).
	Local *LocalRateLimitSpec `json:"local,omitempty"`
	// Global is counted across proxies by the rate limit service of the
	// route's Gateways (annotation gitxds.dev/rate-limit-grpc).
	// Validation: required (type Global).
	Global *GlobalRateLimitSpec `json:"global,omitempty"`
}

// GlobalRateLimitSpec is Envoy Gateway's: rules, each a limit on the
// requests its client selectors match.
type GlobalRateLimitSpec struct {
	// Rules of the limit; each is counted apart, and a request over any
	// rule's limit gets HTTP 429.
	// Validation: at least one.
	Rules []GlobalRateLimitRule `json:"rules"`
}

// GlobalRateLimitRule is one limit.
type GlobalRateLimitRule struct {
	// ClientSelectors select the requests the rule counts; without them it
	// counts every request of the route. A request must match every
	// condition of every selector (Envoy Gateway's semantics).
	// Validation: at most one path among them.
	ClientSelectors []RateLimitSelectCondition `json:"clientSelectors,omitempty"`
	// Limit is the number of requests allowed per unit of time.
	Limit RateLimitValue `json:"limit"`
}

// RateLimitSelectCondition selects requests: every header, the path and the
// source CIDR given must match.
type RateLimitSelectCondition struct {
	// Headers the request must match.
	// Validation: header names (not pseudo-headers).
	Headers []HeaderMatch `json:"headers,omitempty"`
	// Path the request must match.
	Path *PathMatch `json:"path,omitempty"`
	// SourceCIDR the client address must be in.
	SourceCIDR *SourceMatch `json:"sourceCIDR,omitempty"`
	// JWTClaims of the caller's verified JSON Web Token (a gitxds field,
	// not in Envoy Gateway): the route's SecurityPolicy must verify it
	// (jwt), or the rule is off on that route.
	JWTClaims []JWTClaimMatch `json:"jwtClaims,omitempty"`
}

// JWTClaimMatchType is how a JWT claim selects requests.
type JWTClaimMatchType string

// JWT claim match types.
const (
	// JWTClaimMatchExact selects the requests whose claim is the value.
	JWTClaimMatchExact JWTClaimMatchType = "Exact"
	// JWTClaimMatchDistinct counts each value of the claim apart.
	JWTClaimMatchDistinct JWTClaimMatchType = "Distinct"
)

// JWTClaimMatch selects requests by a string claim of the verified JWT.
type JWTClaimMatch struct {
	// Provider is the jwt provider (of the route's SecurityPolicy) whose
	// verified token holds the claim.
	// Default: the policy's only provider.
	Provider *string `json:"provider,omitempty"`
	// Name of the claim; "a.b" is claim b of the object claim a.
	Name string `json:"name"`
	// Type of match: Exact, or Distinct (every value counted apart). A
	// request whose token lacks the claim (or has no token, with
	// jwt.optional) is not counted.
	// Default: Exact.
	Type *JWTClaimMatchType `json:"type,omitempty"`
	// Value to match.
	// Validation: required for Exact; not allowed for Distinct.
	Value *string `json:"value,omitempty"`
}

// HeaderMatchType is how a header selects requests.
type HeaderMatchType string

// Header match types.
const (
	HeaderMatchExact             HeaderMatchType = "Exact"
	HeaderMatchRegularExpression HeaderMatchType = "RegularExpression"
	// HeaderMatchDistinct counts each value of the header apart.
	HeaderMatchDistinct HeaderMatchType = "Distinct"
)

// HeaderMatch selects requests by a header.
type HeaderMatch struct {
	// Type of match: Exact, RegularExpression (RE2), or Distinct (every
	// value counted apart; a request without the header is not counted).
	// Default: Exact.
	Type *HeaderMatchType `json:"type,omitempty"`
	// Name of the header.
	Name string `json:"name"`
	// Value to match.
	// Validation: required for Exact and RegularExpression; not allowed for Distinct.
	Value *string `json:"value,omitempty"`
	// Invert selects the requests whose header does not match (absent included).
	// Default: false.
	// Validation: not allowed for Distinct.
	Invert *bool `json:"invert,omitempty"`
}

// PathMatchType is how a path selects requests.
type PathMatchType string

// Path match types.
const (
	PathMatchExact             PathMatchType = "Exact"
	PathMatchPrefix            PathMatchType = "PathPrefix"
	PathMatchRegularExpression PathMatchType = "RegularExpression"
)

// PathMatch selects requests by path (with its query string).
type PathMatch struct {
	// Type of match: Exact, PathPrefix (a string prefix), RegularExpression (RE2).
	// Default: PathPrefix.
	Type *PathMatchType `json:"type,omitempty"`
	// Value to match.
	// Validation: starts with / (Exact, PathPrefix).
	Value string `json:"value"`
}

// SourceMatchType is how a client address selects requests.
type SourceMatchType string

// Source match types.
const (
	// SourceMatchExact counts every address of the CIDR together.
	SourceMatchExact SourceMatchType = "Exact"
	// SourceMatchDistinct counts each address of the CIDR apart.
	SourceMatchDistinct SourceMatchType = "Distinct"
)

// SourceMatch selects requests by client address.
type SourceMatch struct {
	// Type of match: Exact (the CIDR's addresses counted together) or
	// Distinct (each address apart).
	// Default: Exact.
	Type *SourceMatchType `json:"type,omitempty"`
	// Value is the CIDR.
	// Validation: a CIDR with its host bits zero, such as 10.0.0.0/8.
	Value string `json:"value"`
}

// LocalRateLimitSpec has one rule (Envoy Gateway allows several with client
// selectors; gitxds supports one rule without selectors).
type LocalRateLimitSpec struct {
	// Rules of the limit.
	// Validation: exactly one.
	Rules []RateLimitRule `json:"rules"`
}

// RateLimitRule is a limit.
type RateLimitRule struct {
	// Limit is the number of requests allowed per unit of time; requests
	// over it get HTTP 429.
	Limit RateLimitValue `json:"limit"`
}

// RateLimitUnit is the period of a limit.
type RateLimitUnit string

// Units of a rate limit.
const (
	RateLimitSecond RateLimitUnit = "Second"
	RateLimitMinute RateLimitUnit = "Minute"
	RateLimitHour   RateLimitUnit = "Hour"
	RateLimitDay    RateLimitUnit = "Day"
)

// RateLimitValue is requests per unit.
type RateLimitValue struct {
	// Requests per unit.
	// Validation: at least 1.
	Requests uint32 `json:"requests"`
	// Unit of time.
	Unit RateLimitUnit `json:"unit"`
}

// HealthCheck of the upstream.
type HealthCheck struct {
	// Active health checks: the proxy probes every endpoint.
	// Validation: required (only active health checks are supported).
	Active *ActiveHealthCheck `json:"active,omitempty"`
}

// ActiveHealthCheckType is the protocol of an active health check; only
// HTTP is supported.
type ActiveHealthCheckType string

// HTTPHealthCheck is the HTTP active health check type.
const HTTPHealthCheck ActiveHealthCheckType = "HTTP"

// ActiveHealthCheck probes every endpoint.
type ActiveHealthCheck struct {
	// Type of the probe.
	Type ActiveHealthCheckType `json:"type"`
	// HTTP is the probe's request.
	// Validation: required (type HTTP).
	HTTP *HTTPActiveHealthCheck `json:"http,omitempty"`
	// Interval between probes of an endpoint.
	// Default: 3s.
	// Validation: positive.
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Timeout of a probe.
	// Default: 1s.
	// Validation: positive.
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// UnhealthyThreshold is how many failed probes in a row mark an
	// endpoint unhealthy.
	// Default: 3.
	// Validation: at least 1.
	UnhealthyThreshold *uint32 `json:"unhealthyThreshold,omitempty"`
	// HealthyThreshold is how many passed probes in a row mark it healthy
	// again.
	// Default: 1.
	// Validation: at least 1.
	HealthyThreshold *uint32 `json:"healthyThreshold,omitempty"`
}

// HTTPActiveHealthCheck is the request of an HTTP health check.
type HTTPActiveHealthCheck struct {
	// Path requested.
	// Validation: an absolute path.
	Path string `json:"path"`
	// ExpectedStatuses that pass.
	// Default: [200].
	// Validation: each 100..599.
	ExpectedStatuses []int32 `json:"expectedStatuses,omitempty"`
}

// OutlierDetection ejects failing endpoints.
type OutlierDetection struct {
	// Consecutive5xxErrors from an endpoint that eject it.
	// Default: 5.
	Consecutive5xxErrors *uint32 `json:"consecutive5XxErrors,omitempty"`
	// Interval between two ejection sweeps.
	// Default: 3s.
	// Validation: positive.
	Interval *metav1.Duration `json:"interval,omitempty"`
	// BaseEjectionTime is how long an endpoint is ejected the first time
	// (longer each time after).
	// Default: 30s.
	// Validation: positive.
	BaseEjectionTime *metav1.Duration `json:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent of the endpoints that may be ejected at once.
	// Default: 10.
	// Validation: 0..100.
	MaxEjectionPercent *int32 `json:"maxEjectionPercent,omitempty"`
}
