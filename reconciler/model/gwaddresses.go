package model

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// AnnotationAddresses declares where the clients of a Gateway reach the
// proxies that serve it: a comma-separated list of IP addresses and DNS
// hostnames ("203.0.113.10, gw.example.com"), typically the load balancer
// or DNS name in front of the fleet. gitxds assigns no address (its proxies
// listen on every address of their hosts, and every Gateway of the
// repository is served by every proxy) and does not check the ones declared:
// it reports them, in order, as the Gateway's status.addresses (type
// IPAddress or Hostname), which Gateway API clients read to reach it.
// spec.addresses stays refused: it asks the implementation to assign
// addresses, which gitxds cannot do.
const AnnotationAddresses = "gitxds.dev/addresses"

// gatewayAddresses parses the Gateway's AnnotationAddresses; it returns
// why the annotation is invalid, or "".
func gatewayAddresses(gw *gwv1.Gateway) ([]gwv1.GatewayStatusAddress, string) {
	v, ok := gw.Annotations[AnnotationAddresses]
	if !ok {
		return nil, ""
	}
	var out []gwv1.GatewayStatusAddress
	seen := map[string]bool{}
	for _, a := range strings.Split(v, ",") {
		a = strings.TrimSpace(a)
		typ := gwv1.IPAddressType
		if ip, err := netip.ParseAddr(a); err == nil {
			if ip.Zone() != "" {
				return nil, fmt.Sprintf("annotation %s: %q has a zone; give the address without it", AnnotationAddresses, a)
			}
			a = ip.String()
		} else {
			typ = gwv1.HostnameAddressType
			if errs := validation.IsDNS1123Subdomain(a); len(errs) > 0 {
				return nil, fmt.Sprintf("annotation %s: %q is neither an IP address nor a DNS hostname: %s", AnnotationAddresses, a, strings.Join(errs, "; "))
			}
		}
		if seen[a] {
			return nil, fmt.Sprintf("annotation %s: %q is listed twice", AnnotationAddresses, a)
		}
		seen[a] = true
		out = append(out, gwv1.GatewayStatusAddress{Type: &typ, Value: a})
	}
	return out, ""
}
