package model

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/status"
)

// gatewayAPI writes the status Gateway API defines for routes and Gateways,
// next to the summary conditions the other steps set:
//
//   - every HTTPRoute and GRPCRoute gets status.parents, one entry per
//     parentRef with status.ControllerName: Accepted for that parent
//     (Accepted, NotAllowedByListeners, NoMatchingListenerHostname,
//     NoMatchingParent, HostnameNotOwned, HostnameConflict, or the reason
//     that rejected the whole route), then the conditions that concern the
//     whole route (ResolvedRefs, PartiallyInvalid, Overlapped);
//   - every Gateway whose listeners were checked gets status.listeners, one
//     entry per listener with supportedKinds, attachedRoutes (routes
//     attached after hostname conflicts) and Accepted, Programmed,
//     ResolvedRefs and Conflicted.
func (b *builder) gatewayAPI() {
	attached := map[*listener]int32{}
	for _, r := range b.rts {
		for _, a := range r.attached {
			attached[a.l]++
		}
	}
	for _, g := range b.allGws {
		g.obj.listeners = make([]gwv1.ListenerStatus, 0, len(g.all))
		for _, l := range g.all {
			n := attached[l]
			if l.problem != "" {
				n = b.wouldAttach(l)
			}
			g.obj.listeners = append(g.obj.listeners, l.status(n))
		}
	}
	for _, o := range b.objects {
		var refs []gwv1.ParentReference
		switch t := o.typed.(type) {
		case *gwv1.HTTPRoute:
			refs = t.Spec.ParentRefs
		case *gwv1.GRPCRoute:
			refs = t.Spec.ParentRefs
		default:
			continue
		}
		o.parents = routeParents(o, b.routeOf[o], refs)
	}
}

// wouldAttach counts the routes that attach to invalid listener l as
// Gateway API defines attachment for attachedRoutes ("based solely on the
// combination of the AllowedRoutes field on the corresponding Listener and
// the Route's ParentRefs field"): a parentRef selects l (its Gateway, and
// its sectionName and port if set), l's allowedRoutes admit the route's
// kind and namespace, and a hostname of the route intersects l's. Nothing
// is served on l, but its status says which routes its fix would bring in.
func (b *builder) wouldAttach(l *listener) int32 {
	var n int32
	for _, o := range b.objects {
		var refs []gwv1.ParentReference
		var hosts []gwv1.Hostname
		switch t := o.typed.(type) {
		case *gwv1.HTTPRoute:
			refs, hosts = t.Spec.ParentRefs, t.Spec.Hostnames
		case *gwv1.GRPCRoute:
			refs, hosts = t.Spec.ParentRefs, t.Spec.Hostnames
		default:
			continue
		}
		if c := o.get(CondAccepted); o.dropped && c != nil && !parentReasons[c.Reason] {
			// Rejected for itself (ownership, validation), not for its
			// parents.
			continue
		}
		if !selects(refs, l, o.src.Namespace) || l.allows(o.src.Kind, o.src.Namespace, b.nsLabels) != "" {
			continue
		}
		hs := make([]string, len(hosts))
		for i, h := range hosts {
			hs[i] = string(h)
		}
		if len(intersect(l.ir.Hostname, hs)) > 0 {
			n++
		}
	}
	return n
}

// parentReasons are the reasons of a route's Accepted=False that are about
// its parents.
var parentReasons = map[string]bool{
	string(gwv1.RouteReasonNoMatchingParent):           true,
	string(gwv1.RouteReasonNotAllowedByListeners):      true,
	string(gwv1.RouteReasonNoMatchingListenerHostname): true,
}

// selects reports whether a parentRef of refs (of a route of namespace ns)
// names listener l.
func selects(refs []gwv1.ParentReference, l *listener, ns string) bool {
	for _, p := range refs {
		if (p.Group != nil && string(*p.Group) != gatewayGroup) || (p.Kind != nil && *p.Kind != "Gateway") {
			continue
		}
		pns := ns
		if p.Namespace != nil {
			pns = string(*p.Namespace)
		}
		if pns != l.gw.gw.Namespace || string(p.Name) != l.gw.gw.Name ||
			p.SectionName != nil && string(*p.SectionName) != l.ir.Name ||
			p.Port != nil && uint32(*p.Port) != l.ir.Port {
			continue
		}
		return true
	}
	return false
}

// routeParents is status.parents of route object o; r is the route built
// for it, nil if it was rejected before attaching.
func routeParents(o *object, r *route, refs []gwv1.ParentReference) []gwv1.RouteParentStatus {
	if len(refs) == 0 {
		return nil
	}
	// Conditions of the whole route, in every parent.
	var shared []metav1.Condition
	for _, c := range o.conds {
		if c.Type != CondAccepted {
			shared = append(shared, c)
		}
	}
	out := make([]gwv1.RouteParentStatus, 0, len(refs))
	for i, p := range refs {
		var acc metav1.Condition
		switch {
		case r == nil || r.byParent == nil:
			// Rejected as a whole (decoding, ownership, validation).
			c := o.get(CondAccepted)
			if c == nil {
				return nil
			}
			acc = *c
		default:
			acc = parentAccepted(o, r, r.byParent[i])
		}
		conds := append([]metav1.Condition{acc}, shared...)
		out = append(out, gwv1.RouteParentStatus{
			ParentRef:      defaultParentRef(p, o.src.Namespace),
			ControllerName: status.ControllerName,
			Conditions:     conds,
		})
	}
	return out
}

// parentAccepted is the Accepted condition of one parentRef: False with
// attach's reason when it attached to no listener, False reason
// HostnameConflict when it lost a listener to a route of the other kind,
// True otherwise.
func parentAccepted(o *object, r *route, pr parentResult) metav1.Condition {
	if len(pr.atts) == 0 {
		return metav1.Condition{Type: CondAccepted, Status: metav1.ConditionFalse, Reason: pr.reason, Message: o.msg("%s", pr.msg)}
	}
	var lost, kept []string
	for _, a := range pr.atts {
		if why, ok := r.lost[a.l]; ok {
			lost = append(lost, fmt.Sprintf("%s: %s", a.l.where(), why))
			continue
		}
		kept = append(kept, fmt.Sprintf("%s (%s)", a.l.where(), strings.Join(a.hosts, ", ")))
	}
	if len(lost) > 0 {
		return metav1.Condition{Type: CondAccepted, Status: metav1.ConditionFalse, Reason: ReasonHostnameConflict, Message: o.msg("%s", strings.Join(lost, "; "))}
	}
	sort.Strings(kept)
	return metav1.Condition{Type: CondAccepted, Status: metav1.ConditionTrue, Reason: string(gwv1.RouteReasonAccepted),
		Message: "attached to " + strings.Join(kept, "; ") + r.notesText()}
}

// defaultParentRef fills in what the Kubernetes API server defaults in a
// parentRef (group, kind) and the namespace, which defaults to the route's,
// so the status names its parent the way Gateway API clients compare it.
func defaultParentRef(p gwv1.ParentReference, ns string) gwv1.ParentReference {
	out := *p.DeepCopy()
	if out.Group == nil {
		g := gwv1.Group(gatewayGroup)
		out.Group = &g
	}
	if out.Kind == nil {
		k := gwv1.Kind("Gateway")
		out.Kind = &k
	}
	if out.Namespace == nil {
		n := gwv1.Namespace(ns)
		out.Namespace = &n
	}
	return out
}

// status is status.listeners[] of the listener. An invalid listener is not
// served (Programmed=False reason Invalid); its problem sets Conflicted=True
// (HostnameConflict, ProtocolConflict), ResolvedRefs=False
// (InvalidCertificateRef, RefNotPermitted, InvalidRouteKinds) or Accepted=False
// (UnsupportedProtocol, UnsupportedValue), and Accepted=False in every case
// since gitxds serves nothing of it.
func (l *listener) status(attached int32) gwv1.ListenerStatus {
	kinds := make([]gwv1.RouteGroupKind, len(l.supported))
	copy(kinds, l.supported)
	st := gwv1.ListenerStatus{Name: gwv1.SectionName(l.ir.Name), SupportedKinds: kinds, AttachedRoutes: attached}
	cond := func(typ string, s metav1.ConditionStatus, reason gwv1.ListenerConditionReason, msg string) {
		st.Conditions = append(st.Conditions, metav1.Condition{Type: typ, Status: s, Reason: string(reason), Message: msg})
	}
	if l.problem == "" {
		resolved := l.resolved
		if resolved == "" {
			resolved = "all references resolved"
		}
		cond(string(gwv1.ListenerConditionAccepted), metav1.ConditionTrue, gwv1.ListenerReasonAccepted, "accepted")
		cond(string(gwv1.ListenerConditionProgrammed), metav1.ConditionTrue, gwv1.ListenerReasonProgrammed, "served")
		cond(string(gwv1.ListenerConditionResolvedRefs), metav1.ConditionTrue, gwv1.ListenerReasonResolvedRefs, resolved)
		cond(string(gwv1.ListenerConditionConflicted), metav1.ConditionFalse, gwv1.ListenerReasonNoConflicts, "no conflicts")
		return st
	}
	msg := l.where() + ": " + l.problem
	cond(string(gwv1.ListenerConditionAccepted), metav1.ConditionFalse, l.reason, msg)
	cond(string(gwv1.ListenerConditionProgrammed), metav1.ConditionFalse, gwv1.ListenerReasonInvalid, "not served: "+l.problem)
	switch l.reason {
	case gwv1.ListenerReasonInvalidCertificateRef, gwv1.ListenerReasonRefNotPermitted, gwv1.ListenerReasonInvalidRouteKinds:
		cond(string(gwv1.ListenerConditionResolvedRefs), metav1.ConditionFalse, l.reason, msg)
	default:
		cond(string(gwv1.ListenerConditionResolvedRefs), metav1.ConditionTrue, gwv1.ListenerReasonResolvedRefs, "all references resolved")
	}
	switch l.reason {
	case gwv1.ListenerReasonHostnameConflict, gwv1.ListenerReasonProtocolConflict:
		cond(string(gwv1.ListenerConditionConflicted), metav1.ConditionTrue, l.reason, msg)
	default:
		cond(string(gwv1.ListenerConditionConflicted), metav1.ConditionFalse, gwv1.ListenerReasonNoConflicts, "no conflicts")
	}
	return st
}

// routeGroupKind is a supported kind of a listener.
func routeGroupKind(kind string) gwv1.RouteGroupKind {
	g := gwv1.Group(gatewayGroup)
	return gwv1.RouteGroupKind{Group: &g, Kind: gwv1.Kind(kind)}
}
