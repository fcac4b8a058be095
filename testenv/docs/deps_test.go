package docs

import (
	"os/exec"
	"strings"
	"testing"
)

// The package boundaries docs/architecture.md describes, checked on the
// import graph: the pipeline's stages and the review tools never link the
// server side (the xDS server, the rollout engine, the persisted state, the
// daemon).
func TestPackageBoundaries(t *testing.T) {
	server := []string{
		"gitxds.dev/gitxds/reconciler/xds",
		"gitxds.dev/gitxds/reconciler/rollout",
		"gitxds.dev/gitxds/reconciler/state",
		"gitxds.dev/gitxds/reconciler/daemon",
	}
	for pkg, banned := range map[string][]string{
		"gitxds.dev/gitxds/reconciler/pipeline":  append([]string{"gitxds.dev/gitxds/reconciler"}, server...),
		"gitxds.dev/gitxds/reconciler/render":    server,
		"gitxds.dev/gitxds/reconciler/model":     server,
		"gitxds.dev/gitxds/reconciler/translate": server,
		"gitxds.dev/gitxds/reconciler/diff":      append([]string{"gitxds.dev/gitxds/reconciler/diff/accept"}, server...),
		// The xDS resource toolkit sits under every stage that reads
		// resources (snapshot, translate, diff): it depends on none.
		"gitxds.dev/gitxds/reconciler/xdsres": append([]string{
			"gitxds.dev/gitxds/reconciler/snapshot",
			"gitxds.dev/gitxds/reconciler/translate",
			"gitxds.dev/gitxds/reconciler/diff",
		}, server...),
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		for _, b := range banned {
			if deps[b] {
				t.Errorf("%s depends on %s", pkg, b)
			}
		}
	}
}
