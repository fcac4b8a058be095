package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Backend is a static upstream: a list of IP or DNS endpoints. Routes refer to
// it with a backendRef {group: gitxds.dev, kind: Backend, name, [port]}.
type Backend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec lists the endpoints.
	Spec BackendSpec `json:"spec"`
}

// BackendSpec lists the endpoints of a Backend.
type BackendSpec struct {
	// Endpoints of the backend. A backendRef's port, when set, replaces
	// every endpoint's port.
	// Validation: at least one.
	Endpoints []BackendEndpoint `json:"endpoints"`
}

// BackendEndpoint is exactly one of IP or FQDN.
type BackendEndpoint struct {
	// IP is an address and port.
	// Validation: exactly one of ip and fqdn.
	IP *IPEndpoint `json:"ip,omitempty"`
	// FQDN is a hostname the proxy resolves (Envoy: a STRICT_DNS cluster)
	// and a port.
	// Validation: exactly one of ip and fqdn.
	FQDN *FQDNEndpoint `json:"fqdn,omitempty"`
}

// IPEndpoint is an IPv4 or IPv6 address and a port.
type IPEndpoint struct {
	// Address is an IPv4 or IPv6 address. The backend address policy
	// (BackendAddressPolicy and the built-in rules) must allow it.
	Address string `json:"address"`
	// Port of the endpoint.
	// Validation: 1..65535.
	Port int32 `json:"port"`
}

// FQDNEndpoint is a hostname the proxy resolves, and a port.
type FQDNEndpoint struct {
	// Hostname is a DNS name (RFC 1123 subdomain). The backend address
	// policy must allow it.
	Hostname string `json:"hostname"`
	// Port of the endpoint.
	// Validation: 1..65535.
	Port int32 `json:"port"`
}
