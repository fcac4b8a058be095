package pipeline

import (
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/layout"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/status"
)

// Per-team fault isolation: a team directory the render left out
// (render.TeamFailure) keeps serving the last accepted version of each of
// its objects, and reports itself as a rejected object of kind
// Kustomization, named by its directory, whose Accepted condition names
// the file and the reason. Every other team's changes go on.

// KindTeamDirectory is the kind of the status entry of a team directory
// that could not be rendered.
const KindTeamDirectory = "Kustomization"

// heldObjects are the last accepted objects whose source file lies in a
// failed team's directory, in a stable order.
func heldObjects(failed []render.TeamFailure, lastAccepted map[string]render.Object) []render.Object {
	if len(failed) == 0 || len(lastAccepted) == 0 {
		return nil
	}
	var held []render.Object
	for _, o := range lastAccepted {
		for _, f := range failed {
			if f.Team.Contains(o.File) {
				held = append(held, o)
				break
			}
		}
	}
	sort.Slice(held, func(i, j int) bool { return model.Key(held[i]) < model.Key(held[j]) })
	return held
}

// reportFailedTeams adds a status entry per failed team directory to out,
// and marks the status of each held object.
func reportFailedTeams(out *model.Output, failed []render.TeamFailure, held []render.Object) {
	if len(failed) == 0 {
		return
	}
	heldIn := map[string]int{}
	heldKeys := map[string]bool{}
	for _, o := range held {
		heldKeys[model.Key(o)] = true
		heldIn[layout.Of(o.File).Root]++
	}
	for i := range out.Status {
		st := &out.Status[i]
		if heldKeys[st.ObjectRef.String()] && st.ServingLastAccepted == "" {
			st.ServingLastAccepted = fmt.Sprintf("%s could not be rendered; the last accepted version keeps serving", layout.Of(st.File).Dir())
		}
	}
	for _, f := range failed {
		kept := "nothing of it was accepted before, so nothing of it is served"
		if n := heldIn[f.Team.Root]; n > 0 {
			kept = fmt.Sprintf("the last accepted version of its %d object(s) keeps serving", n)
		}
		file := f.Err.File
		if file == "" {
			file = f.Team.Dir()
		}
		out.Status = append(out.Status, status.Object{
			ObjectRef: ir.ObjectRef{Kind: KindTeamDirectory, Name: f.Team.Root, File: file},
			Conditions: []metav1.Condition{{
				Type:    "Accepted",
				Status:  metav1.ConditionFalse,
				Reason:  status.ReasonRenderFailed,
				Message: fmt.Sprintf("%s cannot be rendered: %v; %s; every other team's changes are served", f.Team.Dir(), f.Err, kept),
			}},
		})
	}
	status.Sort(out.Status)
}

// reportOverlaid marks the status of each team object an overlay changed.
func reportOverlaid(out *model.Output, objs []render.Object) {
	by := map[string]string{}
	for _, o := range objs {
		if o.Overlay != "" {
			by[model.Key(o)] = o.Overlay
		}
	}
	if len(by) == 0 {
		return
	}
	for i := range out.Status {
		if f, ok := by[out.Status[i].ObjectRef.String()]; ok && out.Status[i].Kind != KindTeamDirectory {
			out.Status[i].PatchedByOverlay = f
		}
	}
}
