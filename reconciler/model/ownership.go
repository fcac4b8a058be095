package model

import (
	"sort"
	"strings"

	"gitxds.dev/gitxds/reconciler/layout"
)

// PlatformNamespace is the namespace of the platform's namespaced objects
// (Gateways, and whatever else platform/ defines).
const PlatformNamespace = "platform"

// platformOnly kinds may be defined only in platform/.
var platformOnly = map[string]bool{"GatewayClass": true, "Gateway": true, "Namespace": true, "RolloutPolicy": true, "BackendAddressPolicy": true,
	"EnvoyExtensionPolicy": true, "EnvoyPatchPolicy": true}

// clusterScoped kinds have no namespace.
var clusterScoped = map[string]bool{"Namespace": true, "GatewayClass": true}

// ownerOf returns the namespace the directory of a repository file owns:
// "<team>" for a file under teams/<team>/, PlatformNamespace for a file under
// platform/ (layout.Of decides; the layout may sit below a directory of the
// repository, as in repo-layout/...). team is "" for platform/. ok is false
// for files under neither.
func ownerOf(file string) (team string, ok bool) {
	a := layout.Of(file)
	switch {
	case a.Kind == layout.Team && file != a.Root:
		return a.Team, true
	case a.Kind == layout.Platform && file != a.Root:
		return "", true
	}
	return "", false
}

// ownership enforces the directory identity of docs/architecture.md §1: an object's team
// is the teams/<team>/ directory of its source file and its namespace must
// be <team>; only platform/ defines GatewayClass, Gateway, Namespace, RolloutPolicy,
// BackendAddressPolicy, EnvoyExtensionPolicy and EnvoyPatchPolicy.
//
// Sets Accepted=False with reason NotOwner (wrong directory for the kind, or
// a file outside platform/ and teams/) or InvalidNamespace.
func (b *builder) ownership() {
	for _, o := range b.live() {
		kind, ns := o.src.Kind, o.src.Namespace
		team, ok := ownerOf(o.src.File)
		if !ok {
			if o.src.File == "" {
				o.reject(ReasonNotOwner, "the object has no source file (kustomize origin annotation); only objects from files under platform/ or teams/<team>/ are served")
			} else {
				o.reject(ReasonNotOwner, "objects must live under platform/ or teams/<team>/; move this file there")
			}
			continue
		}
		if team != "" {
			o.owner = team
			if team == PlatformNamespace {
				o.reject(ReasonNotOwner, "the team directory teams/%s/ is not allowed: namespace %q belongs to platform/", team, team)
				continue
			}
			if platformOnly[kind] {
				o.reject(ReasonNotOwner, "only platform/ may define %s objects, not teams/%s/; ask the platform team", kind, team)
				continue
			}
			if ns != team {
				o.reject(ReasonInvalidNamespace, "objects of teams/%s/ must be in namespace %q, not %q; set metadata.namespace: %s (or namespace: %s in the kustomization)", team, team, ns, team, team)
			}
			continue
		}
		// A platform file.
		o.owner = PlatformNamespace
		switch {
		case clusterScoped[kind]:
			if ns != "" {
				o.reject(ReasonInvalid, "%s is cluster-scoped; remove metadata.namespace (%q), and do not set namespace: in the kustomization that lists it", kind, ns)
			}
		case kind == "RolloutPolicy":
			if ns != "" && ns != PlatformNamespace {
				o.reject(ReasonInvalidNamespace, "a RolloutPolicy of platform/ must have no namespace or namespace %q, not %q", PlatformNamespace, ns)
			}
		default:
			if ns != PlatformNamespace {
				o.reject(ReasonInvalidNamespace, "objects of platform/ must be in namespace %q, not %q; set metadata.namespace: %s", PlatformNamespace, ns, PlatformNamespace)
			}
		}
	}
}

// duplicates rejects every copy of an object defined more than once
// (same kind, namespace and name), naming all their files.
//
// Sets Accepted=False with reason Duplicate.
func (b *builder) duplicates() {
	byKey := make(map[string][]*object, len(b.objects))
	var dups []string
	for _, o := range b.live() {
		k := o.src.Kind + " " + o.src.Namespace + "/" + o.src.Name
		byKey[k] = append(byKey[k], o)
		if len(byKey[k]) == 2 {
			dups = append(dups, k)
		}
	}
	sort.Strings(dups)
	for _, k := range dups {
		objs := byKey[k]
		var files []string
		for _, o := range objs {
			files = append(files, o.src.File)
		}
		sort.Strings(files)
		for _, o := range objs {
			o.reject(ReasonDuplicate, "defined more than once (in %s); every copy is ignored until only one is left", strings.Join(files, ", "))
		}
	}
}
