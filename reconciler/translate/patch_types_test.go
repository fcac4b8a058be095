package translate

import (
	"testing"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// Every patch target names a type the Sets hold: its short type name.
func TestPatchTypeURL(t *testing.T) {
	for _, target := range []ir.PatchTarget{ir.PatchListener, ir.PatchRouteConfiguration, ir.PatchCluster, ir.PatchClusterLoadAssignment, ir.PatchSecret} {
		u := patchTypeURL(target)
		if u == "" || xdsres.ShortType(u) != string(target) {
			t.Errorf("patchTypeURL(%s) = %q", target, u)
		}
	}
}
