package render

import (
	"errors"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// An overlay directory that is missing, or holds no kustomization file, is
// ErrNoOverlay (a caller's usage error, also ErrNotFound), and the message
// names the overlays next to it, sorted.
func TestNoOverlayNamesTheOverlaysNextToIt(t *testing.T) {
	mem := filesys.MakeFsInMemory()
	for _, d := range []string{"prod", "dev", "staging"} {
		write(t, mem, "/overlays/"+d+"/kustomization.yaml", "resources: []\n")
	}
	write(t, mem, "/overlays/empty/README.md", "no kustomization here\n")
	for _, c := range []struct{ overlay, want string }{
		{"overlays/nope", "overlays/nope: no such directory in the repository (overlays next to it: overlays/dev, overlays/prod, overlays/staging)"},
		{"overlays/empty", "overlays/empty: no kustomization file (kustomization.yaml) in the overlay directory (overlays next to it: overlays/dev, overlays/prod, overlays/staging)"},
		{"nowhere/dev", "nowhere/dev: no such directory in the repository"},
	} {
		_, err := Render(mem, c.overlay, Options{})
		if err == nil || err.Error() != c.want || !errors.Is(err, ErrNoOverlay) || !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v,\nwant %s (ErrNoOverlay, ErrNotFound)", c.overlay, err, c.want)
		}
	}
	// A directory an overlay names that has no kustomization is the
	// repository's fault, not ErrNoOverlay.
	write(t, mem, "/overlays/bad/kustomization.yaml", "resources: [../empty]\n")
	if _, err := Render(mem, "overlays/bad", Options{}); err == nil || errors.Is(err, ErrNoOverlay) {
		t.Errorf("a missing base: %v, want an error that is not ErrNoOverlay", err)
	}
}
