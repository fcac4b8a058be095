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
// follows; every Gateway, the base's too, gets a proxy group of its own;
// Services stay out of the repository.
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
	for _, want := range []string{"name: all-namespaces\n", "gitxds.dev/proxy-group: all-namespaces\n", "gitxds.dev/proxy-group: same-namespace\n"} {
		if !strings.Contains(gws, want) {
			t.Errorf("platform/gateways.yaml lacks %q (every Gateway in a group of its own):\n%s", want, gws)
		}
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

// TestUpdate: an update is a second commit in which the object has the
// next metadata.generation; gitxds's status of it follows, and a check of
// the old generation is stale.
func TestUpdate(t *testing.T) {
	repo, err := Map(moduleDir(t), []string{"tests/gateway-observed-generation-bump.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	gw := nn{infraNS, "gateway-observed-generation-bump"}
	s, err := Build(repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := latestConditions(gw)(s); err != nil {
		t.Fatalf("first commit: %v", err)
	}
	before := s
	if err := addListener(gw.name, map[string]any{"name": "alternate", "hostname": "foo.com", "port": 80, "protocol": "HTTP"})(repo); err != nil {
		t.Fatal(err)
	}
	if s, err = Build(repo); err != nil {
		t.Fatal(err)
	}
	o := s.find("Gateway", gw)
	if o == nil || len(o.Conditions) == 0 || o.Conditions[0].ObservedGeneration != 2 || len(o.Listeners) != 2 {
		t.Fatalf("after the update: %+v, want observedGeneration 2 and 2 listeners", o)
	}
	if err := latestConditions(gw)(s); err != nil {
		t.Errorf("second commit: %v", err)
	}
	// The first commit's status, judged with the second's generations.
	before.gens = s.gens
	var se *staleError
	if err := latestConditions(gw)(before); !errors.As(err, &se) {
		t.Errorf("the first commit's status after the update: %v, want a staleError", err)
	}
}

// TestMapCluster: mapped Gateways declare the runner's address and gitxds
// reports it; the Secrets of the manifests and those the suite creates are
// in the cluster gitxds is given, found beside a moved Gateway too.
func TestMapCluster(t *testing.T) {
	repo, err := Map(moduleDir(t), []string{"tests/gateway-invalid-tls-configuration.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := gatewayAddress(nn{infraNS, "gateway-certificate-malformed-secret"})(s); err == nil {
		t.Error("a Gateway with no valid listener has an address")
	}
	if _, ok := repo.Objects.Secret(infraNS, "malformed-certificate"); !ok {
		t.Error("the manifests' Secret malformed-certificate is not in the cluster")
	}
	if _, ok := repo.Objects.Secret("platform", "tls-validity-checks-certificate"); !ok {
		t.Error("the suite's Secret tls-validity-checks-certificate is not found beside the moved Gateways")
	}
	if ports, ok := repo.Objects.Service(infraNS, "infra-backend-v1"); !ok || ports["first-port"] != 8080 {
		t.Errorf("the base Service infra-backend-v1 is not in the cluster with port 8080: %v %v", ports, ok)
	}

	repo, err = Map(moduleDir(t), []string{"tests/httproute-simple-same-namespace.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if s, err = Build(repo); err != nil {
		t.Fatal(err)
	}
	o := s.find("Gateway", sameNS)
	if o == nil || len(o.Addresses) != 1 || o.Addresses[0].Value != ProxyAddress {
		t.Errorf("Gateway same-namespace: %+v, want status.addresses [%s]", o, ProxyAddress)
	}
}
