package conformance

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

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

// Status is gitxds's status of one mapped repository.
type Status struct{ objs []status.Object }

// Build runs gitxds's pipeline (render, model, translate) on repo, as
// `gitxds validate` does offline, and returns the status of its objects.
func Build(repo *Repo) (*Status, error) {
	b, err := pipeline.New(render.Options{}).Run(repo.FS, Overlay, "conformance", nil)
	if err != nil {
		return nil, err
	}
	return &Status{objs: b.Model.Status}, nil
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
		return latest("Gateway "+gw.name, o.Conditions)
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
			// An empty reason is any reason, as in the suite's
			// findConditionInList.
			if c.Status != want.Status || want.Reason != "" && c.Reason != want.Reason {
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
				if err := latest(kind+" "+route.name, p.Conditions); err != nil {
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
				return latest("HTTPRoute "+route.name, p.Conditions)
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
		return latest("Gateway "+gw.name, o.Conditions)
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
		return latest("Gateway "+gw.name, o.Conditions)
	}
}

// generation is the metadata.generation of an object the suite has just
// created.
const generation = 1

// staleError is kubernetes.ConditionsHaveLatestObservedGeneration failing:
// a condition whose observedGeneration is not the object's generation.
// The suite guards most of its status checks with it; Run reports a test
// whose only failures are these apart. gitxds reports an object's
// metadata.generation as observedGeneration; the mapping gives each object
// the generation an API server gives one it creates.
type staleError struct {
	what, cond string
	got        int64
}

func (e *staleError) Error() string {
	return fmt.Sprintf("%s: condition %s has observedGeneration %d, the suite wants %d (the object's generation)", e.what, e.cond, e.got, generation)
}

func latest(what string, conds []metav1.Condition) error {
	for _, c := range conds {
		if c.ObservedGeneration != generation {
			return &staleError{what, c.Type, c.ObservedGeneration}
		}
	}
	return nil
}

// gatewayAddress is kubernetes.WaitForGatewayAddress, which every traffic
// test starts with: the Gateway has an address of a type in
// status.addresses. gitxds writes none: its proxies listen on every
// address of their hosts, which the control plane does not know.
func gatewayAddress(gw nn) check {
	return func(s *Status) error {
		if s.find("Gateway", gw) == nil {
			return fmt.Errorf("Gateway %s has no status", gw.name)
		}
		return fmt.Errorf("Gateway %s: no status.addresses (gitxds writes none; its proxies listen on their hosts' addresses)", gw.name)
	}
}

// routesAccepted is the route half of
// kubernetes.GatewayAndHTTPRoutesMustBeAccepted (RoutesAndParentMustBeAccepted):
// each route's parent gw is Accepted, with gitxds's controllerName.
func routesAccepted(gw nn, routes ...nn) []check {
	out := []check{gatewayAddress(gw)}
	for _, r := range routes {
		out = append(out, routeCond(httpRoute, r, gw, cond(rcAccepted, "True", string(gwv1.RouteReasonAccepted))))
	}
	return out
}
