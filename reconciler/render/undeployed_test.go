package render

import (
	"slices"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// A team directory of the layout that the overlay does not include is a
// warning, whether the overlay is built whole or as shards; a team that
// failed to render is reported as such, not as undeployed; a directory
// named teams elsewhere in the repository (a fixture) is not the layout's.
func TestUndeployedTeamsWarned(t *testing.T) {
	mem := filesys.MakeFsInMemory()
	ns := func(name string) string { return "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + name + "}\n" }
	write(t, mem, "/layout/platform/kustomization.yaml", "resources: [ns.yaml]\n")
	write(t, mem, "/layout/platform/ns.yaml", ns("platform"))
	for _, team := range []string{"a", "b", "c", "broken"} {
		write(t, mem, "/layout/teams/"+team+"/kustomization.yaml", "resources: [ns.yaml]\n")
		write(t, mem, "/layout/teams/"+team+"/ns.yaml", ns(team))
	}
	write(t, mem, "/layout/teams/broken/kustomization.yaml", "resources: [missing.yaml]\n")
	write(t, mem, "/testdata/teams/fixture/kustomization.yaml", "resources: []\n")
	write(t, mem, "/overlays/dev/kustomization.yaml", "resources: [../../layout/platform, ../../layout/teams/a, ../../layout/teams/broken]\n")
	want := []string{
		"layout/teams/b/ is not deployed by overlays/dev: add it to the resources of overlays/dev/kustomization.yaml to serve it",
		"layout/teams/c/ is not deployed by overlays/dev: add it to the resources of overlays/dev/kustomization.yaml to serve it",
	}
	for _, whole := range []bool{false, true} {
		res, err := Render(mem, "overlays/dev", Options{Whole: whole, Cache: NewCache(16)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Failed) != 1 {
			t.Errorf("whole=%v: failed %v, want teams/broken", whole, res.Failed)
		}
		if got := UndeployedTeams(mem, "overlays/dev", res); !slices.Equal(got, want) {
			t.Errorf("whole=%v: warnings\n%q\nwant\n%q", whole, got, want)
		}
	}
	// Every team deployed: no warning.
	write(t, mem, "/overlays/dev/kustomization.yaml", "resources: [../../layout/platform, ../../layout/teams/a, ../../layout/teams/b, ../../layout/teams/c, ../../layout/teams/broken]\n")
	res, err := Render(mem, "overlays/dev", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := UndeployedTeams(mem, "overlays/dev", res); len(got) != 0 {
		t.Errorf("every team deployed: warnings %q", got)
	}
}
