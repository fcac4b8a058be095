package render

import (
	"errors"
	"path"
	"path/filepath"
	"slices"

	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/layout"
)

// TeamFailure is a team directory that could not be rendered: the entry of
// the overlay's resources that names it was left out of the render.
type TeamFailure struct {
	// Entry is the overlay's resources entry, e.g. "../../teams/search".
	Entry string
	// Team is the team directory the entry lies in.
	Team layout.Area
	// Err names the file and the reason.
	Err *Error
}

func teamFailure(w *walker, dir, entry string, err error) TeamFailure {
	p := path.Join(dir, filepath.ToSlash(entry))
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{File: w.kfile[dir], Err: err}
	}
	return TeamFailure{Entry: entry, Team: layout.Of(p), Err: e}
}

// isTeamEntry reports whether an entry of the overlay in dir lies in a team
// directory.
func isTeamEntry(dir, entry string) bool {
	return layout.Of(path.Join(dir, filepath.ToSlash(entry))).Kind == layout.Team
}

// withoutEntries is fsys with the overlay's kustomization in dir listing
// entries minus the failed ones.
func withoutEntries(fsys filesys.FileSystem, dir string, entries []string, failed []TeamFailure) (filesys.FileSystem, error) {
	w := newWalker(fsys, Limits{})
	kf, err := w.findKustomizationFile(dir, "", "overlay")
	if err != nil {
		return nil, err
	}
	data, err := fsys.ReadFile(abs(kf))
	if err != nil {
		return nil, &Error{File: kf, Err: err}
	}
	keep := slices.DeleteFunc(slices.Clone(entries), func(e string) bool {
		return slices.ContainsFunc(failed, func(f TeamFailure) bool { return f.Entry == e })
	})
	edited, err := shardKustomization(data, keep)
	if err != nil {
		return nil, refuse(kf, ErrMalformed, "cannot leave out the failed team directories: %v", err)
	}
	return overrideFS{FileSystem: fsys, path: abs(kf), data: edited}, nil
}

// wholeFailures finds, after a whole build of the overlay failed, the team
// entries whose build alone fails the same way: each is built as a shard
// (the overlay with just that entry) on the staged files.
func wholeFailures(src filesys.FileSystem, w *walker, dir string, st *staged) []TeamFailure {
	kf := w.kfile[dir]
	orig, err := src.ReadFile(abs(kf))
	if err != nil {
		return nil
	}
	var failed []TeamFailure
	for _, e := range w.kust[dir].Resources {
		if !isTeamEntry(dir, e) {
			continue
		}
		kust, err := shardKustomization(orig, []string{e})
		if err != nil {
			return nil
		}
		if _, err := st.build(kf, kust); err != nil {
			failed = append(failed, teamFailure(w, dir, e, err))
		}
	}
	// The staged overlay kustomization was overwritten: restore it.
	if err := st.fs.WriteFile(path.Join(st.tr.repoDir, kf), orig); err != nil {
		return nil
	}
	return failed
}

// overlayTransforms reports whether the overlay in dir (or a component of
// it) has a field that changes the objects of its resources.
func overlayTransforms(w *walker, dir string) bool {
	k := w.kust[dir]
	if k == nil {
		return false
	}
	if len(k.Patches) > 0 || len(k.PatchesJson6902) > 0 || len(k.PatchesStrategicMerge) > 0 || k.NamePrefix != "" || k.NameSuffix != "" ||
		k.Namespace != "" || len(k.Labels) > 0 || len(k.CommonLabels) > 0 || len(k.CommonAnnotations) > 0 || len(k.Images) > 0 ||
		len(k.Replicas) > 0 || len(k.Replacements) > 0 || len(k.Transformers) > 0 {
		return true
	}
	for _, c := range k.Components {
		if overlayTransforms(w, path.Join(dir, c)) {
			return true
		}
	}
	return false
}

// markOverlaid sets Object.Overlay on each object of a team's shard that the
// overlay changed: absent from, or different in, what the team's own
// kustomization renders (alone).
func markOverlaid(objs []Object, alone resmap.ResMap, overlayFile string) {
	if alone == nil {
		return
	}
	own := make(map[string]string, alone.Size())
	for _, r := range alone.Resources() {
		if err := r.SetOrigin(nil); err != nil {
			return
		}
		y, err := r.AsYAML()
		if err != nil {
			return
		}
		own[objectID(r.GetKind(), r.GetNamespace(), r.GetName())] = string(y)
	}
	for i := range objs {
		if y, ok := own[objs[i].ID()]; !ok || y != string(objs[i].YAML) {
			objs[i].Overlay = overlayFile
		}
	}
}
