// Package ir is the intermediate representation between the Gateway API model
// and Envoy xDS: plain, comparable data with no Kubernetes or Envoy types in it.
//
// The model stage (package model) builds an IR from the rendered objects and
// the translate stage turns it into xDS resources. Everything in an IR is
// already validated and sorted; translate never has to reject user input, and
// the same IR always translates to the same bytes.
package ir

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// IR is everything the fleet is served for one revision.
type IR struct {
	// Gateways sorted by namespace/name.
	Gateways []Gateway
	// Clusters sorted by Name; every cluster referenced by a route is here.
	Clusters []Cluster
	// Patches are the EnvoyPatchPolicies of platform/, by namespace/name,
	// applied to the Envoy resources after everything else.
	Patches []PatchPolicy `json:",omitempty" yaml:",omitempty"`
}

// ObjectRef names the Git object an IR element came from, for status and
// for the blast radius of a diff.
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// File is the source file relative to the repository root.
	File string `json:"file,omitempty"`
}

func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Protocol of a Gateway listener.
type Protocol string

const (
	HTTP  Protocol = "HTTP"
	HTTPS Protocol = "HTTPS"
)

// Gateway is one Gateway object of platform/.
type Gateway struct {
	Namespace string
	Name      string
	// Group is the proxy group whose nodes serve the Gateway (annotation
	// gitxds.dev/proxy-group); "" for the nodes that name none.
	Group     string     `json:",omitempty" yaml:",omitempty"`
	Listeners []Listener // in the Gateway's order
	// AccessLogs configured for every listener of this Gateway.
	AccessLogs []AccessLog
	// PortRouteConfigs asks for one RouteConfiguration per port on Envoy
	// nodes, not scoped routes (one per hostname), on every port of this
	// Gateway.
	PortRouteConfigs bool `json:",omitempty" yaml:",omitempty"`
	// RateLimit is the rate limit service of the Gateway's listeners
	// (annotation gitxds.dev/rate-limit-grpc); nil when none.
	RateLimit *RateLimitService `json:",omitempty" yaml:",omitempty"`
	// ScopedRoutes asks for scoped routes on every Envoy node, whatever
	// its version, on every port of this Gateway (PortRouteConfigs of any
	// Gateway of a port wins).
	ScopedRoutes bool `json:",omitempty" yaml:",omitempty"`
}

// Listener is one Gateway listener with the routes attached to it.
type Listener struct {
	// Name is the Gateway listener's sectionName.
	Name     string
	Port     uint32
	Protocol Protocol
	// Hostname of the listener; empty matches every hostname.
	Hostname string
	TLS      *TLS
	// VirtualHosts sorted by Hostname ("*" last). Routes of every team that
	// attached to this listener, merged per hostname.
	VirtualHosts []VirtualHost
}

// TLS termination for an HTTPS listener. Certificates are never in Git: they
// are SDS secrets the proxy reads from files on its own host.
type TLS struct {
	// CertificateRefs are SDS secret names (the certificateRefs of the Gateway).
	CertificateRefs []TLSCertificate
}

// TLSCertificate is one certificate delivered to the proxy by file-based SDS.
type TLSCertificate struct {
	Name     string
	CertFile string
	KeyFile  string
}

// AccessLog sink.
type AccessLog struct {
	// File path on the proxy ("/dev/stdout" allowed); set for file sinks.
	File string
	// GRPCCluster is the cluster of a gRPC ALS sink.
	GRPCCluster string
	LogName     string
}

// VirtualHost groups the routes of one hostname.
type VirtualHost struct {
	// Hostname as written in the route (may be "*.example.com"); "*" for any.
	Hostname string
	// Routes in match precedence order (Gateway API rules): the first that
	// matches wins.
	Routes []Route
	// CORS applied to this virtual host, if any.
}

// Route is one match of one rule of an HTTPRoute or GRPCRoute, with the action
// of that rule. A rule with three matches becomes three Routes.
type Route struct {
	// Name is unique within the virtual host and stable across revisions:
	// "<namespace>/<route>/rule/<i>/match/<j>".
	Name  string
	Owner ObjectRef
	Match Match

	// Exactly one of Backends, Redirect, DirectResponse is set.
	Backends []WeightedBackend
	// InvalidWeight is the weight of backendRefs that could not be resolved
	// (missing Backend, no ReferenceGrant, ...): that share of requests,
	// InvalidWeight / (InvalidWeight + sum of Backends' weights), must get
	// HTTP 500, as Gateway API requires. Zero when every backendRef resolved.
	// Only set together with Backends; a rule whose every backend is invalid
	// gets a DirectResponse 500 instead.
	InvalidWeight  uint32
	Redirect       *Redirect
	DirectResponse *DirectResponse

	Filters Filters
	Timeouts
	Retry     *Retry
	RateLimit *RateLimit
	// Security is the SecurityPolicy of the route (Envoy nodes only).
	Security *Security `json:",omitempty" yaml:",omitempty"`
	// Hash is the hash policy of a consistent-hash cluster of Backends:
	// the first backend's whose cluster has one.
	Hash *HashPolicy `json:",omitempty" yaml:",omitempty"`
	// Session keeps the requests of a session on one endpoint (Gateway API
	// sessionPersistence; Envoy nodes only).
	Session *SessionPersistence `json:",omitempty" yaml:",omitempty"`
	// GlobalRateLimit is checked against the rate limit service of the
	// route's Gateway (Gateway.RateLimit); nil when none applies.
	GlobalRateLimit *GlobalRateLimit `json:",omitempty" yaml:",omitempty"`
	// Extensions are the EnvoyExtensionPolicies that target the route, by
	// policy namespace/name.
	Extensions []Extension `json:",omitempty" yaml:",omitempty"`
}

// SessionPersistence of a route: exactly one of Cookie and Header. The
// proxy records the endpoint that served the session in the cookie or
// header of the response, and sends later requests that carry it there.
type SessionPersistence struct {
	Cookie *SessionCookie
	// Header is the name of the header (lower case).
	Header string
}

// SessionCookie is the cookie of a cookie-based session.
type SessionCookie struct {
	Name string
	Path string
	// TTL is the cookie's Max-Age (whole seconds); 0 is a session cookie.
	TTL time.Duration
}

// PathMatchType is how a route matches the request path.
type PathMatchType string

const (
	PathExact  PathMatchType = "Exact"
	PathPrefix PathMatchType = "PathPrefix" // path-element semantics
	PathRegex  PathMatchType = "RegularExpression"
)

// StringMatchType is how a header or query parameter value is matched.
type StringMatchType string

const (
	MatchExact StringMatchType = "Exact"
	MatchRegex StringMatchType = "RegularExpression"
)

// Match of a route.
type Match struct {
	PathType PathMatchType
	Path     string
	Method   string // empty: any
	Headers  []StringMatch
	Query    []StringMatch
	// GRPC is set for GRPCRoute matches; Path is then derived from
	// Service/Method ("/pkg.Service/Method" exact or "/pkg.Service/" prefix).
	GRPC bool
}

// StringMatch is a header or query parameter match.
type StringMatch struct {
	Name  string
	Type  StringMatchType
	Value string
}

// WeightedBackend is one backendRef. Weight 0 backends are kept out of the IR.
type WeightedBackend struct {
	Cluster string
	Weight  uint32
}

// Redirect answers with a redirect (RequestRedirect filter).
type Redirect struct {
	Scheme     string
	Hostname   string
	Port       uint32
	Path       *PathModifier
	StatusCode int
}

// DirectResponse answers without a backend, e.g. 500 when no backend is valid.
type DirectResponse struct {
	Status uint32
	Body   string
}

// PathModifier rewrites a path: the full path, or the matched prefix.
type PathModifier struct {
	FullPath      string
	PrefixReplace *string
}

// Filters applied by a route.
type Filters struct {
	RequestHeaders  HeaderModifier
	ResponseHeaders HeaderModifier
	Rewrite         *Rewrite
	Mirrors         []Mirror
	CORS            *CORS
}

// HeaderModifier sets, adds and removes headers.
type HeaderModifier struct {
	Set    []Header
	Add    []Header
	Remove []string
}

// Empty reports whether the modifier does nothing.
func (h HeaderModifier) Empty() bool {
	return len(h.Set) == 0 && len(h.Add) == 0 && len(h.Remove) == 0
}

// Header is a name and a value.
type Header struct {
	Name  string
	Value string
}

// Rewrite is the URLRewrite filter.
type Rewrite struct {
	Hostname string
	Path     *PathModifier
}

// Mirror is a RequestMirror filter.
type Mirror struct {
	Cluster string
	Percent uint32 // 0..100; 100 when not set
}

// CORS policy of a route.
type CORS struct {
	AllowOrigins     []string
	AllowMethods     []string
	AllowHeaders     []string
	ExposeHeaders    []string
	MaxAge           time.Duration
	AllowCredentials bool
}

// Timeouts of a route; zero means not set.
type Timeouts struct {
	Request        time.Duration
	BackendRequest time.Duration
	// NoRequestTimeout: the route disables its request timeout
	// (timeouts.request: 0s), which a policy does not override.
	NoRequestTimeout bool `json:",omitempty" yaml:",omitempty"`
	Idle             time.Duration
}

// Retry policy of a route.
type Retry struct {
	Attempts      uint32
	RetryOn       []string // Envoy retry_on / gRPC retry conditions
	StatusCodes   []uint32 // retriable HTTP status codes
	PerTryTimeout time.Duration
	BackoffBase   time.Duration
	BackoffMax    time.Duration
}

// RateLimit is a local token-bucket rate limit for one route.
type RateLimit struct {
	Requests uint32
	Per      time.Duration
}

// Cluster is an upstream: a Backend object, with the policies that target it.
type Cluster struct {
	// Name is "<namespace>/<backend>" (plus ":<port>" when the backendRef
	// overrides the port), or ServiceClusterName for a Service.
	Name      string
	Owner     ObjectRef
	Endpoints []Endpoint // sorted
	// DNS is set when the endpoints are hostnames, resolved by the proxy.
	DNS bool

	ConnectTimeout   time.Duration
	IdleTimeout      time.Duration
	CircuitBreaker   *CircuitBreaker
	HealthCheck      *HealthCheck
	OutlierDetection *OutlierDetection
	// HTTP2 is set when the upstream speaks HTTP/2 (gRPC backends).
	HTTP2 bool
	// LoadBalancer of the endpoints; nil is round robin.
	LoadBalancer *LoadBalancer `json:",omitempty" yaml:",omitempty"`
	// UpstreamTLS: the proxy connects to the endpoints over TLS (Gateway
	// API BackendTLSPolicy).
	UpstreamTLS *UpstreamTLS `json:",omitempty" yaml:",omitempty"`
	// Service is set when the cluster is a Kubernetes Service port. With
	// DNS set, Endpoints hold its DNS name; otherwise Endpoints are empty and
	// the endpoints are discovered at run time from the Service's
	// EndpointSlices, outside any revision (ServiceClusterName).
	Service *ServiceRef `json:",omitempty" yaml:",omitempty"`
}

// ServiceRef is one port of a Kubernetes Service.
type ServiceRef struct {
	Namespace string
	Name      string
	// Port is the Service port (spec.ports[].port), not a target port.
	Port uint32
}

// serviceClusterPrefix starts the name of every Service cluster: a Backend
// cluster starts with a namespace, and no namespace contains ":".
const serviceClusterPrefix = "service:"

// ServiceClusterName is the cluster name of a Service port:
// "service:<namespace>/<name>:<port>".
func ServiceClusterName(s ServiceRef) string {
	return fmt.Sprintf("%s%s/%s:%d", serviceClusterPrefix, s.Namespace, s.Name, s.Port)
}

// ParseServiceCluster is the Service port of a cluster name, and whether
// the name is one of ServiceClusterName's.
func ParseServiceCluster(name string) (ServiceRef, bool) {
	rest, ok := strings.CutPrefix(name, serviceClusterPrefix)
	if !ok {
		return ServiceRef{}, false
	}
	nsName, port, ok := strings.Cut(rest, ":")
	if !ok {
		return ServiceRef{}, false
	}
	ns, n, ok := strings.Cut(nsName, "/")
	p, err := strconv.ParseUint(port, 10, 16)
	if !ok || err != nil || ns == "" || n == "" || p == 0 {
		return ServiceRef{}, false
	}
	return ServiceRef{Namespace: ns, Name: n, Port: uint32(p)}, true
}

// UpstreamTLS is TLS from the proxy to a cluster's endpoints.
type UpstreamTLS struct {
	// SNI sent in the ClientHello.
	SNI string
	// TrustedCAFile is a PEM bundle on the proxy host the server's
	// certificate must chain to.
	TrustedCAFile string
	// SubjectAltNames the certificate must have one of; empty: SNI as a
	// DNS name.
	SubjectAltNames []SubjectAltName
}

// SubjectAltName is a DNS name or a URI, matched exactly.
type SubjectAltName struct {
	URI   bool `json:",omitempty" yaml:",omitempty"`
	Value string
}

// LBType is the load balancing of a cluster.
type LBType string

const (
	LBRoundRobin     LBType = "RoundRobin"
	LBLeastRequest   LBType = "LeastRequest"
	LBRandom         LBType = "Random"
	LBConsistentHash LBType = "ConsistentHash"
)

// LoadBalancer of a cluster.
type LoadBalancer struct {
	Type LBType
	// Hash is set for LBConsistentHash: routes to the cluster hash
	// requests with it (Route.Hash).
	Hash *HashPolicy
	// TableSize of the Maglev table; 0 is the proxy's default.
	TableSize uint64
	// SlowStartWindow: traffic to a new endpoint ramps up over it
	// (RoundRobin and LeastRequest only).
	SlowStartWindow time.Duration
}

// HashPolicy is what a consistent hash is computed from: exactly one of
// Header, Cookie, SourceIP.
type HashPolicy struct {
	Header   string
	Cookie   *HashCookie
	SourceIP bool
}

// HashCookie is a cookie hashed on; Envoy generates it when TTL is set and
// the request has none.
type HashCookie struct {
	Name       string
	TTL        time.Duration
	Attributes []CookieAttribute // sorted by name
}

// CookieAttribute is one attribute of a generated cookie.
type CookieAttribute struct{ Name, Value string }

// Endpoint is one address of a Cluster.
type Endpoint struct {
	Address string // IP or hostname
	Port    uint32
}

// CircuitBreaker thresholds; zero means the proxy default.
type CircuitBreaker struct {
	MaxConnections      uint32
	MaxPendingRequests  uint32
	MaxParallelRequests uint32
	MaxParallelRetries  uint32
}

// HealthCheck is an active HTTP health check.
type HealthCheck struct {
	Path               string
	Interval           time.Duration
	Timeout            time.Duration
	UnhealthyThreshold uint32
	HealthyThreshold   uint32
	ExpectedStatuses   []uint32
}

// OutlierDetection is passive health checking.
type OutlierDetection struct {
	Consecutive5xx     uint32
	Interval           time.Duration
	BaseEjectionTime   time.Duration
	MaxEjectionPercent uint32
}

// Errors returned by Validate.
var (
	ErrListenerPortInvalid = errors.New("listener port must be 1..65535")
	ErrRouteNoAction       = errors.New("route has no action")
	ErrUnknownCluster      = errors.New("route refers to a cluster that is not in the IR")
	ErrClusterNoEndpoints  = errors.New("cluster has no endpoints") // but a discovered Service's
)

// Validate checks the invariants translate relies on. The model only builds
// valid IRs; Validate guards the seam between the two stages.
func (x *IR) Validate() error {
	var errs []error
	clusters := make(map[string]bool, len(x.Clusters))
	for _, c := range x.Clusters {
		clusters[c.Name] = true
		if len(c.Endpoints) == 0 && (c.Service == nil || c.DNS) {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.Name, ErrClusterNoEndpoints))
		}
	}
	for _, g := range x.Gateways {
		if g.RateLimit != nil && !clusters[g.RateLimit.Cluster] {
			errs = append(errs, fmt.Errorf("gateway %s/%s rate limit service -> %s: %w", g.Namespace, g.Name, g.RateLimit.Cluster, ErrUnknownCluster))
		}
		for _, l := range g.Listeners {
			if l.Port == 0 || l.Port > 65535 {
				errs = append(errs, fmt.Errorf("gateway %s/%s listener %s: %w", g.Namespace, g.Name, l.Name, ErrListenerPortInvalid))
			}
			for _, vh := range l.VirtualHosts {
				for _, r := range vh.Routes {
					if len(r.Backends) == 0 && r.Redirect == nil && r.DirectResponse == nil {
						errs = append(errs, fmt.Errorf("route %s: %w", r.Name, ErrRouteNoAction))
					}
					for _, b := range r.Backends {
						if !clusters[b.Cluster] {
							errs = append(errs, fmt.Errorf("route %s -> %s: %w", r.Name, b.Cluster, ErrUnknownCluster))
						}
					}
					for _, m := range r.Filters.Mirrors {
						if !clusters[m.Cluster] {
							errs = append(errs, fmt.Errorf("route %s mirror -> %s: %w", r.Name, m.Cluster, ErrUnknownCluster))
						}
					}
					for _, c := range r.Security.Clusters() {
						if !clusters[c] {
							errs = append(errs, fmt.Errorf("route %s security policy %s -> %s: %w", r.Name, r.Security.Name, c, ErrUnknownCluster))
						}
					}
					for _, x := range r.Extensions {
						for _, c := range x.Clusters() {
							if !clusters[c] {
								errs = append(errs, fmt.Errorf("route %s extension policy %s -> %s: %w", r.Name, x.Policy, c, ErrUnknownCluster))
							}
						}
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}
