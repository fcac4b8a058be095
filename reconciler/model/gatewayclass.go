package model

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/status"
)

// gatewayClasses gives the GatewayClasses of platform/ their status. A
// GatewayClass is optional in a gitxds repository: gitxds serves every
// Gateway of the repository whatever its gatewayClassName. One whose
// spec.controllerName is gitxds's (status.ControllerName) is Accepted, as
// a Gateway API controller accepts its class; one of another controller,
// or with parametersRef (gitxds reads no parameters), is Accepted=False
// (Unsupported, InvalidParameters), so a class in the repository that
// gitxds does not implement does not pass for one it does.
func (b *builder) gatewayClasses() {
	for _, o := range b.live() {
		gc, ok := o.typed.(*gwv1.GatewayClass)
		if !ok {
			continue
		}
		switch {
		case gc.Spec.ControllerName != status.ControllerName:
			o.reject(string(gwv1.GatewayClassReasonUnsupported), "spec.controllerName %q is not gitxds's (%s); gitxds serves the Gateways of the repository whatever their gatewayClassName", gc.Spec.ControllerName, status.ControllerName)
		case gc.Spec.ParametersRef != nil:
			o.reject(string(gwv1.GatewayClassReasonInvalidParameters), "spec.parametersRef is not supported: gitxds reads no parameters; remove it")
		default:
			o.set(CondAccepted, metav1.ConditionTrue, string(gwv1.GatewayClassReasonAccepted),
				"gitxds ("+string(status.ControllerName)+") serves the Gateways of the repository")
		}
	}
}
