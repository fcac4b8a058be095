package pipeline

import (
	"strings"
	"testing"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
)

// TestEnvoyPatchPolicyStatus runs the pipeline on the example repository
// with two EnvoyPatchPolicies: the one that applies changes the served
// listener; the one whose path does not exist is left out, its status
// says so (PatchFailed, naming the patch), and everything else is served
// and accepted.
func TestEnvoyPatchPolicyStatus(t *testing.T) {
	fsys := exampleFS(t)
	const patches = `apiVersion: gitxds.dev/v1alpha1
kind: EnvoyPatchPolicy
metadata: {name: buffer-limit, namespace: platform}
spec:
  type: JSONPatch
  jsonPatches:
  - type: Listener
    name: port-8080
    operation: {op: add, path: /per_connection_buffer_limit_bytes, value: 32768}
---
apiVersion: gitxds.dev/v1alpha1
kind: EnvoyPatchPolicy
metadata: {name: broken, namespace: platform}
spec:
  type: JSONPatch
  jsonPatches:
  - type: Listener
    name: port-8080
    operation: {op: remove, path: /no_such_field}
`
	if err := fsys.WriteFile("/repo-layout/platform/patches.yaml", []byte(patches)); err != nil {
		t.Fatal(err)
	}
	edit(t, fsys, "repo-layout/platform/kustomization.yaml", func(s string) string { return s + "- patches.yaml\n" })
	b, err := New(render.Options{}).Run(fsys, "overlays/dev", "r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var patched bool
	for _, l := range b.Set.Of(snapshot.Envoy).Listeners {
		if l.GetName() == "port-8080" {
			patched = l.GetPerConnectionBufferLimitBytes().GetValue() == 32768
		}
	}
	if !patched {
		t.Errorf("the listener port-8080 is not patched")
	}
	var seen int
	for _, o := range b.Model.Status {
		switch o.ObjectRef.String() {
		case "EnvoyPatchPolicy platform/buffer-limit":
			seen++
			if status.Problem(o) != nil {
				t.Errorf("good policy: %s", status.Line(o))
			}
		case "EnvoyPatchPolicy platform/broken":
			seen++
			c := status.Problem(o)
			if c == nil || c.Reason != model.ReasonPatchFailed || !strings.Contains(c.Message, "/no_such_field") {
				t.Errorf("broken policy: %s", status.Line(o))
			}
			if _, ok := b.Model.Accepted["EnvoyPatchPolicy platform/broken"]; ok {
				t.Errorf("the broken policy is kept as last accepted")
			}
		default:
			if status.Problem(o) != nil {
				t.Errorf("rejected: %s", status.Line(o))
			}
		}
	}
	if seen != 2 {
		t.Errorf("saw %d of the 2 policies' status", seen)
	}
}
