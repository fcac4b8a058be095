package reconciler

import (
	"slices"
	"strings"
	"testing"
)

// serve reports the render's warnings of the revision it built in its
// status, and logs them once: a team directory the overlay does not deploy
// is otherwise silently not served.
func TestUndeployedTeamInStatusAndLog(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	if w := h.rec.Status().Warnings; len(w) != 0 {
		t.Fatalf("warnings with every team deployed: %q", w)
	}
	h.commit(map[string]string{
		"teams/new/kustomization.yaml": "namespace: new\nresources: []\n",
	})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	want := []string{"teams/new/ is not deployed by overlays/dev: add it to the resources of overlays/dev/kustomization.yaml to serve it"}
	if w := h.rec.Status().Warnings; !slices.Equal(w, want) {
		t.Errorf("status warnings %q, want %q", w, want)
	}
	if n := strings.Count(h.log.String(), "teams/new/ is not deployed by overlays/dev"); n != 1 {
		t.Errorf("the warning is logged %d times, want once:\n%s", n, h.log.String())
	}
	// The same revision again: not logged again.
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(h.log.String(), "teams/new/ is not deployed"); n != 1 {
		t.Errorf("the warning is logged %d times after a second poll, want once", n)
	}
}
