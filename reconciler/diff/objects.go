package diff

import (
	"sort"

	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/status"
)

// ObjectChange is one rendered object (HTTPRoute, Backend, Gateway, ...)
// added, removed or changed between the two sides.
type ObjectChange struct {
	Kind Kind `json:"kind"`
	// Object is "Kind namespace/name".
	Object string `json:"object"`
	// File is the object's file on the "to" side (the "from" side when
	// removed); WasFile its file on the "from" side when it moved.
	File    string `json:"file"`
	WasFile string `json:"wasFile,omitempty"`
	// Served says how much of the object the "to" side serves when it is
	// not fully accepted (status.Served); empty when accepted.
	Served status.Served `json:"served,omitempty"`
	// Diff is the line diff of the rendered YAML ("-" from, "+" to).
	Diff string `json:"diff,omitempty"`
}

// ObjectChanges compares the rendered objects of two sides by identity
// (kind, namespace, name) and content. st is the status of the "to" side's
// objects (may be nil).
func ObjectChanges(from, to []render.Object, st []status.Object) []ObjectChange {
	served := map[string]status.Served{}
	for _, o := range st {
		if !o.Accepted() {
			s := o.Served
			if s == "" {
				s = status.ServedNone
			}
			served[o.ObjectRef.String()] = s
		}
	}
	old := map[string]render.Object{}
	for _, o := range from {
		old[o.ID()] = o
	}
	cur := map[string]bool{}
	out := []ObjectChange{}
	for _, o := range to {
		id := o.ID()
		cur[id] = true
		a, ok := old[id]
		switch {
		case !ok:
			out = append(out, ObjectChange{Kind: Added, Object: id, File: o.File, Served: served[id]})
		case string(a.YAML) != string(o.YAML) || a.File != o.File:
			ch := ObjectChange{Kind: Changed, Object: id, File: o.File, Served: served[id],
				Diff: lineDiffContext(lines(string(a.YAML)), lines(string(o.YAML)), diffContext)}
			if a.File != o.File {
				ch.WasFile = a.File
			}
			out = append(out, ch)
		}
	}
	for _, o := range from {
		if !cur[o.ID()] {
			out = append(out, ObjectChange{Kind: Removed, Object: o.ID(), File: o.File})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Object < out[j].Object
	})
	return out
}
