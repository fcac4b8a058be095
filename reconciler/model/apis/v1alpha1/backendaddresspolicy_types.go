package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// KindBackendAddressPolicy is the kind of BackendAddressPolicy.
const KindBackendAddressPolicy = "BackendAddressPolicy"

// BackendAddressPolicy says which addresses the platform lets Backends
// point the proxies at. Only platform/ may define it; every policy of the
// environment applies. The most specific rule that matches an address
// decides (the longest CIDR prefix; an exact hostname before a glob, then
// the longer glob), deny winning a tie. Built-in deny rules cover
// link-local, unspecified, multicast and broadcast addresses; an allow
// rule more specific than one of them lifts it.
type BackendAddressPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec lists the allow and deny rules.
	Spec BackendAddressPolicySpec `json:"spec"`
}

// BackendAddressPolicySpec lists the rules.
type BackendAddressPolicySpec struct {
	// Allow lists addresses Backends may use. An allow rule matters only
	// where it is more specific than a deny rule (built in or of a policy).
	Allow *AddressRules `json:"allow,omitempty"`
	// Deny lists addresses no Backend may use.
	Deny *AddressRules `json:"deny,omitempty"`
}

// AddressRules match Backend endpoints: ip endpoints by CIDR, fqdn
// endpoints by hostname glob ("*" matches any characters, dots included:
// "kubernetes.default.svc*").
type AddressRules struct {
	// CIDRs match ip endpoints, and fqdn endpoints whose hostname is an IP
	// address; a bare address is a /32 or /128. IPv4-mapped IPv6 addresses
	// are checked as IPv4.
	// Validation: each a CIDR or an IP address.
	CIDRs []string `json:"cidrs,omitempty"`
	// FQDNs are hostname globs matched against fqdn endpoints, case
	// insensitively; "localhost" is also checked as the loopback
	// addresses.
	// Validation: each a glob without "/".
	FQDNs []string `json:"fqdns,omitempty"`
}
