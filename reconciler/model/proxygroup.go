package model

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// AnnotationProxyGroup puts a Gateway in a proxy group: a DNS label naming
// the proxies that serve it. A node declares its group with the node
// metadata key of the same name (snapshot.GroupLabel) and is served the
// Gateways of its group only; a node without it, the Gateways without the
// annotation. Listener conflicts (ports, hostnames, protocols) are decided
// within a group: an internal and an external Gateway may both listen on
// port 80 without hostnames when their groups differ, as each Gateway of a
// cluster gets proxies of its own. Hostname ownership stays global.
const AnnotationProxyGroup = "gitxds.dev/proxy-group"

// proxyGroup returns the Gateway's proxy group ("" for the default one)
// and why the annotation is invalid, or "".
func proxyGroup(gw *gwv1.Gateway) (string, string) {
	v, ok := gw.Annotations[AnnotationProxyGroup]
	if !ok {
		return "", ""
	}
	if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
		return "", fmt.Sprintf("annotation %s: %q must be a DNS label (lower-case letters, digits and '-', at most 63 characters): %s", AnnotationProxyGroup, v, strings.Join(errs, "; "))
	}
	return v, ""
}
