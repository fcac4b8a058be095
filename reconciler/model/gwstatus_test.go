package model

import (
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/status"
)

// The status Gateway API clients read: per parentRef conditions on routes,
// per listener conditions and attachedRoutes on Gateways, as the
// conformance suite's helpers check them (a condition of a type with a
// status and reason; attachedRoutes exactly; supportedKinds containing
// the expected kinds).
func TestGatewayAPIStatus(t *testing.T) {
	out := Build(readCase(t, "testdata/gateway-api-status.in.yaml"))
	byID := map[string]status.Object{}
	for _, o := range out.Status {
		byID[o.ObjectRef.String()] = o
	}
	expect := func(what string, conds []metav1.Condition, typ string, st metav1.ConditionStatus, reason string) {
		t.Helper()
		c := apimeta.FindStatusCondition(conds, typ)
		if c == nil || c.Status != st || c.Reason != reason {
			t.Errorf("%s: condition %s is %+v, want %s %s", what, typ, c, st, reason)
		}
	}

	rt := byID["HTTPRoute a/two-parents"]
	if len(rt.Parents) != 2 {
		t.Fatalf("HTTPRoute a/two-parents has %d parents, want 2", len(rt.Parents))
	}
	for i, p := range rt.Parents {
		if p.ControllerName != status.ControllerName {
			t.Errorf("parents[%d].controllerName = %q", i, p.ControllerName)
		}
		r := p.ParentRef
		if r.Group == nil || *r.Group != gwv1.GroupName || r.Kind == nil || *r.Kind != "Gateway" || r.Namespace == nil || *r.Namespace != "platform" || r.Name != "web" {
			t.Errorf("parents[%d].parentRef = %+v, want group, kind and namespace filled in", i, r)
		}
	}
	expect("parents[0]", rt.Parents[0].Conditions, "Accepted", metav1.ConditionTrue, "Accepted")
	expect("parents[0]", rt.Parents[0].Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
	expect("parents[1]", rt.Parents[1].Conditions, "Accepted", metav1.ConditionFalse, "NotAllowedByListeners")
	// The summary still says the route is not fully accepted.
	expect("summary", rt.Conditions, "Accepted", metav1.ConditionFalse, "NotAllowedByListeners")

	gr := byID["GRPCRoute a/grpc"]
	if len(gr.Parents) != 1 {
		t.Fatalf("GRPCRoute a/grpc has %d parents, want 1", len(gr.Parents))
	}
	expect("grpc parents[0]", gr.Parents[0].Conditions, "Accepted", metav1.ConditionTrue, "Accepted")
	expect("grpc parents[0]", gr.Parents[0].Conditions, "ResolvedRefs", metav1.ConditionFalse, "BackendNotFound")

	gw := byID["Gateway platform/web"]
	expect("Gateway", gw.Conditions, "Accepted", metav1.ConditionTrue, "ListenersNotValid")
	expect("Gateway", gw.Conditions, "Programmed", metav1.ConditionTrue, "Programmed")
	ls := map[gwv1.SectionName]gwv1.ListenerStatus{}
	for _, l := range gw.Listeners {
		ls[l.Name] = l
	}
	if len(gw.Listeners) != 4 {
		t.Fatalf("%d listener statuses, want 4", len(gw.Listeners))
	}
	for name, want := range map[gwv1.SectionName]int32{"http": 2, "internal": 0, "bad-cert": 0, "bad-kind": 0} {
		if got := ls[name].AttachedRoutes; got != want {
			t.Errorf("listener %s: attachedRoutes %d, want %d", name, got, want)
		}
	}
	for _, typ := range []string{"Accepted", "Programmed", "ResolvedRefs"} {
		expect("listener http", ls["http"].Conditions, typ, metav1.ConditionTrue, typ)
	}
	expect("listener http", ls["http"].Conditions, "Conflicted", metav1.ConditionFalse, "NoConflicts")
	expect("listener bad-cert", ls["bad-cert"].Conditions, "ResolvedRefs", metav1.ConditionFalse, "InvalidCertificateRef")
	expect("listener bad-cert", ls["bad-cert"].Conditions, "Programmed", metav1.ConditionFalse, "Invalid")
	expect("listener bad-kind", ls["bad-kind"].Conditions, "ResolvedRefs", metav1.ConditionFalse, "InvalidRouteKinds")
	if k := ls["bad-kind"].SupportedKinds; len(k) != 1 || k[0].Kind != "HTTPRoute" {
		t.Errorf("listener bad-kind: supportedKinds %+v, want HTTPRoute only", k)
	}
}

// A BackendTLSPolicy's status.ancestors: the Gateways routing to its
// targets, each with the policy's Accepted and ResolvedRefs; a policy whose
// CA reference is of the wrong kind has ResolvedRefs=False InvalidKind.
func TestBackendTLSPolicyAncestors(t *testing.T) {
	out := Build(readCase(t, "testdata/backend-tls.in.yaml"))
	byID := map[string]status.Object{}
	for _, o := range out.Status {
		byID[o.ObjectRef.String()] = o
	}
	for name, want := range map[string]string{"BackendTLSPolicy a/api": "Accepted", "BackendTLSPolicy a/api-again": "Conflicted"} {
		as := byID[name].Ancestors
		if len(as) != 1 || as[0].AncestorRef.Name != "web" || as[0].ControllerName != status.ControllerName {
			t.Fatalf("%s: ancestors %+v, want Gateway platform/web", name, as)
		}
		if c := apimeta.FindStatusCondition(as[0].Conditions, "Accepted"); c == nil || c.Reason != want {
			t.Errorf("%s: ancestor Accepted %+v, want reason %s", name, c, want)
		}
	}
	if c := apimeta.FindStatusCondition(byID["BackendTLSPolicy a/wrong-kind"].Conditions, "ResolvedRefs"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "InvalidKind" {
		t.Errorf("wrong-kind: ResolvedRefs %+v, want False InvalidKind", c)
	}
	for _, c := range out.IR.Clusters {
		if c.Name == "a/api" && (c.UpstreamTLS == nil || c.UpstreamTLS.TrustedCAFile != "/etc/gitxds/certs/a/api-ca/ca.crt" || c.UpstreamTLS.SNI != "api.internal") {
			t.Errorf("cluster a/api: UpstreamTLS %+v", c.UpstreamTLS)
		}
	}
}

// wellKnownCACertificates: System trusts Input.SystemCAFile when set
// (serve --system-ca-file), DefaultSystemCAFile otherwise.
func TestBackendTLSSystemCAFile(t *testing.T) {
	in := readCase(t, "testdata/backend-tls.in.yaml")
	for _, tc := range []struct{ flag, want string }{{"", DefaultSystemCAFile}, {"/etc/pki/tls/certs/ca-bundle.crt", "/etc/pki/tls/certs/ca-bundle.crt"}} {
		in.SystemCAFile = tc.flag
		out := Build(in)
		found := false
		for _, c := range out.IR.Clusters {
			if c.Name == "a/partner" {
				found = true
				if c.UpstreamTLS == nil || c.UpstreamTLS.TrustedCAFile != tc.want {
					t.Errorf("SystemCAFile %q: cluster a/partner UpstreamTLS %+v, want trusted CA %s", tc.flag, c.UpstreamTLS, tc.want)
				}
			}
		}
		if !found {
			t.Fatal("no cluster a/partner")
		}
	}
}
