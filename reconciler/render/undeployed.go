package render

import (
	"fmt"
	"path"
	"slices"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/layout"
)

// deployedAreas are the team directories and the platform directories the
// walk of an overlay reached (a kustomization or a file in them).
func deployedAreas(w *walker) (teams, platforms map[string]bool) {
	teams, platforms = map[string]bool{}, map[string]bool{}
	add := func(p string) {
		switch a := layout.Of(p); a.Kind {
		case layout.Team:
			teams[a.Root] = true
		case layout.Platform:
			platforms[a.Root] = true
		}
	}
	for p := range w.files {
		add(p)
	}
	for d := range w.kfile {
		add(d)
	}
	return teams, platforms
}

// UndeployedTeams warns of each team directory of the layout that the
// overlay rendered as res does not include: "teams/search/ is not
// deployed by overlays/dev". A team whose directory was added but not
// listed in the overlay is otherwise silently not served. The layout's
// teams/ directories are the top-level one and those next to a team or
// platform directory the overlay reaches (repo-layout/teams/ for
// repo-layout/platform/), so fixtures elsewhere in the repository are not
// taken for teams. A team that was included but left out for a failure
// (res.Failed) is reported as such, not here.
//
// It lists directories outside what the overlay reaches, so Render does
// not call it (the render reads nothing but what the overlay names);
// callers do, after the render.
func UndeployedTeams(fsys filesys.FileSystem, overlay string, res *Result) []string {
	overlay, err := overlayDir(overlay)
	if err != nil || res == nil {
		return nil
	}
	deployed := map[string]bool{}
	for t := range res.teams {
		deployed[t] = true
	}
	for _, f := range res.Failed {
		deployed[f.Team.Root] = true
	}
	platforms := res.platforms
	roots := map[string]bool{"teams": true}
	for t := range deployed {
		roots[path.Dir(t)] = true
	}
	for p := range platforms {
		roots[path.Join(path.Dir(p), "teams")] = true
	}
	var out []string
	for root := range roots {
		if !fsys.IsDir(abs(root)) {
			continue
		}
		names, err := fsys.ReadDir(abs(root))
		if err != nil {
			continue
		}
		for _, n := range names {
			dir := path.Join(root, n)
			if a := layout.Of(dir); a.Kind != layout.Team || a.Root != dir || deployed[dir] || !fsys.IsDir(abs(dir)) {
				continue
			}
			out = append(out, fmt.Sprintf("%s/ is not deployed by %s: add it to the resources of %s/kustomization.yaml to serve it", dir, overlay, overlay))
		}
	}
	slices.Sort(out)
	return out
}
