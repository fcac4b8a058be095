// Package v1alpha1 holds the Go types of gitxds's own kinds, group
// gitxds.dev, version v1alpha1: Backend, BackendAddressPolicy,
// BackendTrafficPolicy, EnvoyExtensionPolicy, EnvoyPatchPolicy,
// RolloutPolicy and SecurityPolicy.
//
// Backend, BackendTrafficPolicy and SecurityPolicy follow the shape of
// Envoy Gateway's kinds of the same names (a subset of their fields); RolloutPolicy is described in
// docs/architecture.md §4. The model stage decodes them strictly: a field not declared here
// is an error.
//
// docs/reference.md is generated from these types and their comments
// (package apiref): every field needs a comment, and a line of it that
// starts with "Default:" or "Validation:" fills that column. Regenerate it
// with go test ./reconciler/model/apis/apiref -update.
package v1alpha1

// Group and Version of gitxds's own kinds.
const (
	Group      = "gitxds.dev"
	Version    = "v1alpha1"
	APIVersion = Group + "/" + Version
)

// Kinds of this group.
const (
	KindBackend              = "Backend"
	KindBackendTrafficPolicy = "BackendTrafficPolicy"
	KindRolloutPolicy        = "RolloutPolicy"
	KindSecurityPolicy       = "SecurityPolicy"
	KindEnvoyExtensionPolicy = "EnvoyExtensionPolicy"
	KindEnvoyPatchPolicy     = "EnvoyPatchPolicy"
)
