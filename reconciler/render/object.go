// Package render builds an environment overlay of the config repository with
// kustomize, in process, confined to the repository.
package render

// Object is one rendered Kubernetes object with its provenance.
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	// File is the source file of the object, relative to the repository root
	// (from kustomize's origin annotation). For a generated object (e.g. by
	// configMapGenerator) it is the kustomization or generator config that
	// generated it.
	File string
	// YAML is the object as kustomize rendered it, without the annotations
	// gitxds added (origin annotations), so it decodes strictly.
	YAML []byte
	// Overlay is the overlay kustomization that changed this object of a
	// team (a patch, a label, a prefix ...), when the render can tell: the
	// team's own kustomization renders it otherwise. Set by sharded renders.
	Overlay string `json:",omitempty"`
}

// ID is "Kind namespace/name" (or "Kind name" for cluster-scoped objects), the
// way every error and status line names an object.
func (o Object) ID() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Result of a render.
type Result struct {
	// Objects in kustomize's output order.
	Objects []Object
	// Warnings about the kustomizations, e.g. deprecated fields, each
	// prefixed with its file.
	Warnings []string
	// Shards is the number of shards the overlay was built as (shard.go),
	// ShardsCached how many of them came from the cache; 0 when it was
	// built whole, for the reason WholeReason gives.
	Shards, ShardsCached int
	WholeReason          string
	// Failed are the team directories that could not be rendered and were
	// left out; everything else was rendered.
	Failed []TeamFailure

	// teams and platforms are the team and platform directories the
	// overlay reaches (UndeployedTeams).
	teams, platforms map[string]bool
}
