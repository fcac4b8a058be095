package conformance

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/status"
)

// TestMap: a test's Gateway moves to platform/ in namespace platform,
// admitting its original namespace by label; the route that names it
// follows; base Gateways no route names are left out; Services stay out of
// the repository.
func TestMap(t *testing.T) {
	repo, err := Map(moduleDir(t), []string{"tests/httproute-invalid-cross-namespace-parent-ref.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	read := func(f string) string {
		b, err := repo.FS.ReadFile("/" + f)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	gws := read("platform/gateways.yaml")
	for _, want := range []string{"name: same-namespace\n", "namespace: platform\n", "kubernetes.io/metadata.name: gateway-conformance-infra"} {
		if !strings.Contains(gws, want) {
			t.Errorf("platform/gateways.yaml lacks %q:\n%s", want, gws)
		}
	}
	if strings.Contains(gws, "name: all-namespaces") {
		t.Errorf("base Gateway all-namespaces, which no route names, is in the repository:\n%s", gws)
	}
	route := read("teams/gateway-conformance-web-backend/objects.yaml")
	if !strings.Contains(route, "namespace: platform") {
		t.Errorf("the route's parentRef does not follow its Gateway:\n%s", route)
	}
	if !strings.Contains(read(Overlay+"/kustomization.yaml"), "../../teams/gateway-conformance-web-backend") {
		t.Error("the overlay does not deploy the team")
	}
	if repo.Cluster["Service"] == 0 {
		t.Errorf("no Service left for the API server: %v", repo.Cluster)
	}
}

// TestChecks: the restated helpers hold on the status the suite wants and
// fail on a difference, apart on observedGeneration alone.
func TestChecks(t *testing.T) {
	gw := nn{infraNS, "g"}
	want := []gwv1.ListenerStatus{{Name: "http", SupportedKinds: []gwv1.RouteGroupKind{httpRouteKind}, AttachedRoutes: 1,
		Conditions: conds(cond(lcAccepted, "True", anyReason))}}
	st := func(gen int64, attached int32, kinds ...gwv1.RouteGroupKind) *Status {
		return &Status{objs: []status.Object{{
			ObjectRef:  ir.ObjectRef{Kind: "Gateway", Namespace: "platform", Name: "g"},
			Conditions: []metav1.Condition{{Type: gcAccepted, Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: gen}},
			Listeners: []gwv1.ListenerStatus{{Name: "http", SupportedKinds: kinds, AttachedRoutes: attached,
				Conditions: []metav1.Condition{{Type: lcAccepted, Status: metav1.ConditionTrue, Reason: "Accepted"}}}},
		}}}
	}
	grpc := gwv1.RouteGroupKind{Kind: "GRPCRoute"}
	check := listeners(gw, want)
	if err := check(st(generation, 1, httpRouteKind, grpc)); err != nil {
		t.Errorf("the status the suite wants: %v", err)
	}
	var se *staleError
	if err := check(st(0, 1, httpRouteKind)); !errors.As(err, &se) {
		t.Errorf("no observedGeneration: %v, want a staleError", err)
	}
	for name, s := range map[string]*Status{"attachedRoutes": st(generation, 2, httpRouteKind), "supportedKinds": st(generation, 1, grpc)} {
		if err := check(s); err == nil || errors.As(err, &se) {
			t.Errorf("%s differs: %v, want a difference", name, err)
		}
	}
}
