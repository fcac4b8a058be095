package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Backend is a static upstream: a list of IP or DNS endpoints. Routes refer to
// it with a backendRef {group: gitxds.dev, kind: Backend, name, [port]}.
type Backend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackendSpec `json:"spec"`
}

// BackendSpec lists the endpoints of a Backend.
type BackendSpec struct {
	// Endpoints of the backend; at least one.
	Endpoints []BackendEndpoint `json:"endpoints"`
}

// BackendEndpoint is exactly one of IP or FQDN.
type BackendEndpoint struct {
	IP   *IPEndpoint   `json:"ip,omitempty"`
	FQDN *FQDNEndpoint `json:"fqdn,omitempty"`
}

// IPEndpoint is an IPv4 or IPv6 address and a port.
type IPEndpoint struct {
	Address string `json:"address"`
	Port    int32  `json:"port"`
}

// FQDNEndpoint is a hostname the proxy resolves, and a port.
type FQDNEndpoint struct {
	Hostname string `json:"hostname"`
	Port     int32  `json:"port"`
}
