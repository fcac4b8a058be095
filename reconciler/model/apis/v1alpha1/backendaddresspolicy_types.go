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
	Spec              BackendAddressPolicySpec `json:"spec"`
}

// BackendAddressPolicySpec lists the rules.
type BackendAddressPolicySpec struct {
	Allow *AddressRules `json:"allow,omitempty"`
	Deny  *AddressRules `json:"deny,omitempty"`
}

// AddressRules match Backend endpoints: ip endpoints by CIDR, fqdn
// endpoints by hostname glob ("*" matches any characters, dots included:
// "kubernetes.default.svc*").
type AddressRules struct {
	CIDRs []string `json:"cidrs,omitempty"`
	FQDNs []string `json:"fqdns,omitempty"`
}
