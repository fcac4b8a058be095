package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BackendTrafficPolicy sets retries, timeouts, rate limits and upstream
// health settings on HTTPRoutes, GRPCRoutes (or one rule of them) and
// Backends of its own namespace. A policy on a route rule beats one on the
// route, which beats one on the Backend.
type BackendTrafficPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackendTrafficPolicySpec `json:"spec"`
}

// BackendTrafficPolicySpec is Envoy Gateway's shape, a subset.
type BackendTrafficPolicySpec struct {
	TargetRefs       []PolicyTargetReference `json:"targetRefs"`
	Retry            *Retry                  `json:"retry,omitempty"`
	Timeout          *Timeout                `json:"timeout,omitempty"`
	CircuitBreaker   *CircuitBreaker         `json:"circuitBreaker,omitempty"`
	RateLimit        *RateLimit              `json:"rateLimit,omitempty"`
	HealthCheck      *HealthCheck            `json:"healthCheck,omitempty"`
	OutlierDetection *OutlierDetection       `json:"outlierDetection,omitempty"`
}

// PolicyTargetReference names an object of the policy's namespace (there is
// no namespace field: a policy cannot reach another team's objects).
type PolicyTargetReference struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	// SectionName is a rule name (rules[].name) of the targeted route.
	SectionName *string `json:"sectionName,omitempty"`
}

// Retry of a request to the backend.
type Retry struct {
	NumRetries *int32    `json:"numRetries,omitempty"`
	RetryOn    *RetryOn  `json:"retryOn,omitempty"`
	PerRetry   *PerRetry `json:"perRetry,omitempty"`
}

// RetryOn lists what is retried. Triggers are Envoy Gateway's: 5xx,
// gateway-error, reset, connect-failure, retriable-4xx, refused-stream,
// retriable-status-codes, cancelled, deadline-exceeded, internal,
// resource-exhausted, unavailable.
type RetryOn struct {
	Triggers        []string `json:"triggers,omitempty"`
	HTTPStatusCodes []int32  `json:"httpStatusCodes,omitempty"`
}

// PerRetry settings.
type PerRetry struct {
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	BackOff *BackOff         `json:"backOff,omitempty"`
}

// BackOff between retries.
type BackOff struct {
	BaseInterval *metav1.Duration `json:"baseInterval,omitempty"`
	MaxInterval  *metav1.Duration `json:"maxInterval,omitempty"`
}

// Timeout settings.
type Timeout struct {
	HTTP *HTTPTimeout `json:"http,omitempty"`
	TCP  *TCPTimeout  `json:"tcp,omitempty"`
}

// HTTPTimeout settings.
type HTTPTimeout struct {
	RequestTimeout        *metav1.Duration `json:"requestTimeout,omitempty"`
	ConnectionIdleTimeout *metav1.Duration `json:"connectionIdleTimeout,omitempty"`
}

// TCPTimeout settings.
type TCPTimeout struct {
	ConnectTimeout *metav1.Duration `json:"connectTimeout,omitempty"`
}

// CircuitBreaker thresholds of the upstream.
type CircuitBreaker struct {
	MaxConnections      *int64 `json:"maxConnections,omitempty"`
	MaxPendingRequests  *int64 `json:"maxPendingRequests,omitempty"`
	MaxParallelRequests *int64 `json:"maxParallelRequests,omitempty"`
	MaxParallelRetries  *int64 `json:"maxParallelRetries,omitempty"`
}

// RateLimitType is the kind of rate limit; only Local is supported.
type RateLimitType string

// LocalRateLimit is a per-proxy token bucket.
const LocalRateLimit RateLimitType = "Local"

// RateLimit of a route.
type RateLimit struct {
	Type  RateLimitType       `json:"type"`
	Local *LocalRateLimitSpec `json:"local,omitempty"`
}

// LocalRateLimitSpec has one rule (Envoy Gateway allows several with client
// selectors; gitxds supports one rule without selectors).
type LocalRateLimitSpec struct {
	Rules []RateLimitRule `json:"rules"`
}

// RateLimitRule is a limit.
type RateLimitRule struct {
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
	Requests uint32        `json:"requests"`
	Unit     RateLimitUnit `json:"unit"`
}

// HealthCheck of the upstream.
type HealthCheck struct {
	Active *ActiveHealthCheck `json:"active,omitempty"`
}

// ActiveHealthCheckType is the protocol of an active health check; only
// HTTP is supported.
type ActiveHealthCheckType string

// HTTPHealthCheck is the HTTP active health check type.
const HTTPHealthCheck ActiveHealthCheckType = "HTTP"

// ActiveHealthCheck probes every endpoint.
type ActiveHealthCheck struct {
	Type               ActiveHealthCheckType  `json:"type"`
	HTTP               *HTTPActiveHealthCheck `json:"http,omitempty"`
	Interval           *metav1.Duration       `json:"interval,omitempty"`
	Timeout            *metav1.Duration       `json:"timeout,omitempty"`
	UnhealthyThreshold *uint32                `json:"unhealthyThreshold,omitempty"`
	HealthyThreshold   *uint32                `json:"healthyThreshold,omitempty"`
}

// HTTPActiveHealthCheck is the request of an HTTP health check.
type HTTPActiveHealthCheck struct {
	Path             string  `json:"path"`
	ExpectedStatuses []int32 `json:"expectedStatuses,omitempty"`
}

// OutlierDetection ejects failing endpoints.
type OutlierDetection struct {
	Consecutive5xxErrors *uint32          `json:"consecutive5XxErrors,omitempty"`
	Interval             *metav1.Duration `json:"interval,omitempty"`
	BaseEjectionTime     *metav1.Duration `json:"baseEjectionTime,omitempty"`
	MaxEjectionPercent   *int32           `json:"maxEjectionPercent,omitempty"`
}
