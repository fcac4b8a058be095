package model

import (
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// Namespace is the part of a core v1 Namespace gitxds reads: its labels.
type Namespace struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Finalizers []string `json:"finalizers,omitempty"`
	} `json:"spec,omitempty"`
	Status struct {
		Phase string `json:"phase,omitempty"`
	} `json:"status,omitempty"`
}

const gatewayGroup = gwv1.GroupName // gateway.networking.k8s.io

// kinds maps "apiVersion Kind" to a constructor of the typed object.
var kinds = map[string]func() any{
	gatewayGroup + "/v1 GatewayClass":             func() any { return &gwv1.GatewayClass{} },
	gatewayGroup + "/v1 Gateway":                  func() any { return &gwv1.Gateway{} },
	gatewayGroup + "/v1 HTTPRoute":                func() any { return &gwv1.HTTPRoute{} },
	gatewayGroup + "/v1 GRPCRoute":                func() any { return &gwv1.GRPCRoute{} },
	gatewayGroup + "/v1 BackendTLSPolicy":         func() any { return &gwv1.BackendTLSPolicy{} },
	gatewayGroup + "/v1beta1 ReferenceGrant":      func() any { return &gwv1b1.ReferenceGrant{} },
	gatewayGroup + "/v1 ReferenceGrant":           func() any { return &gwv1b1.ReferenceGrant{} },
	"v1 Namespace":                                func() any { return &Namespace{} },
	v1alpha1.APIVersion + " Backend":              func() any { return &v1alpha1.Backend{} },
	v1alpha1.APIVersion + " BackendTrafficPolicy": func() any { return &v1alpha1.BackendTrafficPolicy{} },
	v1alpha1.APIVersion + " SecurityPolicy":       func() any { return &v1alpha1.SecurityPolicy{} },
	v1alpha1.APIVersion + " RolloutPolicy":        func() any { return &v1alpha1.RolloutPolicy{} },
	v1alpha1.APIVersion + " BackendAddressPolicy": func() any { return &v1alpha1.BackendAddressPolicy{} },
	v1alpha1.APIVersion + " EnvoyExtensionPolicy": func() any { return &v1alpha1.EnvoyExtensionPolicy{} },
	v1alpha1.APIVersion + " EnvoyPatchPolicy":     func() any { return &v1alpha1.EnvoyPatchPolicy{} },
}

// decode decodes every object strictly into its Go type: unknown or
// duplicate fields are errors. The typed objects come from the DecodeCache
// and are shared: no step modifies them.
//
// Sets Accepted=False with reason UnsupportedKind (a kind gitxds does not
// serve) or Invalid (the object does not decode).
func (b *builder) decode() {
	for _, o := range b.objects {
		kind := o.src.APIVersion + " " + o.src.Kind
		mk, ok := kinds[kind]
		if !ok {
			o.reject(ReasonUnsupportedKind, "gitxds does not serve %s %s; supported kinds are %s",
				o.src.APIVersion, o.src.Kind, supportedKinds())
			continue
		}
		typed, err := b.decoded.decode(kind, mk, o.src.YAML)
		if err != nil {
			var de *decodeError
			if errors.As(err, &de) && de.field != nil {
				// The field, and its line in the file when it can be found.
				o.line = fieldLine(b.source, o.src, de.field.Path)
				o.reject(ReasonInvalid, "%s", de.field)
				continue
			}
			o.reject(ReasonInvalid, "%s", cleanDecodeError(err))
			continue
		}
		meta := typed.(metav1.Object)
		if meta.GetName() != o.src.Name || meta.GetNamespace() != o.src.Namespace {
			o.reject(ReasonInvalid, "metadata (%q/%q) does not match the rendered object", meta.GetNamespace(), meta.GetName())
			continue
		}
		o.typed = typed
	}
}

func supportedKinds() string {
	return "gateway.networking.k8s.io/v1 GatewayClass, Gateway, HTTPRoute, GRPCRoute; " +
		"gateway.networking.k8s.io/v1beta1 ReferenceGrant; v1 Namespace; " +
		"gitxds.dev/v1alpha1 Backend, BackendAddressPolicy, BackendTrafficPolicy, EnvoyExtensionPolicy, EnvoyPatchPolicy, RolloutPolicy, SecurityPolicy"
}

// cleanDecodeError makes a decoding error read like a sentence for a user.
func cleanDecodeError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error unmarshaling JSON: while decoding JSON: ")
	s = strings.TrimPrefix(s, "error converting YAML to JSON: ")
	return fmt.Sprintf("invalid object: %s", s)
}
