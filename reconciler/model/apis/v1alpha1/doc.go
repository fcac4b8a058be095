// Package v1alpha1 holds the Go types of gitxds's own kinds, group
// gitxds.dev, version v1alpha1: Backend, BackendTrafficPolicy and
// RolloutPolicy.
//
// Backend and BackendTrafficPolicy follow the shape of Envoy Gateway's kinds
// of the same names (a subset of their fields); RolloutPolicy is described in
// docs/architecture.md §4. The model stage decodes them strictly: a field not declared here
// is an error.
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
)
