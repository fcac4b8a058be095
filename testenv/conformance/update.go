package conformance

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/model"
)

// step is one update a test makes to an object in the API server, which
// the runner makes as a second commit of the repository (Repo.Update: the
// object gets the next metadata.generation): the checks the test makes
// before it, the change, and the checks after it.
type step struct {
	before []check
	update func(r *Repo) error
	after  []check
}

// updates holds, per test (ShortName), the steps of the tests that update
// objects, restated from their Go bodies as mapped's checks are. The
// tests' last assertion, that the object's generation changed, is the API
// server's doing (Repo.Update's here) and is not restated.
var updates = map[string][]step{
	// tests/backendtlspolicy-observed-generation-bump.go (extended)
	"BackendTLSPolicyObservedGenerationBump": {{
		before: []check{namespacesReady, policyLatest(nn{infraNS, "observed-generation-bump"})},
		update: func(r *Repo) error {
			return r.Update("BackendTLSPolicy", "observed-generation-bump", func(o map[string]any) error {
				sub(obj(o).m("spec"), "validation")["hostname"] = "foo.example.com"
				return nil
			})
		},
		after: []check{
			policyCond(nn{infraNS, "observed-generation-bump"}, sameNS, cond(string(gwv1.PolicyConditionAccepted), "True", anyReason)),
			policyLatest(nn{infraNS, "observed-generation-bump"}),
		},
	}},
	// tests/gatewayclass-observed-generation-bump.go
	"GatewayClassObservedGenerationBump": {{
		before: []check{classAccepted("gatewayclass-observed-generation-bump")},
		update: func(r *Repo) error {
			return r.Update("GatewayClass", "gatewayclass-observed-generation-bump", func(o map[string]any) error {
				obj(o).m("spec")["description"] = "new"
				return nil
			})
		},
		after: []check{classAccepted("gatewayclass-observed-generation-bump")},
	}},
	// tests/gateway-observed-generation-bump.go
	"GatewayObservedGenerationBump": {{
		before: []check{namespacesReady, latestConditions(nn{infraNS, "gateway-observed-generation-bump"})},
		update: addListener("gateway-observed-generation-bump", map[string]any{
			"name": "alternate", "hostname": "foo.com", "port": 80, "protocol": "HTTP",
			"allowedRoutes": map[string]any{"namespaces": map[string]any{"from": "All"}},
		}),
		after: []check{namespacesReady, latestConditions(nn{infraNS, "gateway-observed-generation-bump"})},
	}},
	// tests/httproute-observed-generation-bump.go
	"HTTPRouteObservedGenerationBump": {{
		before: []check{namespacesReady, routeLatest(nn{infraNS, "observed-generation-bump"})},
		update: func(r *Repo) error {
			return r.Update(httpRoute, "observed-generation-bump", func(o map[string]any) error {
				// mutate.Spec.Rules[0].BackendRefs[0].Name = InfraBackendServiceNameV2
				rules, _ := obj(o).m("spec")["rules"].([]any)
				if len(rules) == 0 {
					return fmt.Errorf("no rules")
				}
				refs, _ := rules[0].(map[string]any)["backendRefs"].([]any)
				if len(refs) == 0 {
					return fmt.Errorf("no backendRefs")
				}
				refs[0].(map[string]any)["name"] = "infra-backend-v2"
				return nil
			})
		},
		after: []check{
			routeCond(httpRoute, nn{infraNS, "observed-generation-bump"}, sameNS, cond(rcAccepted, "True", anyReason)),
			resolvedRefsTrue(nn{infraNS, "observed-generation-bump"}, sameNS),
			routeLatest(nn{infraNS, "observed-generation-bump"}),
		},
	}},
	// tests/gateway-modify-listeners.go: its two subtests, in order.
	"GatewayModifyListeners": {{
		before: []check{namespacesReady, latestConditions(nn{infraNS, "gateway-add-listener"})},
		update: addListener("gateway-add-listener", map[string]any{
			"name": "http", "port": 80, "protocol": "HTTP", "hostname": "data.test.com",
			"allowedRoutes": map[string]any{"namespaces": map[string]any{"from": "All"}},
		}),
		after: []check{
			namespacesReady,
			listeners(nn{infraNS, "gateway-add-listener"}, []gwv1.ListenerStatus{acceptedListener("https", 1), acceptedListener("http", 1)}),
			latestConditions(nn{infraNS, "gateway-add-listener"}),
		},
	}, {
		before: []check{namespacesReady, latestConditions(nn{infraNS, "gateway-remove-listener"})},
		update: func(r *Repo) error {
			return r.Update("Gateway", "gateway-remove-listener", func(o map[string]any) error {
				spec := obj(o).m("spec")
				ls, _ := spec["listeners"].([]any)
				if len(ls) != 2 {
					return fmt.Errorf("the gateway must have 2 listeners, has %d", len(ls))
				}
				spec["listeners"] = slices.DeleteFunc(ls, func(l any) bool { return l.(map[string]any)["name"] != "http" })
				return nil
			})
		},
		after: []check{
			namespacesReady,
			listeners(nn{infraNS, "gateway-remove-listener"}, []gwv1.ListenerStatus{acceptedListener("http", 1)}),
			latestConditions(nn{infraNS, "gateway-remove-listener"}),
		},
	}},
}

// addListener appends listener l to Gateway gw's spec.listeners.
func addListener(gw string, l map[string]any) func(r *Repo) error {
	return func(r *Repo) error {
		return r.Update("Gateway", gw, func(o map[string]any) error {
			spec := obj(o).m("spec")
			ls, _ := spec["listeners"].([]any)
			spec["listeners"] = append(ls, l)
			return nil
		})
	}
}

// namespacesReady is kubernetes.NamespacesMustBeReady for the suite's
// infrastructure namespace: every Gateway of it but those annotated
// gateway-api/skip-this-for-readiness has conditions of its generation,
// Accepted True and Programmed True. Every Gateway Map kept comes from that
// namespace. Its Pods part (the echo backends ready) is not restated: the
// runner runs no backends.
func namespacesReady(s *Status) error {
	for i := range s.objs {
		o := &s.objs[i]
		if o.Kind != "Gateway" || o.Namespace != model.PlatformNamespace || s.skipReady[o.Name] {
			continue
		}
		if err := s.latest(o, "Gateway "+o.Name, o.Conditions); err != nil {
			return err
		}
		for _, c := range []string{gcAccepted, gcProgrammed} {
			if err := hasCond(o.Conditions, cond(c, "True", anyReason)); err != nil {
				return fmt.Errorf("namespace %s not ready: Gateway %s: %v", infraNS, o.Name, err)
			}
		}
	}
	return nil
}

// routeLatest is kubernetes.HTTPRouteMustHaveLatestConditions: every
// parent's conditions are of the route's generation.
func routeLatest(route nn) check {
	return func(s *Status) error {
		o := s.find(httpRoute, route)
		if o == nil {
			return fmt.Errorf("HTTPRoute %s/%s has no status", route.ns, route.name)
		}
		for _, p := range o.Parents {
			if err := s.latest(o, "HTTPRoute "+route.name, p.Conditions); err != nil {
				return err
			}
		}
		return nil
	}
}

// classAccepted is kubernetes.GWCMustHaveAcceptedConditionAny then
// GatewayClassMustHaveLatestConditions: the GatewayClass's conditions are
// of its generation and it has an Accepted condition, of any status.
func classAccepted(name string) check {
	return func(s *Status) error {
		o := s.find("GatewayClass", nn{"", name})
		if o == nil {
			return fmt.Errorf("GatewayClass %s has no status", name)
		}
		if err := s.latest(o, "GatewayClass "+name, o.Conditions); err != nil {
			return err
		}
		return hasCond(o.Conditions, cond(gcAccepted, "", anyReason))
	}
}

// policyCond is kubernetes.BackendTLSPolicyMustHaveCondition: every
// ancestor's conditions are of the policy's generation, and the ancestor
// Gateway gw (its namespace platform, where Map moved it) has the
// condition.
func policyCond(policy, gw nn, want metav1.Condition) check {
	return func(s *Status) error {
		o := s.find("BackendTLSPolicy", policy)
		if o == nil {
			return fmt.Errorf("BackendTLSPolicy %s/%s has no status", policy.ns, policy.name)
		}
		var why error
		for _, a := range o.Ancestors {
			if err := s.latest(o, "BackendTLSPolicy "+policy.name, a.Conditions); err != nil {
				return err
			}
			if string(a.AncestorRef.Name) != gw.name || a.AncestorRef.Namespace != nil && string(*a.AncestorRef.Namespace) != model.PlatformNamespace {
				continue
			}
			if why = hasCond(a.Conditions, want); why == nil {
				return nil
			}
		}
		if why != nil {
			return fmt.Errorf("BackendTLSPolicy %s ancestor %s: %v", policy.name, gw.name, why)
		}
		return fmt.Errorf("BackendTLSPolicy %s: no ancestor status for Gateway %s (conditions: %s)", policy.name, gw.name, condText(o.Conditions))
	}
}

// policyLatest is kubernetes.BackendTLSPolicyMustHaveLatestConditions:
// every ancestor's conditions are of the policy's generation.
func policyLatest(policy nn) check {
	return func(s *Status) error {
		o := s.find("BackendTLSPolicy", policy)
		if o == nil {
			return fmt.Errorf("BackendTLSPolicy %s/%s has no status", policy.ns, policy.name)
		}
		for _, a := range o.Ancestors {
			if err := s.latest(o, "BackendTLSPolicy "+policy.name, a.Conditions); err != nil {
				return err
			}
		}
		return nil
	}
}
