// Package crds holds the CustomResourceDefinitions of gitxds's
// high-availability rollout state (FleetRollout, ReplicaReport; group
// gitxds.dev). The YAML files here are both what deploy/ha applies and,
// embedded, what `gitxds serve --install-crds` applies: one copy.
package crds

import "embed"

// FS holds the CustomResourceDefinitions, one a file.
//
//go:embed gitxds.dev_*.yaml
var FS embed.FS
