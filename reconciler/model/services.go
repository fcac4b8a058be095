package model

import (
	"fmt"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
)

// kindService is the kind of a backendRef without one: a Kubernetes
// Service of the core group ("").
const kindService = "Service"

// DefaultClusterDomain is the DNS domain of a Kubernetes cluster unless
// its kubelets say otherwise (--cluster-domain).
const DefaultClusterDomain = "cluster.local"

// Services says how Service backendRefs resolve.
//
// A Service is not an object of the repository: it lives in the
// Kubernetes cluster the proxies send to. With Kubernetes set (gitxds
// serve with a kube client), its cluster is an EDS cluster without
// endpoints in the revision: they are discovered from the Service's
// EndpointSlices at run time and pushed to every node without a revision
// (package discovery). Otherwise (the offline commands, or serve without
// Kubernetes access) the proxies resolve the Service's DNS name,
// <name>.<namespace>.svc.<ClusterDomain>: a STRICT_DNS cluster on Envoy,
// LOGICAL_DNS on gRPC (one hostname, as for an FQDN Backend).
type Services struct {
	Kubernetes bool
	// ClusterDomain of Service DNS names; DefaultClusterDomain when empty.
	ClusterDomain string
}

func (s Services) withDefaults() Services {
	if s.ClusterDomain == "" {
		s.ClusterDomain = DefaultClusterDomain
	}
	return s
}

// Resolution names how Service endpoints are resolved, for route status.
func (s Services) resolution() string {
	if s.Kubernetes {
		return "endpoints from the Service's EndpointSlices (Kubernetes API)"
	}
	return "DNS name resolved by the proxies (no Kubernetes API access)"
}

// dnsName is the cluster DNS name of Service ns/name.
func (s Services) dnsName(ns, name string) string {
	return name + "." + ns + ".svc." + s.ClusterDomain
}

// resolveService resolves a backendRef to a Service: the port is
// required (Gateway API: "Port is required when the referent is a
// Kubernetes Service"); another namespace needs a ReferenceGrant there for
// Services; the Service's DNS name must pass the backend address policy,
// whichever way it is resolved. The route's status says which way
// (a note on Accepted).
func (b *builder) resolveService(r *route, where string, ref gwv1.BackendObjectReference) (cluster, key string, ok bool) {
	ns := r.obj.src.Namespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	if ref.Port == nil {
		r.refProblem(gwv1.RouteReasonUnsupportedValue, "%s: Service %s/%s needs a port", where, ns, ref.Name)
		return "", "", false
	}
	if !validPort(*ref.Port) {
		r.refProblem(gwv1.RouteReasonUnsupportedValue, "%s: port %d must be 1..65535", where, *ref.Port)
		return "", "", false
	}
	if !b.permitted(gatewayGroup, r.obj.src.Kind, r.obj.src.Namespace, "", kindService, ns, string(ref.Name)) {
		r.refProblem(gwv1.RouteReasonRefNotPermitted, "%s: Service %s/%s is in another namespace and no ReferenceGrant in namespace %s allows %s of namespace %s to use it; ask team %s to add one", where, ns, ref.Name, ns, r.obj.src.Kind, r.obj.src.Namespace, ns)
		return "", "", false
	}
	if _, found := b.serviceOf(ns, string(ref.Name)); !found {
		r.refProblem(gwv1.RouteReasonBackendNotFound, "%s: Service %s/%s does not exist in the Kubernetes API", where, ns, ref.Name)
		return "", "", false
	}
	host := b.services.dnsName(ns, string(ref.Name))
	if rule := b.addrPolicy.checkFQDN(host); rule != "" {
		r.refProblem(gwv1.RouteReasonRefNotPermitted, "%s: Service %s/%s is refused by the backend address policy: %s is denied by %s", where, ns, ref.Name, host, rule)
		return "", "", false
	}
	svc := ir.ServiceRef{Namespace: ns, Name: string(ref.Name), Port: uint32(*ref.Port)}
	name := ir.ServiceClusterName(svc)
	if c, ok := b.clusters[name]; ok && r.obj.ref().String() < c.Owner.String() {
		// Several routes send to the Service: the first by kind,
		// namespace and name owns its cluster, whatever the order of the
		// files.
		c.Owner = r.obj.ref()
	} else if !ok {
		c := &ir.Cluster{Name: name, Owner: r.obj.ref(), Service: &svc}
		if !b.services.Kubernetes {
			c.DNS = true
			c.Endpoints = []ir.Endpoint{{Address: host, Port: svc.Port}}
		}
		b.clusters[name] = c
	}
	note := fmt.Sprintf("Service %s/%s: %s", ns, ref.Name, b.services.resolution())
	if !contains(r.notes, note) {
		r.notes = append(r.notes, note)
	}
	// Keyed apart from Backends: no BackendTrafficPolicy targets a Service.
	return name, serviceKey(ns, string(ref.Name)), true
}

// serviceOf returns the ports of Service ns/name as Cluster knows them;
// found is true when the cluster is not known (a Service is then assumed
// to exist) with no ports.
func (b *builder) serviceOf(ns, name string) (ports map[string]int32, found bool) {
	if b.cluster == nil {
		return nil, true
	}
	return b.cluster.Service(ns, name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
