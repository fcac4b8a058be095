package model

import (
	"fmt"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// resolveBackend resolves a backendRef of route r to a cluster name. It
// records a ResolvedRefs problem on r and returns ok=false when the
// reference is not usable.
func (b *builder) resolveBackend(r *route, where string, ref gwv1.BackendObjectReference) (cluster, backendKey string, ok bool) {
	group := ""
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	kind := "Service"
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	if group == "" && kind == kindService {
		return b.resolveService(r, where, ref)
	}
	if group != v1alpha1.Group || kind != v1alpha1.KindBackend {
		r.refProblem(gwv1.RouteReasonInvalidKind, "%s: %s %s is not supported; refer to a Service (the default kind) or a Backend with group: gitxds.dev, kind: Backend", where, groupKind(ref.Group, gwv1.Kind(kind)), ref.Name)
		return "", "", false
	}
	ns := r.obj.src.Namespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	if !b.permitted(gatewayGroup, r.obj.src.Kind, r.obj.src.Namespace, v1alpha1.Group, v1alpha1.KindBackend, ns, string(ref.Name)) {
		r.refProblem(gwv1.RouteReasonRefNotPermitted, "%s: Backend %s/%s is in another namespace and no ReferenceGrant in namespace %s allows %s of namespace %s to use it; ask team %s to add one", where, ns, ref.Name, ns, r.obj.src.Kind, r.obj.src.Namespace, ns)
		return "", "", false
	}
	key := ns + "/" + string(ref.Name)
	be, found := b.backends[key]
	if why, ok := b.refused[key]; ok && !found {
		r.refProblem(gwv1.RouteReasonRefNotPermitted, "%s: Backend %s is refused by the backend address policy: %s", where, key, why)
		return "", "", false
	}
	if !found {
		r.refProblem(gwv1.RouteReasonBackendNotFound, "%s: %s", where, b.noBackend(ns, string(ref.Name)))
		return "", "", false
	}
	if ref.Port != nil && !validPort(*ref.Port) {
		r.refProblem(gwv1.RouteReasonUnsupportedValue, "%s: port %d must be 1..65535", where, *ref.Port)
		return "", "", false
	}
	name := b.backendCluster(be, key, (*int32)(ref.Port))
	return name, key, true
}

// backendCluster is the cluster of Backend key (at port, when set),
// created on first use.
func (b *builder) backendCluster(be *backend, key string, port *int32) string {
	name := key
	eps := be.endpoints
	if port != nil {
		name = fmt.Sprintf("%s:%d", key, *port)
		eps = make([]ir.Endpoint, len(be.endpoints))
		for i, e := range be.endpoints {
			eps[i] = ir.Endpoint{Address: e.Address, Port: uint32(*port)}
		}
		sortEndpoints(eps)
		eps = dedupEndpoints(eps)
	}
	if _, ok := b.clusters[name]; !ok {
		b.clusters[name] = &ir.Cluster{Name: name, Owner: be.obj.ref(), Endpoints: eps, DNS: be.dns}
	}
	return name
}

func dedupEndpoints(eps []ir.Endpoint) []ir.Endpoint {
	out := eps[:0]
	for i, e := range eps {
		if i == 0 || e != eps[i-1] {
			out = append(out, e)
		}
	}
	return out
}

// backendAction sets the action of IR route m from weighted backendRefs:
// the valid ones with a weight become Backends; the weight of invalid ones
// gets HTTP 500 (Route.InvalidWeight); a rule with no valid backend with
// weight answers 500 (DirectResponse), as Gateway API requires.
func (b *builder) backendAction(r *route, refs []gwv1.BackendRef, where string) (backends []ir.WeightedBackend, invalid uint32, keys []string) {
	for i, ref := range refs {
		w := uint32(1)
		if ref.Weight != nil {
			if *ref.Weight < 0 {
				// Rejected by validation before; defensive.
				continue
			}
			w = uint32(*ref.Weight)
		}
		name, key, ok := b.resolveBackend(r, fmt.Sprintf("%s.backendRefs[%d]", where, i), ref.BackendObjectReference)
		if !ok {
			invalid += w
			last := &r.refProblems[len(r.refProblems)-1]
			last.msg += " (its share of the rule's requests gets HTTP 500)"
			continue
		}
		keys = append(keys, key)
		if w == 0 {
			continue
		}
		merged := false
		for j := range backends {
			if backends[j].Cluster == name {
				backends[j].Weight += w
				merged = true
			}
		}
		if !merged {
			backends = append(backends, ir.WeightedBackend{Cluster: name, Weight: w})
		}
	}
	return backends, invalid, keys
}

// setAction gives every match of a rule its backends, or a 500.
func setAction(m *ir.Route, backends []ir.WeightedBackend, invalid uint32) {
	if len(backends) == 0 {
		m.DirectResponse = &ir.DirectResponse{Status: 500}
		return
	}
	m.Backends = append([]ir.WeightedBackend(nil), backends...)
	m.InvalidWeight = invalid
}
