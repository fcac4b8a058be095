package model

import (
	"fmt"
	"strings"

	"gitxds.dev/gitxds/reconciler/yamlfield"
)

// validList is " (valid: a, b, c)" after a name that was not found, or
// none (e.g. " (namespace shop has no accepted Backend)") when there is no
// valid name to list.
func validList(names []string, none string) string {
	if v := validPhrase(names, none); v != "" {
		return " (" + v + ")"
	}
	return ""
}

// validPhrase is "valid: a, b, c", or none when names is empty.
func validPhrase(names []string, none string) string {
	if len(names) == 0 {
		return none
	}
	return "valid: " + yamlfield.ListNames(names)
}

// backendNames are the names of the accepted Backends of namespace ns.
func (b *builder) backendNames(ns string) []string {
	var names []string
	for key := range b.backends {
		if n, ok := strings.CutPrefix(key, ns+"/"); ok {
			names = append(names, n)
		}
	}
	return names
}

// noBackend is the message for a Backend ns/name that is not there.
func (b *builder) noBackend(ns, name string) string {
	return fmt.Sprintf("Backend %s/%s does not exist or is not accepted%s", ns, name,
		validList(b.backendNames(ns), fmt.Sprintf("namespace %s has no accepted Backend", ns)))
}

// gatewayNames are the names of the Gateways of namespace ns, or, when it
// has none, every Gateway as namespace/name.
func (b *builder) gatewayNames(ns string) []string {
	var in, all []string
	for _, g := range b.gws {
		all = append(all, g.gw.Namespace+"/"+g.gw.Name)
		if g.gw.Namespace == ns {
			in = append(in, g.gw.Name)
		}
	}
	if len(in) > 0 {
		return in
	}
	return all
}
