// Package status holds the Flux-style status of gitxds and the per-object
// Gateway API status the model produces.
package status

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
)

// ControllerName is the controllerName gitxds writes in the status of the
// routes it attaches (status.parents[].controllerName), as a Gateway API
// controller does; a GatewayClass served by gitxds names it in
// spec.controllerName.
const ControllerName gwv1.GatewayController = "gitxds.dev/gateway-controller"

// Object is the status of one object of the repository.
type Object struct {
	ir.ObjectRef `json:",inline"`
	// Line in File of the field the object's problem is about (a field
	// that does not decode), when it is known; 0 otherwise.
	Line int `json:"line,omitempty"`
	// Conditions with Gateway API types and reasons (Accepted, ResolvedRefs,
	// PartiallyInvalid, Conflicted, ...). ObservedGeneration is unused.
	// For a route they summarise Parents: Accepted is True only when every
	// parentRef attached, otherwise False with the first failing parent's
	// reason; ResolvedRefs, PartiallyInvalid and Overlapped concern the
	// whole route and appear in every parent too. Problem and Line read
	// these.
	Conditions []metav1.Condition `json:"conditions"`
	// Parents is, for an HTTPRoute or GRPCRoute, Gateway API's
	// status.parents: one entry per parentRef (group, kind and namespace
	// filled in), with ControllerName and the conditions of that parent.
	Parents []gwv1.RouteParentStatus `json:"parents,omitempty"`
	// Listeners is, for a Gateway, Gateway API's status.listeners: one
	// entry per listener of the spec, in its order, with supportedKinds,
	// attachedRoutes and the conditions Accepted, Programmed, ResolvedRefs
	// and Conflicted.
	Listeners []gwv1.ListenerStatus `json:"listeners,omitempty"`
	// Addresses is, for a served Gateway, Gateway API's status.addresses:
	// the addresses its clients reach the proxies at, as the Gateway's
	// gitxds.dev/addresses annotation declares them (gitxds assigns no
	// address; its proxies listen on every address of their hosts).
	Addresses []gwv1.GatewayStatusAddress `json:"addresses,omitempty"`
	// ProxyGroup is, for a served Gateway annotated gitxds.dev/proxy-group,
	// the proxy group whose nodes serve it (empty: the nodes that name no
	// group).
	ProxyGroup string `json:"proxyGroup,omitempty"`
	// Ancestors is, for a BackendTLSPolicy, Gateway API's
	// status.ancestors: one entry per Gateway that routes to a target of
	// the policy, with ControllerName and the policy's Accepted and
	// ResolvedRefs.
	Ancestors []gwv1.PolicyAncestorStatus `json:"ancestors,omitempty"`
	// ServingLastAccepted is set when this revision's version of the object
	// was rejected and its last accepted version keeps serving.
	ServingLastAccepted string `json:"servingLastAccepted,omitempty"`
	// PatchedByOverlay names the overlay kustomization that changed this
	// team object: what is served differs from the team's own files, by
	// the platform's doing.
	PatchedByOverlay string `json:"patchedByOverlay,omitempty"`
	// Served says how much of an object that is not fully accepted is
	// served; empty for a fully accepted object.
	Served Served `json:"served,omitempty"`
}

// Served is how much of an object that is not fully accepted is served.
type Served string

const (
	// ServedNone: rejected, nothing of it is served.
	ServedNone Served = "none"
	// ServedPart: accepted with problems (a reference unresolved, a
	// listener or hostname lost, a match shadowed): the rest is served.
	ServedPart Served = "part"
	// ServedLastAccepted: this version is rejected and the last accepted
	// version keeps serving.
	ServedLastAccepted Served = "lastAccepted"
)

// Label says it for reviewers, as validate, diff and preview print it.
func (s Served) Label() string {
	switch s {
	case ServedPart:
		return "served in part"
	case ServedLastAccepted:
		return "rejected; keeps serving its last accepted version"
	}
	return "rejected"
}

// Accepted reports whether the object's Accepted condition is True and no
// condition reports a problem (ResolvedRefs=False, PartiallyInvalid=True, ...).
func (o Object) Accepted() bool {
	return Problem(o) == nil
}

// Problem returns the first condition that makes the object not fully
// accepted, or nil.
func Problem(o Object) *metav1.Condition {
	for i := range o.Conditions {
		c := &o.Conditions[i]
		switch c.Type {
		case "Accepted", "ResolvedRefs", "Programmed":
			if c.Status != metav1.ConditionTrue {
				return c
			}
		case "PartiallyInvalid", "Conflicted", "Overlapped":
			if c.Status == metav1.ConditionTrue {
				return c
			}
		}
	}
	return nil
}

// Sort orders objects by file, kind, namespace, name.
func Sort(objs []Object) {
	sort.Slice(objs, func(i, j int) bool {
		a, b := objs[i], objs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}
