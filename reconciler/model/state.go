package model

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/status"
)

// Condition types and reasons of gitxds's own, for what Gateway API has no
// word for. Gateway API's own come from sigs.k8s.io/gateway-api/apis/v1.
const (
	CondAccepted         = "Accepted"
	CondResolvedRefs     = "ResolvedRefs"
	CondPartiallyInvalid = "PartiallyInvalid"
	CondProgrammed       = "Programmed"
	CondConflicted       = "Conflicted"
	// CondOverlapped is True on a route one of whose matches can never be
	// selected because a route of higher precedence has the same match on
	// the same hostname.
	CondOverlapped = "Overlapped"

	// ReasonInvalid: the object does not decode strictly or breaks a rule of
	// its schema.
	ReasonInvalid = "Invalid"
	// ReasonUnsupportedKind: gitxds does not know this kind.
	ReasonUnsupportedKind = "UnsupportedKind"
	// ReasonInvalidNamespace: a team's object is not in the team's namespace.
	ReasonInvalidNamespace = "InvalidNamespace"
	// ReasonNotOwner: the object's directory may not define this kind.
	ReasonNotOwner = "NotOwner"
	// ReasonDuplicate: two objects of the revision have the same kind,
	// namespace and name.
	ReasonDuplicate = "Duplicate"
	// ReasonShadowed: a match is shadowed by a route of higher precedence.
	ReasonShadowed = "Shadowed"
	// ReasonHostnameConflict: an HTTPRoute and a GRPCRoute claim
	// intersecting hostnames on one listener; the older one holds it.
	ReasonHostnameConflict = "HostnameConflict"
	// ReasonNoOverlap: no match is shadowed.
	ReasonNoOverlap = "NoOverlap"
	// ReasonPatchFailed: an EnvoyPatchPolicy does not apply, or its result
	// is not valid Envoy configuration; it is left out.
	ReasonPatchFailed = "PatchFailed"
)

// object is one input object and what the model found out about it.
type object struct {
	src render.Object
	// owner is the namespace the object's directory owns: the team of
	// teams/<team>/, or "platform" for platform/; empty if neither.
	owner string
	typed any
	// dropped objects contribute nothing to the IR.
	dropped bool
	// lostClaim: a route lost a listener to a conflict with a route that
	// holds the claim; if it has a last accepted version, that one serves.
	lostClaim bool
	conds     []metav1.Condition
	// line in src.File of the field a rejection is about; 0 if unknown.
	line int
	// parents and listeners are Gateway API's status.parents of a route
	// and status.listeners of a Gateway (gwstatus.go).
	parents   []gwv1.RouteParentStatus
	listeners []gwv1.ListenerStatus
	ancestors []gwv1.PolicyAncestorStatus
	// addresses is Gateway API's status.addresses of a served Gateway:
	// the addresses its annotation AnnotationAddresses declares.
	addresses []gwv1.GatewayStatusAddress
	// proxyGroup is the proxy group of a served Gateway that names one.
	proxyGroup string
}

func (o *object) isRoute() bool { return o.src.Kind == "HTTPRoute" || o.src.Kind == "GRPCRoute" }

func (o *object) ref() ir.ObjectRef {
	return ir.ObjectRef{Kind: o.src.Kind, Namespace: o.src.Namespace, Name: o.src.Name, File: o.src.File}
}

// set records a condition, replacing one of the same type.
func (o *object) set(typ string, st metav1.ConditionStatus, reason, msg string) {
	c := metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg}
	for i := range o.conds {
		if o.conds[i].Type == typ {
			o.conds[i] = c
			return
		}
	}
	o.conds = append(o.conds, c)
}

func (o *object) get(typ string) *metav1.Condition {
	for i := range o.conds {
		if o.conds[i].Type == typ {
			return &o.conds[i]
		}
	}
	return nil
}

// reject drops the object: Accepted=False with reason and a message naming
// the file and the object.
func (o *object) reject(reason, format string, args ...any) {
	o.dropped = true
	o.set(CondAccepted, metav1.ConditionFalse, reason, o.msg(format, args...))
}

// msg prefixes a message with the object's file (and line, when a
// rejection found it) and id.
func (o *object) msg(format string, args ...any) string {
	return fmt.Sprintf("%s: %s: %s", status.FileLine(o.src.File, o.line), o.src.ID(), fmt.Sprintf(format, args...))
}

func (o *object) status() status.Object {
	conds := make([]metav1.Condition, len(o.conds))
	copy(conds, o.conds)
	st := status.Object{ObjectRef: o.ref(), Line: o.line, Conditions: conds, Parents: o.parents, Listeners: o.listeners, Ancestors: o.ancestors, Addresses: o.addresses, ProxyGroup: o.proxyGroup}
	if status.Problem(st) != nil {
		st.Served = status.ServedPart
		if o.dropped || (!o.isRoute() && o.get(CondAccepted) != nil && o.get(CondAccepted).Status == metav1.ConditionFalse) {
			// A route with Accepted=False that is not dropped is attached
			// to some listeners; any other kind is not served at all.
			st.Served = status.ServedNone
		}
	}
	return st
}

// builder is the per-call state of one build pass.
type builder struct {
	objects []*object
	decoded *DecodeCache // decoding of objects, shared across passes and revisions
	source  SourceFunc   // Input.Source
	// last and since are Input.LastAccepted and Input.FirstAccepted.
	last  map[string]render.Object
	since map[string]Since

	nsLabels map[string]map[string]string
	rollout  *v1alpha1.RolloutPolicy
	// rolloutObj is the object of rollout.
	rolloutObj *object
	// backends by "ns/name".
	backends map[string]*backend
	// refused Backends by "ns/name": why the address policy denies them.
	refused    map[string]string
	addrPolicy *addressPolicy
	grants     []*grant
	gws        []*gateway
	// allGws are every Gateway decoded, accepted or not, by namespace/name.
	allGws []*gateway
	rts    []*route
	// systemCA is Input.SystemCAFile.
	systemCA string
	// routeOf is the route built for each route object (dropped or not).
	routeOf  map[*object]*route
	pols     *policyIndex
	clusters map[string]*ir.Cluster
	// owners of hostnames, most specific pattern first (hostowners.go).
	owners []hostOwner
	// hostnames: validHostname of the hostnames checked so far.
	hostnames map[string]string
	// services is Input.Services, with its defaults.
	services Services
	// cluster is Input.Cluster: nil when the cluster's objects are unknown.
	cluster Cluster

	ir *ir.IR
}

func newBuilder(objs []render.Object) *builder {
	b := &builder{
		nsLabels:   map[string]map[string]string{},
		backends:   map[string]*backend{},
		refused:    map[string]string{},
		addrPolicy: newAddressPolicy(),
		clusters:   map[string]*ir.Cluster{},
		hostnames:  map[string]string{},
		routeOf:    map[*object]*route{},
	}
	for _, o := range objs {
		b.objects = append(b.objects, &object{src: o})
	}
	return b
}

// live returns the objects not dropped so far.
func (b *builder) live() []*object {
	var out []*object
	for _, o := range b.objects {
		if !o.dropped {
			out = append(out, o)
		}
	}
	return out
}

// finishState gives every object that has no Accepted condition yet
// Accepted=True.
func (b *builder) finishState() {
	for _, o := range b.objects {
		if o.get(CondAccepted) == nil {
			o.set(CondAccepted, metav1.ConditionTrue, "Accepted", "accepted")
		}
	}
}
