package conformance

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/status"
)

// Namespaces of the suite.
const (
	infraNS = "gateway-conformance-infra"
	webNS   = "gateway-conformance-web-backend"
)

// nn names an object as the suite does (its original namespace).
type nn struct{ ns, name string }

// Status is gitxds's status of one mapped repository, with the
// metadata.generation of the objects Map wrote.
type Status struct {
	objs []status.Object
	gens map[string]int64 // by genKey
	// skipReady are the Gateways NamespacesMustBeReady skips.
	skipReady map[string]bool
}

// generation is the metadata.generation of the object ref names in the
// repository.
func (s *Status) generation(ref ir.ObjectRef) int64 {
	if g, ok := s.gens[genKey(ref.Kind, ref.Namespace, ref.Name)]; ok {
		return g
	}
	return generation
}

func genKey(kind, ns, name string) string { return kind + " " + ns + "/" + name }

// Build runs gitxds's pipeline (render, model, translate) on repo, as
// `gitxds validate` does offline, given the cluster's Secrets and Services
// (repo.Objects), and returns the status of its objects.
func Build(repo *Repo) (*Status, error) {
	p := pipeline.New(render.Options{})
	p.Cluster = repo.Objects
	b, err := p.Run(repo.FS, Overlay, "conformance", nil)
	if err != nil {
		return nil, err
	}
	return &Status{objs: b.Model.Status, gens: repo.gens, skipReady: repo.skipReady}, nil
}

// find returns the status of kind ns/name; a Gateway is looked up in
// namespace platform, where Map put it.
func (s *Status) find(kind string, o nn) *status.Object {
	if kind == "Gateway" {
		o.ns = model.PlatformNamespace
	}
	for i := range s.objs {
		r := s.objs[i].ObjectRef
		if r.Kind == kind && r.Namespace == o.ns && r.Name == o.name {
			return &s.objs[i]
		}
	}
	return nil
}

// check is one assertion of a test; it returns why it does not hold.
type check func(s *Status) error

// listeners is kubernetes.GatewayStatusMustHaveListeners (its
// gatewayListenersMatch): as many listeners as expected; each expected one
// by name with every expected supportedKind (group defaulted; none when
// none is expected), the same attachedRoutes and each expected condition
// (type, status, reason); the Gateway's conditions of its generation.
func listeners(gw nn, want []gwv1.ListenerStatus) check {
	return func(s *Status) error {
		o := s.find("Gateway", gw)
		if o == nil {
			return fmt.Errorf("Gateway %s/%s has no status", gw.ns, gw.name)
		}
		if len(o.Listeners) != len(want) {
			return fmt.Errorf("Gateway %s: %d listeners in status, want %d", gw.name, len(o.Listeners), len(want))
		}
		for _, w := range want {
			var got *gwv1.ListenerStatus
			for i := range o.Listeners {
				if o.Listeners[i].Name == w.Name {
					got = &o.Listeners[i]
				}
			}
			if got == nil {
				return fmt.Errorf("Gateway %s: no listener %s in status", gw.name, w.Name)
			}
			have := kinds(got.SupportedKinds)
			if len(w.SupportedKinds) == 0 && len(have) > 0 {
				return fmt.Errorf("Gateway %s listener %s: supportedKinds %v, want none", gw.name, w.Name, have)
			}
			for _, k := range kinds(w.SupportedKinds) {
				if !slices.Contains(have, k) {
					return fmt.Errorf("Gateway %s listener %s: supportedKinds %v, want %s among them", gw.name, w.Name, have, k)
				}
			}
			if got.AttachedRoutes != w.AttachedRoutes {
				return fmt.Errorf("Gateway %s listener %s: attachedRoutes %d, want %d", gw.name, w.Name, got.AttachedRoutes, w.AttachedRoutes)
			}
			for _, c := range w.Conditions {
				if err := hasCond(got.Conditions, c); err != nil {
					return fmt.Errorf("Gateway %s listener %s: %v", gw.name, w.Name, err)
				}
			}
		}
		return s.latest(o, "Gateway "+gw.name, o.Conditions)
	}
}

func kinds(ks []gwv1.RouteGroupKind) []string {
	var out []string
	for _, k := range ks {
		g := gwv1.GroupName
		if k.Group != nil {
			g = string(*k.Group)
		}
		out = append(out, g+"/"+string(k.Kind))
	}
	return out
}

func hasCond(conds []metav1.Condition, want metav1.Condition) error {
	for _, c := range conds {
		if c.Type == want.Type {
			// An empty status or reason is any, as in the suite's
			// findConditionInList.
			if want.Status != "" && c.Status != want.Status || want.Reason != "" && c.Reason != want.Reason {
				return fmt.Errorf("condition %s is %s/%s (%s), want %s/%s", c.Type, c.Status, c.Reason, c.Message, want.Status, want.Reason)
			}
			return nil
		}
	}
	return fmt.Errorf("no condition %s, want %s/%s (conditions: %s)", want.Type, want.Status, want.Reason, condText(conds))
}

// routeCond is kubernetes.HTTPRouteMustHaveCondition: the route's parent
// status for Gateway gw has the condition.
func routeCond(kind string, route, gw nn, want metav1.Condition) check {
	return func(s *Status) error {
		o := s.find(kind, route)
		if o == nil {
			return fmt.Errorf("%s %s/%s has no status", kind, route.ns, route.name)
		}
		for _, p := range o.Parents {
			// The suite matches the parentRef's name and namespace; Map
			// moved the Gateway to namespace platform.
			if string(p.ParentRef.Name) != gw.name || (p.ParentRef.Namespace != nil && string(*p.ParentRef.Namespace) != model.PlatformNamespace) {
				continue
			}
			if p.ControllerName != status.ControllerName {
				return fmt.Errorf("%s %s: parent %s has controllerName %q", kind, route.name, gw.name, p.ControllerName)
			}
			if err := hasCond(p.Conditions, want); err != nil {
				return fmt.Errorf("%s %s parent %s: %v", kind, route.name, gw.name, err)
			}
			// The suite waits for every parent's conditions to be of the
			// route's generation.
			for _, p := range o.Parents {
				if err := s.latest(o, kind+" "+route.name, p.Conditions); err != nil {
					return err
				}
			}
			return nil
		}
		return fmt.Errorf("%s %s: no parent status for Gateway %s (conditions: %s)", kind, route.name, gw.name, condText(o.Conditions))
	}
}

func condText(cs []metav1.Condition) string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s=%s/%s: %s", c.Type, c.Status, c.Reason, c.Message))
	}
	return strings.Join(out, "; ")
}

// resolvedRefsTrue is kubernetes.HTTPRouteMustHaveResolvedRefsConditionsTrue.
func resolvedRefsTrue(route, gw nn) check {
	return routeCond("HTTPRoute", route, gw, metav1.Condition{Type: string(gwv1.RouteConditionResolvedRefs), Status: metav1.ConditionTrue, Reason: string(gwv1.RouteReasonResolvedRefs)})
}

// noAcceptedParents is kubernetes.HTTPRouteMustHaveNoAcceptedParents:
// no parent, or exactly one whose Accepted is False.
func noAcceptedParents(route nn) check {
	return func(s *Status) error {
		o := s.find(httpRoute, route)
		if o == nil {
			return fmt.Errorf("HTTPRoute %s/%s has no status", route.ns, route.name)
		}
		switch len(o.Parents) {
		case 0:
			return nil
		case 1:
		default:
			return fmt.Errorf("HTTPRoute %s: %d parents in status, want at most one", route.name, len(o.Parents))
		}
		p := o.Parents[0]
		for _, c := range p.Conditions {
			if c.Type == rcAccepted && c.Status == metav1.ConditionFalse {
				return s.latest(o, "HTTPRoute "+route.name, p.Conditions)
			}
		}
		return fmt.Errorf("HTTPRoute %s: parent %s is not Accepted False", route.name, p.ParentRef.Name)
	}
}

// zeroRoutes is kubernetes.GatewayMustHaveZeroRoutes: the Gateway's
// conditions of its generation, and no listener or one with no route.
func zeroRoutes(gw nn) check {
	return func(s *Status) error {
		o := s.find("Gateway", gw)
		if o == nil {
			return fmt.Errorf("Gateway %s has no status", gw.name)
		}
		if n := len(o.Listeners); n > 1 || n == 1 && o.Listeners[0].AttachedRoutes != 0 {
			return fmt.Errorf("Gateway %s: listeners %d, attachedRoutes of the first %d; want one listener with no route", gw.name, n, o.Listeners[0].AttachedRoutes)
		}
		return s.latest(o, "Gateway "+gw.name, o.Conditions)
	}
}

func cond(t, st, reason string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionStatus(st), Reason: reason}
}

func conds(c ...metav1.Condition) []metav1.Condition { return c }

// gatewayCond is kubernetes.GatewayMustHaveCondition.
func gatewayCond(gw nn, want metav1.Condition) check {
	return func(s *Status) error {
		o := s.find("Gateway", gw)
		if o == nil {
			return fmt.Errorf("Gateway %s has no status", gw.name)
		}
		if err := hasCond(o.Conditions, want); err != nil {
			return fmt.Errorf("Gateway %s: %v", gw.name, err)
		}
		return nil
	}
}

// latestConditions is kubernetes.GatewayMustHaveLatestConditions.
func latestConditions(gw nn) check {
	return func(s *Status) error {
		o := s.find("Gateway", gw)
		if o == nil {
			return fmt.Errorf("Gateway %s has no status", gw.name)
		}
		return s.latest(o, "Gateway "+gw.name, o.Conditions)
	}
}

// generation is the metadata.generation of an object the suite has just
// created; an update (update.go) gives the object the next one.
const generation = 1

// staleError is kubernetes.ConditionsHaveLatestObservedGeneration failing:
// a condition whose observedGeneration is not the object's generation.
// The suite guards most of its status checks with it; Run reports a test
// whose only failures are these apart. gitxds reports an object's
// metadata.generation as observedGeneration; the mapping gives each object
// the generation an API server gives one it creates.
type staleError struct {
	what, cond string
	got, want  int64
}

func (e *staleError) Error() string {
	return fmt.Sprintf("%s: condition %s has observedGeneration %d, the suite wants %d (the object's generation)", e.what, e.cond, e.got, e.want)
}

// latest is kubernetes.ConditionsHaveLatestObservedGeneration: every
// condition of o's conds has o's metadata.generation.
func (s *Status) latest(o *status.Object, what string, conds []metav1.Condition) error {
	want := s.generation(o.ObjectRef)
	for _, c := range conds {
		if c.ObservedGeneration != want {
			return &staleError{what, c.Type, c.ObservedGeneration, want}
		}
	}
	return nil
}

// gatewayAddress is kubernetes.WaitForGatewayAddress, which every traffic
// test starts with: the Gateway's conditions are of its generation
// (getGatewayStatus) and status.addresses has an address with a type.
// gitxds assigns no address; it reports the ones the Gateway's
// gitxds.dev/addresses annotation declares (Map sets it).
func gatewayAddress(gw nn) check {
	return func(s *Status) error {
		o := s.find("Gateway", gw)
		if o == nil {
			return fmt.Errorf("Gateway %s has no status", gw.name)
		}
		if err := s.latest(o, "Gateway "+gw.name, o.Conditions); err != nil {
			return err
		}
		for _, a := range o.Addresses {
			if a.Type != nil {
				return nil
			}
		}
		return fmt.Errorf("Gateway %s: no typed address in status.addresses (%d addresses)", gw.name, len(o.Addresses))
	}
}

// accepted is kubernetes.GatewayAndRoutesMustBeAccepted (and
// GatewayAndHTTPRoutesMustBeAccepted, its HTTPRoute form): the Gateway has
// an address (gatewayAddress); each route has a parent for the Gateway with
// Accepted True reason Accepted (RoutesAndParentMustBeAccepted through
// RouteMustHaveParents); every listener of the Gateway has ResolvedRefs,
// Accepted and Programmed True (GatewayListenersMustHaveConditions with no
// listener named). The listener names a test passes to NewGatewayRef only
// fill the expected parents' sectionName, which parentsForRouteMatch does
// not compare, and pick the port of the address returned.
func accepted(kind string, gw nn, routes ...nn) []check {
	out := []check{gatewayAddress(gw)}
	for _, r := range routes {
		out = append(out, routeParents(kind, r, gw, cond(rcAccepted, "True", string(gwv1.RouteReasonAccepted))))
	}
	return append(out, allListeners(gw,
		cond(lcResolvedRefs, "True", anyReason), cond(lcAccepted, "True", anyReason), cond(lcProgrammed, "True", anyReason)))
}

// routeParents is kubernetes.RouteMustHaveParents with one expected parent,
// Gateway gw (group gateway.networking.k8s.io, kind Gateway, its name and
// namespace, the controllerName of gitxds) with conditions want, as
// parentsForRouteMatch compares them (sectionName is not compared); every
// parent's conditions are of the route's generation. Map moved the Gateway
// to namespace platform, which stands for gw's namespace.
func routeParents(kind string, route, gw nn, want ...metav1.Condition) check {
	return func(s *Status) error {
		o := s.find(kind, route)
		if o == nil {
			return fmt.Errorf("%s %s/%s has no status", kind, route.ns, route.name)
		}
		for _, p := range o.Parents {
			if err := s.latest(o, kind+" "+route.name, p.Conditions); err != nil {
				return err
			}
		}
		var why []string
		for _, p := range o.Parents {
			r := p.ParentRef
			switch {
			case p.ControllerName != status.ControllerName,
				r.Group == nil || string(*r.Group) != gwv1.GroupName,
				r.Kind == nil || *r.Kind != "Gateway",
				string(r.Name) != gw.name,
				r.Namespace == nil || string(*r.Namespace) != model.PlatformNamespace:
				continue
			}
			var bad []string
			for _, c := range want {
				if err := hasCond(p.Conditions, c); err != nil {
					bad = append(bad, err.Error())
				}
			}
			if len(bad) == 0 {
				return nil
			}
			why = append(why, strings.Join(bad, "; "))
		}
		if len(why) == 0 {
			return fmt.Errorf("%s %s: no parent status for Gateway %s with group, kind and controllerName %s", kind, route.name, gw.name, status.ControllerName)
		}
		return fmt.Errorf("%s %s parent %s: %s", kind, route.name, gw.name, why[0])
	}
}

// allListeners is kubernetes.GatewayListenersMustHaveConditions with no
// listener named: every listener in the Gateway's status has each
// condition (type, status; any reason when empty).
func allListeners(gw nn, want ...metav1.Condition) check {
	return func(s *Status) error {
		o := s.find("Gateway", gw)
		if o == nil {
			return fmt.Errorf("Gateway %s has no status", gw.name)
		}
		for _, c := range want {
			for _, l := range o.Listeners {
				if err := hasCond(l.Conditions, c); err != nil {
					return fmt.Errorf("Gateway %s listener %s: %v", gw.name, l.Name, err)
				}
			}
		}
		return nil
	}
}
