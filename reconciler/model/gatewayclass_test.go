package model

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A GatewayClass of gitxds's controller is Accepted with its generation;
// another controller's, one with parametersRef, a namespaced one or one of
// a team directory are not.
func TestGatewayClasses(t *testing.T) {
	st := statusByID(Build(readCase(t, "testdata/gatewayclass.in.yaml")))
	gc := st["GatewayClass gitxds"]
	expectCond(t, "GatewayClass gitxds", gc.Conditions, CondAccepted, metav1.ConditionTrue, "Accepted", "serves the Gateways")
	if len(gc.Conditions) == 0 || gc.Conditions[0].ObservedGeneration != 3 {
		t.Errorf("GatewayClass gitxds: conditions %+v, want observedGeneration 3", gc.Conditions)
	}
	expectCond(t, "GatewayClass other", st["GatewayClass other"].Conditions, CondAccepted, metav1.ConditionFalse, "Unsupported", "example.com/other-controller")
	expectCond(t, "GatewayClass with-parameters", st["GatewayClass with-parameters"].Conditions, CondAccepted, metav1.ConditionFalse, "InvalidParameters", "parametersRef")
	expectCond(t, "GatewayClass platform/namespaced", st["GatewayClass platform/namespaced"].Conditions, CondAccepted, metav1.ConditionFalse, ReasonInvalid, "cluster-scoped")
	expectCond(t, "GatewayClass team-class", st["GatewayClass team-class"].Conditions, CondAccepted, metav1.ConditionFalse, ReasonNotOwner, "only platform/")
	expectCond(t, "Gateway platform/web", st["Gateway platform/web"].Conditions, CondAccepted, metav1.ConditionTrue, "Accepted", "")
}
