package model

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
)

// route is an HTTPRoute or GRPCRoute being built.
type route struct {
	obj    *object
	nsName string // "namespace/name"
	// seniority is the route's place among all routes, oldest first
	// (age.go): ties of precedence and conflicts go to the lowest.
	seniority int
	grpc      bool
	hostnames []string
	parents   []gwv1.ParentReference
	// ruleNames are the rules' names ("" when unnamed), by rule index.
	ruleNames []string
	// matches are the IR routes of every rule, in rule and match order.
	matches []*match
	// attached listeners with the hostnames the route serves on each.
	attached []attachment
	// notOwned: hostnames the route claims that another namespace owns.
	notOwned []string
	// refProblems explain ResolvedRefs=False; the first reason wins.
	refProblems []refProblem
	// backendRefs per rule index: the Backends ("ns/name") a rule sends to.
	ruleBackends [][]string
	// notes are added to the Accepted message: what is served differently
	// to some clients.
	notes []string
	// byParent is what attach found for each parentRef, by index
	// (status.parents, gwstatus.go).
	byParent []parentResult
	// lost are the listeners the route lost to a hostname conflict, with
	// the message that says so (conflicts).
	lost map[*listener]string
}

// parentResult is what attach found for one parentRef: the listeners it
// attached to, or the reason and message why it attached to none.
type parentResult struct {
	atts   []attachment
	reason string
	msg    string
}

func (r *route) notesText() string {
	if len(r.notes) == 0 {
		return ""
	}
	return "; " + strings.Join(r.notes, "; ")
}

// incompatibleFilters marks a validation message whose reason is
// IncompatibleFilters rather than UnsupportedValue.
const incompatibleFilters = "(IncompatibleFilters)"

type refProblem struct{ reason, msg string }

// match is one IR route: one match of one rule.
type match struct {
	ir   ir.Route
	rule int
	idx  int
	rank rank
}

type attachment struct {
	l     *listener
	hosts []string
}

func (r *route) key() string { return r.nsName }

// refProblem records a reference that could not be resolved.
func (r *route) refProblem(reason gwv1.RouteConditionReason, format string, args ...any) {
	r.refProblems = append(r.refProblems, refProblem{string(reason), fmt.Sprintf(format, args...)})
}

// routes builds the IR routes of every HTTPRoute and GRPCRoute and attaches
// them to listeners.
//
// Sets on routes: Accepted (Accepted, NotAllowedByListeners,
// NoMatchingListenerHostname, NoMatchingParent, UnsupportedValue,
// IncompatibleFilters) and ResolvedRefs (ResolvedRefs, RefNotPermitted,
// InvalidKind, BackendNotFound).
func (b *builder) routes() {
	for _, o := range b.live() {
		var r *route
		var msg string
		switch t := o.typed.(type) {
		case *gwv1.HTTPRoute:
			r, msg = b.httpRoute(o, t)
		case *gwv1.GRPCRoute:
			r, msg = b.grpcRoute(o, t)
		default:
			continue
		}
		if r != nil {
			b.routeOf[o] = r
		}
		if msg != "" {
			reason := gwv1.RouteReasonUnsupportedValue
			if strings.Contains(msg, incompatibleFilters) {
				reason = gwv1.RouteReasonIncompatibleFilters
			}
			o.reject(string(reason), "%s", msg)
			continue
		}
		if reason, msg := b.attach(r); len(r.attached) == 0 {
			o.reject(reason, "%s", msg)
			// ResolvedRefs is about the route's references, whether a
			// parent accepts the route or not (Gateway API's
			// RouteConditionResolvedRefs).
			resolvedRefs(o, r)
			continue
		} else if msg != "" {
			o.set(CondAccepted, metav1.ConditionFalse, reason, o.msg("%s", msg))
		} else {
			o.set(CondAccepted, metav1.ConditionTrue, string(gwv1.RouteReasonAccepted), "attached to "+r.attachedTo()+r.notesText())
		}
		if owned := dedup(r.notOwned); len(owned) > 0 {
			o.set(CondPartiallyInvalid, metav1.ConditionTrue, ReasonHostnameNotOwned,
				o.msg("%s; only that namespace's routes are attached for it (ask the platform team to change the annotation)", strings.Join(owned, "; ")))
		}
		resolvedRefs(o, r)
		b.rts = append(b.rts, r)
	}
}

// resolvedRefs sets the route's ResolvedRefs condition from the problems
// its references had.
func resolvedRefs(o *object, r *route) {
	if len(r.refProblems) == 0 {
		o.set(CondResolvedRefs, metav1.ConditionTrue, string(gwv1.RouteReasonResolvedRefs), "all references resolved")
		return
	}
	var msgs []string
	for _, p := range r.refProblems {
		msgs = append(msgs, p.msg)
	}
	o.set(CondResolvedRefs, metav1.ConditionFalse, r.refProblems[0].reason, o.msg("%s", strings.Join(msgs, "; ")))
}

func (r *route) attachedTo() string {
	var out []string
	for _, a := range r.attached {
		out = append(out, fmt.Sprintf("%s (%s)", a.l.where(), strings.Join(a.hosts, ", ")))
	}
	return strings.Join(out, "; ")
}

// attach attaches a route to the listeners its parentRefs select and allow.
// It returns the reason and message of the parentRefs that did not attach.
func (b *builder) attach(r *route) (string, string) {
	if len(r.parents) == 0 {
		return string(gwv1.RouteReasonNoMatchingParent), "spec.parentRefs is empty: name the Gateway (and listener, with sectionName) to attach to"
	}
	var reason string
	var problems []string
	seen := map[*listener]bool{}
	r.byParent = make([]parentResult, len(r.parents))
	for i, p := range r.parents {
		atts, why, msg := b.attachParent(r, p)
		r.byParent[i] = parentResult{atts: atts, reason: why, msg: msg}
		if len(atts) == 0 {
			if reason == "" {
				reason = why
			}
			problems = append(problems, fmt.Sprintf("parentRefs[%d]: %s", i, msg))
			continue
		}
		for _, a := range atts {
			if !seen[a.l] {
				seen[a.l] = true
				r.attached = append(r.attached, a)
			}
		}
	}
	sort.SliceStable(r.attached, func(i, j int) bool {
		return r.attached[i].l.where() < r.attached[j].l.where()
	})
	if len(problems) == 0 {
		return "", ""
	}
	return reason, strings.Join(problems, "; ")
}

func (b *builder) attachParent(r *route, p gwv1.ParentReference) ([]attachment, string, string) {
	kind := r.obj.src.Kind
	if (p.Group != nil && string(*p.Group) != gatewayGroup) || (p.Kind != nil && *p.Kind != "Gateway") {
		return nil, string(gwv1.RouteReasonNoMatchingParent), fmt.Sprintf("parent %s is not supported; attach to a Gateway", groupKind(p.Group, derefKind(p.Kind, "Gateway")))
	}
	ns := r.obj.src.Namespace
	if p.Namespace != nil {
		ns = string(*p.Namespace)
	}
	var gw *gateway
	for _, g := range b.gws {
		if g.gw.Namespace == ns && g.gw.Name == string(p.Name) {
			gw = g
		}
	}
	if gw == nil {
		var hint []string
		if p.Namespace == nil && ns != PlatformNamespace {
			hint = append(hint, fmt.Sprintf("Gateways live in namespace %q: set parentRefs[].namespace", PlatformNamespace))
		}
		hint = append(hint, validPhrase(b.gatewayNames(ns), "no Gateway is accepted"))
		return nil, string(gwv1.RouteReasonNoMatchingParent), fmt.Sprintf("Gateway %s/%s does not exist or is not accepted (%s)", ns, p.Name, strings.Join(hint, "; "))
	}
	var cands []*listener
	for _, l := range gw.listeners {
		if p.SectionName != nil && string(*p.SectionName) != l.ir.Name {
			continue
		}
		if p.Port != nil && uint32(*p.Port) != l.ir.Port {
			continue
		}
		cands = append(cands, l)
	}
	if len(cands) == 0 {
		return nil, string(gwv1.RouteReasonNoMatchingParent), fmt.Sprintf("Gateway %s/%s has no valid listener%s%s", ns, p.Name, sectionDesc(p), validListeners(gw, p))
	}
	var atts []attachment
	reason, msg := "", ""
	for _, l := range cands {
		if why := l.allows(kind, r.obj.src.Namespace, b.nsLabels); why != "" {
			if reason == "" {
				reason, msg = string(gwv1.RouteReasonNotAllowedByListeners), fmt.Sprintf("%s does not allow it: %s", l.where(), why)
			}
			continue
		}
		hosts := intersect(l.ir.Hostname, r.hostnames)
		if len(hosts) == 0 {
			if reason == "" || reason == string(gwv1.RouteReasonNotAllowedByListeners) {
				reason, msg = string(gwv1.RouteReasonNoMatchingListenerHostname), fmt.Sprintf("no hostname of the route (%s) matches the hostname %q of %s", strings.Join(r.hostnames, ", "), l.ir.Hostname, l.where())
			}
			continue
		}
		hosts, owned := b.ownedHosts(r, hosts)
		r.notOwned = append(r.notOwned, owned...)
		if len(hosts) == 0 {
			reason, msg = ReasonHostnameNotOwned, fmt.Sprintf("%s: %s", l.where(), strings.Join(owned, "; "))
			continue
		}
		atts = append(atts, attachment{l: l, hosts: hosts})
	}
	return atts, reason, msg
}

func sectionDesc(p gwv1.ParentReference) string {
	var parts []string
	if p.SectionName != nil {
		parts = append(parts, fmt.Sprintf("named %q", *p.SectionName))
	}
	if p.Port != nil {
		parts = append(parts, fmt.Sprintf("on port %d", *p.Port))
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

// validListeners lists the valid listeners of gw for a parentRef that
// matched none: by name when it names one (with their ports when it gives
// a port too), else by port.
func validListeners(gw *gateway, p gwv1.ParentReference) string {
	var names []string
	for _, l := range gw.listeners {
		switch {
		case p.SectionName != nil && p.Port != nil:
			names = append(names, fmt.Sprintf("%s on port %d", l.ir.Name, l.ir.Port))
		case p.SectionName != nil:
			names = append(names, l.ir.Name)
		default:
			names = append(names, fmt.Sprintf("port %d", l.ir.Port))
		}
	}
	return validList(names, "")
}

// allows returns "" if the listener accepts a route of kind from namespace
// ns, or why not.
func (l *listener) allows(kind, ns string, nsLabels map[string]map[string]string) string {
	if !l.kinds[kind] {
		return fmt.Sprintf("allowedRoutes.kinds does not include %s", kind)
	}
	switch l.from {
	case gwv1.NamespacesFromAll:
		return ""
	case gwv1.NamespacesFromNone:
		return "allowedRoutes.namespaces.from is None"
	case gwv1.NamespacesFromSelector:
		if l.selector != nil && l.selector.Matches(labels.Set(nsLabels[ns])) {
			return ""
		}
		return fmt.Sprintf("the labels of namespace %q (Namespace objects of platform/) do not match allowedRoutes.namespaces.selector %q", ns, l.selector.String())
	default: // Same
		if ns == l.gw.gw.Namespace {
			return ""
		}
		return fmt.Sprintf("only routes of namespace %q may attach (allowedRoutes.namespaces.from: Same)", l.gw.gw.Namespace)
	}
}
