package render

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/yaml"
)

// DefaultMaxObjects is the object limit when Options.MaxObjects is zero.
const DefaultMaxObjects = 50_000

// Options of a render.
type Options struct {
	// MaxObjects caps the number of rendered objects: 0 means
	// DefaultMaxObjects, a negative value means no cap.
	MaxObjects int
	// Whole builds the overlay in one kustomize run, never as shards
	// (shard.go).
	Whole bool
	// Cache holds rendered shards; nil means a process-wide cache.
	Cache *Cache
	// Limits bound every file the build reads (limits.go).
	Limits Limits
}

func (o Options) maxObjects() int {
	if o.MaxObjects == 0 {
		return DefaultMaxObjects
	}
	return o.MaxObjects
}

// Render builds the kustomize overlay directory `overlay` (relative to the
// repository root, e.g. "overlays/dev") of the repository held by fsys (an
// in-memory file system whose root "/" is the repository root), in process.
//
// The build is confined: before kustomize runs, every kustomization
// reachable from the overlay is checked (confine.go), every file it may read
// is parsed within opts.Limits, and absolute paths, paths leaving the
// repository or a team's or the platform's directory, remote bases and
// files, exec, Go and container plugins and helm charts are refused.
// Kustomize then runs with builtin plugins only and root-only load
// restrictions, on a copy of just the files the check approved. fsys is not
// modified.
//
// Faults are isolated per team: an entry of the overlay's resources that
// lies in a team directory and cannot be rendered (its files are malformed
// or over a limit, it leaves its directory, kustomize fails on it) is left
// out and reported in Result.Failed; everything else renders. A failure
// anywhere else (platform/, the overlay) fails the render.
//
// Every error is an *Error naming the repository file it is about.
func Render(fsys filesys.FileSystem, overlay string, opts Options) (*Result, error) {
	dir, err := overlayDir(overlay)
	if err != nil {
		return nil, err
	}
	var failed []TeamFailure
	view := fsys
	for {
		res, entries, more, err := renderView(view, dir, opts)
		if err != nil {
			return nil, err
		}
		if len(more) == 0 {
			res.Failed = failed
			return res, nil
		}
		// Render again without the failed entries. Each round removes at
		// least one entry, and shards already built come from the cache.
		failed = append(failed, more...)
		if view, err = withoutEntries(fsys, dir, entries, failed); err != nil {
			return nil, err
		}
	}
}

// renderView renders the overlay in dir of fsys once. It returns the
// overlay's resources entries, and either a result or the team entries that
// failed (the caller renders again without them).
func renderView(fsys filesys.FileSystem, dir string, opts Options) (*Result, []string, []TeamFailure, error) {
	w := newWalker(fsys, opts.Limits)
	w.top = dir
	var failed []TeamFailure
	w.isolate = func(entry string, err error) { failed = append(failed, teamFailure(w, dir, entry, err)) }
	err := w.kustomization(dir, "", "overlay", false, "")
	var entries []string
	if k := w.kust[dir]; k != nil {
		entries = k.Resources
	}
	if err != nil || len(failed) > 0 {
		return nil, entries, failed, err
	}
	if max := opts.maxObjects(); max > 0 && w.docs > max {
		return nil, entries, nil, refuse(w.kfile[dir], ErrTooManyObjects, "the overlay lists %d objects, more than the limit of %d", w.docs, max)
	}
	reason := "Options.Whole"
	if !opts.Whole {
		var res *Result
		if res, failed, err, reason = renderShards(fsys, w, dir, opts); reason == "" {
			if res != nil {
				res.teams, res.platforms = deployedAreas(w)
			}
			return res, entries, failed, err
		}
	}
	st, err := stage(fsys, w, dir, w.files)
	if err != nil {
		return nil, entries, nil, err
	}
	m, err := build(st.fs, st.topDir, w.openapi)
	if err != nil {
		// Which team entries fail on their own? Without them, the rest may
		// build.
		if failed := wholeFailures(fsys, w, dir, st); len(failed) > 0 {
			return nil, entries, failed, nil
		}
		return nil, entries, nil, st.tr.wrap(err)
	}
	if max := opts.maxObjects(); max > 0 && m.Size() > max {
		return nil, entries, nil, refuse(w.kfile[dir], ErrTooManyObjects, "the overlay renders %d objects, more than the limit of %d", m.Size(), max)
	}
	objs, err := st.objects(m)
	if err != nil {
		return nil, entries, nil, err
	}
	res := &Result{Objects: objs, Warnings: w.warnings, WholeReason: reason}
	res.teams, res.platforms = deployedAreas(w)
	return res, entries, nil, nil
}

// YAML is the rendered objects as a YAML stream, byte for byte as
// `kustomize build` (and `kubectl kustomize`) prints the overlay, without the
// annotations gitxds added.
func (r *Result) YAML() []byte {
	var b bytes.Buffer
	for i, o := range r.Objects {
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(o.YAML)
	}
	return b.Bytes()
}

func overlayDir(overlay string) (string, error) {
	o := filepath.ToSlash(overlay)
	if o == "" || path.IsAbs(o) || filepath.IsAbs(overlay) {
		return "", refuse(overlay, ErrOutsideRepository, "overlay must be a directory relative to the repository root")
	}
	o = path.Clean(o)
	if o == ".." || strings.HasPrefix(o, "../") {
		return "", refuse(overlay, ErrOutsideRepository, "overlay leaves the repository")
	}
	return o, nil
}

// staged is the file system kustomize builds from: the approved files of the
// repository under repoDir, and a top kustomization in topDir that includes
// the overlay and turns origin annotations on.
//
// repoDir holds a random nonce, so a genuine origin annotation (a path from
// topDir) always starts with "../<repoDir>/": an annotation forged by the
// repository (a patch or commonAnnotations setting config.kubernetes.io/origin)
// cannot, and is refused.
type staged struct {
	fs      filesys.FileSystem
	topDir  string
	overlay string
	prefix  string // "../repo-<nonce>/", the prefix of genuine origin paths
	// userOrigin, userTransformations: the overlay asked for these
	// annotations itself (buildMetadata), so they stay in the output, with
	// the paths `kustomize build <overlay>` would print.
	userOrigin, userTransformations bool
	tr                              *translator
}

// stage copies files (approved by the walk w, or a part of them) to the
// staged file system.
func stage(src filesys.FileSystem, w *walker, overlay string, files map[string]bool) (*staged, error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	repoBase := "repo-" + hex.EncodeToString(nonce[:])
	st := &staged{
		fs:      filesys.MakeFsInMemory(),
		topDir:  "/gitxds-" + hex.EncodeToString(nonce[:4]),
		overlay: overlay,
		prefix:  "../" + repoBase + "/",
	}
	st.tr = &translator{repoDir: "/" + repoBase, topDir: st.topDir, overlay: overlay, files: w.files, kfile: w.kfile, defines: w.defines}
	for p := range files {
		data, err := src.ReadFile(abs(p))
		if err != nil {
			return nil, &Error{File: p, Err: err}
		}
		if err := st.fs.WriteFile(path.Join("/", repoBase, p), data); err != nil {
			return nil, &Error{File: p, Err: err}
		}
	}
	k := w.kust[overlay]
	st.userOrigin = slices.Contains(k.BuildMetadata, types.OriginAnnotations)
	st.userTransformations = slices.Contains(k.BuildMetadata, types.TransformerAnnotations)
	top := types.Kustomization{
		TypeMeta:      types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		BuildMetadata: k.BuildMetadata,
		SortOptions:   k.SortOptions,
	}
	if !st.userOrigin {
		top.BuildMetadata = append(slices.Clone(k.BuildMetadata), types.OriginAnnotations)
	}
	// The overlay, seen from topDir.
	ref := strings.TrimSuffix(st.prefix+overlay, "/.")
	if k.Kind == types.ComponentKind {
		top.Components = []string{ref}
	} else {
		top.Resources = []string{ref}
	}
	data, err := yaml.Marshal(top)
	if err != nil {
		return nil, err
	}
	if err := st.fs.WriteFile(st.topDir+"/kustomization.yaml", data); err != nil {
		return nil, err
	}
	return st, nil
}

// Kustomize keeps the OpenAPI schema in process-wide state (kyaml's openapi
// package), which a kustomization's `openapi` field sets. Builds are
// serialized, and one that follows a build with a custom schema starts from
// the default again (resetting costs a re-parse of the builtin schema, so it
// is done only then).
var (
	buildMu sync.Mutex
	// schemaSet: the last build may have set a custom schema. Guarded by buildMu.
	schemaSet bool
)

// build runs kustomize on the kustomization in dir, with builtin plugins only
// (no exec, Go or container plugins, no helm) and root-only load
// restrictions. customSchema says whether a kustomization of the build has an
// `openapi` field. It is the unit of work a sharded render would run once per
// base.
func build(fsys filesys.FileSystem, dir string, customSchema bool) (resmap.ResMap, error) {
	opts := &krusty.Options{
		Reorder:          krusty.ReorderOptionUnspecified,
		LoadRestrictions: types.LoadRestrictionsRootOnly,
		PluginConfig:     types.DisabledPluginConfig(),
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if schemaSet {
		openapi.ResetOpenAPI()
	}
	schemaSet = customSchema
	return krusty.MakeKustomizer(opts).Run(fsys, dir)
}

// objects converts the build output: provenance from the origin annotations,
// which are then removed (unless the overlay asked for them).
func (st *staged) objects(m resmap.ResMap) ([]Object, error) {
	objs := make([]Object, 0, m.Size())
	for _, r := range m.Resources() {
		id := objectID(r.GetKind(), r.GetNamespace(), r.GetName())
		origin, err := r.GetOrigin()
		if err != nil {
			return nil, &Error{File: st.tr.kfile[st.overlay], Object: id, Err: fmt.Errorf("reading origin annotation: %w", err)}
		}
		file, err := st.originFile(origin)
		if err != nil {
			return nil, &Error{File: st.tr.kfile[st.overlay], Object: id, Err: err}
		}
		if err := st.cleanAnnotations(r, origin); err != nil {
			return nil, &Error{File: file, Object: id, Err: err}
		}
		y, err := r.AsYAML()
		if err != nil {
			return nil, &Error{File: file, Object: id, Err: err}
		}
		objs = append(objs, Object{
			APIVersion: r.GetApiVersion(),
			Kind:       r.GetKind(),
			Namespace:  r.GetNamespace(),
			Name:       r.GetName(),
			File:       file,
			YAML:       y,
		})
	}
	return objs, nil
}

var errForgedOrigin = &refusal{kind: ErrReservedAnnotation,
	msg: "its config.kubernetes.io/origin annotation was not written by kustomize (a patch or commonAnnotations sets or removes it); provenance annotations may not be set by the repository"}

// originFile is the repository file an origin points at: the file the object
// was read from, or the kustomization whose generator made it.
func (st *staged) originFile(o *resource.Origin) (string, error) {
	if o == nil || o.Repo != "" {
		return "", errForgedOrigin
	}
	p := o.Path
	if p == "" {
		p = o.ConfiguredIn
	}
	rel, ok := strings.CutPrefix(filepath.ToSlash(p), st.prefix)
	if !ok || !st.tr.files[rel] {
		return "", errForgedOrigin
	}
	return rel, nil
}

// cleanAnnotations removes the origin annotation, or, when the overlay asked
// for origin (or transformer) annotations, rewrites their paths to the ones
// `kustomize build <overlay>` prints.
func (st *staged) cleanAnnotations(r *resource.Resource, o *resource.Origin) error {
	if st.userTransformations {
		ts, err := r.GetTransformations()
		if err != nil {
			return err
		}
		if ts != nil {
			for i, t := range ts {
				c := st.userPaths(t)
				ts[i] = &c
			}
			if err := r.ClearTransformations(); err != nil {
				return err
			}
			for _, t := range ts {
				if err := r.AddTransformation(t); err != nil {
					return err
				}
			}
		}
	}
	if !st.userOrigin {
		return r.SetOrigin(nil)
	}
	c := st.userPaths(o)
	return r.SetOrigin(&c)
}

// userPaths rewrites the staged paths of an origin to paths relative to the
// overlay directory, as a build of the overlay itself records them.
func (st *staged) userPaths(o *resource.Origin) resource.Origin {
	c := o.Copy()
	fix := func(p string) string {
		rel, ok := strings.CutPrefix(filepath.ToSlash(p), st.prefix)
		if !ok {
			return p
		}
		out, err := filepath.Rel(filepath.FromSlash(st.overlay), filepath.FromSlash(rel))
		if err != nil {
			return p
		}
		return filepath.ToSlash(out)
	}
	if c.Path != "" {
		c.Path = fix(c.Path)
	}
	if c.ConfiguredIn != "" {
		c.ConfiguredIn = fix(c.ConfiguredIn)
	}
	return c
}
