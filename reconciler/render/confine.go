package render

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gitxds.dev/gitxds/reconciler/layout"
	"gitxds.dev/gitxds/reconciler/yamlfield"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// walker checks the kustomization graph reachable from an overlay before
// kustomize sees it (the confinement boundary), and records every file the
// build may read. Paths are relative to the repository root, slash-separated,
// "." for the root itself.
type walker struct {
	src filesys.FileSystem
	// files the build may read; nothing else is staged for kustomize.
	files map[string]bool
	// kfile maps a kustomization directory to its kustomization file.
	kfile map[string]string
	kust  map[string]*types.Kustomization
	done  map[walkKey]bool
	stack []string
	// docs counts the objects of the resource files, for an early MaxObjects.
	docs int
	// defines lists the "Kind name" of the objects of each resource file, as
	// written (before any transformation), to find an object's file in
	// kustomize's errors.
	defines map[string][]string
	// openapi: some kustomization sets a custom OpenAPI schema.
	openapi  bool
	warnings []string
	// sums are the content hashes of the kustomization and resource files
	// read (shard keys).
	sums map[string][32]byte
	// known are content hashes of files of the same file system from an
	// earlier walk of the same render (nil: none). A file whose hash is
	// known is read again only when its parse is not memoized.
	known map[string][32]byte
	lim   Limits
	// top is the overlay directory the walk starts from.
	top string
	// isolate, when set, receives the failure of each entry of the
	// overlay's resources that lies in a team directory, instead of the
	// walk failing (per-team fault isolation); the walk goes on without it.
	isolate func(entry string, err error)
	// entryDocs counts the objects of each entry of the overlay's resources.
	entryDocs map[string]int
}

type walkKey struct {
	dir string
	// pluginRoot is set when the directory holds generator, transformer or
	// validator configs: the directory of the kustomization that lists it
	// (its paths are relative to that one).
	pluginRoot string
}

func newWalker(src filesys.FileSystem, lim Limits) *walker {
	return &walker{
		lim:       lim.withDefaults(),
		entryDocs: map[string]int{},
		src:       src,
		files:     map[string]bool{},
		kfile:     map[string]string{},
		kust:      map[string]*types.Kustomization{},
		done:      map[walkKey]bool{},
		defines:   map[string][]string{},
		sums:      map[string][32]byte{},
	}
}

// reservedAnnotations are the annotations kustomize writes for provenance;
// inputs that set them could forge an object's origin.
var reservedAnnotations = []string{
	"config.kubernetes.io/origin",
	"alpha.config.kubernetes.io/transformations",
}

// kustomization checks the kustomization in dir, reached from file `from`
// through `field`, and everything it references.
func (w *walker) kustomization(dir, from, field string, component bool, pluginRoot string) error {
	key := walkKey{dir, pluginRoot}
	if w.done[key] {
		return nil
	}
	for i, d := range w.stack {
		if d == dir {
			cycle := append(append([]string{}, w.stack[i:]...), dir)
			return refuse(from, ErrMalformed, "kustomizations include each other: %s", strings.Join(cycle, " -> "))
		}
	}
	w.stack = append(w.stack, dir)
	defer func() { w.stack = w.stack[:len(w.stack)-1] }()

	kf, err := w.findKustomizationFile(dir, from, field)
	if err != nil {
		return err
	}
	sum, data, err := w.sum(kf)
	if err != nil {
		return err
	}
	pk, ok := kustomizationMemo.get(sum)
	if !ok {
		if data, err = w.content(kf, data); err != nil {
			return err
		}
		if pk, err = parseKustomization(kf, data, w.lim); err != nil {
			return err
		}
		kustomizationMemo.put(sum, pk)
	}
	k := pk.k
	for _, m := range pk.deprecated {
		w.warnings = append(w.warnings, kf+": "+m)
	}
	switch {
	case component && k.Kind != types.ComponentKind:
		return refuse(from, ErrMalformed, "component %q: %s is not a kind: Component", dir, kf)
	case !component && k.Kind == types.ComponentKind && from != "":
		return refuse(from, ErrMalformed, "%s %q: %s is a Component; list it under components", field, dir, kf)
	}
	w.files[kf] = true
	w.kfile[dir] = kf
	w.kust[dir] = k
	if err := w.fields(dir, kf, k, pluginRoot); err != nil {
		return err
	}
	w.done[key] = true
	return nil
}

// parsedKustomization is a valid kustomization file's content, parsed and
// fixed up (FixKustomization) as kustomize does, with the messages of its
// deprecated fields. Read-only: it is shared by the walks of every render
// that reads the same content.
type parsedKustomization struct {
	k          *types.Kustomization
	deprecated []string
}

// kustomizationMemo remembers parsed kustomization files by content hash,
// process wide: a render walks each kustomization once for the overlay and
// once for its shard, and the next render walks the same files again.
// Parsing (yaml.v2 and yaml.v3, then the JSON decoding of types.
// Kustomization) was a third of a 200-team one-team change's render.
var kustomizationMemo = newLRU[[32]byte, *parsedKustomization](1 << 14)

// parseKustomization checks and parses kustomization file kf.
var kustomizationType = reflect.TypeFor[types.Kustomization]()

func parseKustomization(kf string, data []byte, lim Limits) (*parsedKustomization, error) {
	if _, err := lim.parseYAML(kf, data); err != nil {
		return nil, err
	}
	if err := checkReserved(kf, data); err != nil {
		return nil, err
	}
	k := &types.Kustomization{}
	if err := k.Unmarshal(data); err != nil {
		// The field, its line and the closest valid name. (kustomize allows
		// duplicate keys: a duplicate is not what failed.)
		if fe := yamlfield.Diagnose(kustomizationType, data); fe != nil && fe.Msg != yamlfield.MsgDuplicate {
			e := refuse(kf, ErrMalformed, "invalid Kustomization: %s", fe)
			e.Line = yamlfield.Line(data, fe.Path)
			return nil, e
		}
		return nil, refuse(kf, ErrMalformed, "%v", err)
	}
	pk := &parsedKustomization{k: k}
	for _, m := range *k.CheckDeprecatedFields() {
		pk.deprecated = append(pk.deprecated, strings.TrimPrefix(m, "# "))
	}
	k.FixKustomization()
	if errs := k.EnforceFields(); len(errs) > 0 {
		return nil, refuse(kf, ErrMalformed, "%s", strings.Join(errs, "; "))
	}
	return pk, nil
}

// sum returns the content hash of repository file p and records it, with
// the file's content unless the hash was known (then data is nil).
func (w *walker) sum(p string) (sum [32]byte, data []byte, err error) {
	if s, ok := w.known[p]; ok {
		w.sums[p] = s
		return s, nil, nil
	}
	if data, err = w.read(p); err != nil {
		return sum, nil, err
	}
	sum = sha256.Sum256(data)
	w.sums[p] = sum
	return sum, data, nil
}

// content is data, or the content of p when data is nil (sum did not read
// it).
func (w *walker) content(p string, data []byte) ([]byte, error) {
	if data != nil {
		return data, nil
	}
	return w.read(p)
}

// read reads repository file p within the file size limit.
func (w *walker) read(p string) ([]byte, error) {
	data, err := w.src.ReadFile(abs(p))
	if err != nil {
		return nil, &Error{File: p, Err: err}
	}
	if err := w.lim.checkSize(p, data); err != nil {
		return nil, err
	}
	return data, nil
}

func (w *walker) findKustomizationFile(dir, from, field string) (string, error) {
	var found []string
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		p := path.Join(dir, n)
		if w.isFile(p) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		if from == "" {
			return "", w.noOverlay(dir)
		}
		return "", refuse(from, ErrNotFound, "%s %q: directory %s has no kustomization file", field, dir, dir)
	case 1:
		return found[0], nil
	default:
		return "", refuse(dir, ErrMalformed, "more than one kustomization file: %s", strings.Join(found, ", "))
	}
}

// noOverlay is the error for an overlay directory dir that is missing or
// has no kustomization file, naming the overlays next to it.
func (w *walker) noOverlay(dir string) error {
	what := "no kustomization file (kustomization.yaml) in the overlay directory"
	if !w.src.IsDir(abs(dir)) {
		what = "no such directory in the repository"
	}
	var near []string
	if infos, err := w.src.ReadDir(abs(path.Dir(dir))); err == nil {
		for _, name := range infos {
			d := path.Join(path.Dir(dir), name)
			if d == dir || !w.src.IsDir(abs(d)) {
				continue
			}
			for _, n := range konfig.RecognizedKustomizationFileNames() {
				if w.isFile(path.Join(d, n)) {
					near = append(near, d)
					break
				}
			}
		}
	}
	if len(near) > 0 {
		what += fmt.Sprintf(" (overlays next to it: %s)", yamlfield.ListNames(near))
	}
	return refuse(dir, ErrNoOverlay, "%s", what)
}

// fields checks every field of k that names a file or directory, or runs
// something.
func (w *walker) fields(dir, kf string, k *types.Kustomization, pluginRoot string) error {
	if len(k.HelmCharts) > 0 || k.HelmGlobals != nil {
		return refuse(kf, ErrPlugin, "helmCharts are not allowed (kustomize would run helm); render the chart and commit its output")
	}
	for _, r := range k.Resources {
		if dir != w.top || pluginRoot != "" {
			if err := w.resource(dir, kf, r, pluginRoot); err != nil {
				return err
			}
			continue
		}
		if err := w.overlayEntry(dir, kf, r); err != nil {
			return err
		}
	}
	for _, c := range k.Components {
		p, err := w.dir(dir, kf, "component", c)
		if err != nil {
			return err
		}
		if err := w.kustomization(p, kf, "component", true, pluginRoot); err != nil {
			return err
		}
	}
	for _, c := range k.Crds {
		if _, err := w.yamlFile(dir, kf, "crd", c, false); err != nil {
			return err
		}
	}
	for _, c := range k.Configurations {
		if _, err := w.yamlFile(dir, kf, "configuration", c, true); err != nil {
			return err
		}
	}
	if len(k.OpenAPI) > 0 {
		w.openapi = true
	}
	if p, ok := k.OpenAPI["path"]; ok {
		if _, err := w.yamlFile(dir, kf, "openapi path", p, false); err != nil {
			return err
		}
	}
	for _, p := range k.PatchesStrategicMerge {
		if err := w.patchStrategicMerge(dir, kf, string(p)); err != nil {
			return err
		}
	}
	for _, list := range [][]types.Patch{k.Patches, k.PatchesJson6902} {
		for _, p := range list {
			if p.Path == "" {
				continue
			}
			if _, err := w.yamlFile(dir, kf, "patch", p.Path, true); err != nil {
				return err
			}
		}
	}
	for _, r := range k.Replacements {
		if r.Path == "" {
			continue
		}
		if _, err := w.yamlFile(dir, kf, "replacement", r.Path, true); err != nil {
			return err
		}
	}
	for _, g := range k.ConfigMapGenerator {
		if err := w.kvSources(dir, kf, "configMapGenerator", g.KvPairSources); err != nil {
			return err
		}
	}
	for _, g := range k.SecretGenerator {
		if err := w.kvSources(dir, kf, "secretGenerator", g.KvPairSources); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		field   string
		entries []string
	}{{"generator", k.Generators}, {"transformer", k.Transformers}, {"validator", k.Validators}} {
		for _, e := range l.entries {
			if err := w.pluginEntry(dir, kf, l.field, e); err != nil {
				return err
			}
		}
	}
	for key := range k.CommonAnnotations {
		if err := checkReserved(kf, []byte(key)); err != nil {
			return err
		}
	}
	return nil
}

// resource checks one `resources` entry: a file, or a directory with a
// kustomization. In a directory of plugin configs (pluginRoot set), files are
// generator, transformer or validator configs.
func (w *walker) resource(dir, kf, ref, pluginRoot string) error {
	p, err := w.resolve(dir, kf, "resource", ref)
	if err != nil {
		return err
	}
	if w.src.IsDir(abs(p)) {
		return w.kustomization(p, kf, "resource", false, pluginRoot)
	}
	if pluginRoot == "" {
		return w.resourceFile(dir, kf, ref)
	}
	docs, err := w.yamlFile(dir, kf, "resource", ref, true)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if err := w.pluginConfig(pluginRoot, p, d); err != nil {
			return err
		}
	}
	return nil
}

// parsedResource is what the walk learns from a resource file's content.
type parsedResource struct {
	docs    int
	defines []string
}

// resourceMemo remembers parsed resource files by content hash, process
// wide: a render of a large repository parses each file once, and the next
// render only the files that changed.
var resourceMemo = newLRU[[32]byte, parsedResource](1 << 16)

// resourceFile checks a resource file and records its objects.
func (w *walker) resourceFile(dir, kf, ref string) error {
	p, err := w.file(dir, kf, "resource", ref)
	if err != nil {
		return err
	}
	sum, data, err := w.sum(p)
	if err != nil {
		return err
	}
	r, ok := resourceMemo.get(sum)
	if !ok {
		if data, err = w.content(p, data); err != nil {
			return err
		}
		docs, err := w.lim.parseYAML(p, data)
		if err != nil {
			return err
		}
		r.docs = len(docs)
		for _, d := range docs {
			var m struct {
				Kind     string `yaml:"kind"`
				Metadata struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
			}
			if d.Decode(&m) == nil {
				r.defines = append(r.defines, m.Kind+" "+m.Metadata.Name)
			}
		}
		resourceMemo.put(sum, r)
	}
	w.docs += r.docs
	w.defines[p] = append(w.defines[p], r.defines...)
	return nil
}

// patchStrategicMerge checks a patchesStrategicMerge entry, which kustomize
// reads as inline patch content when it parses as such, else as a path.
func (w *walker) patchStrategicMerge(dir, kf, entry string) error {
	if isRemote(entry) && !strings.Contains(strings.TrimSpace(entry), "\n") {
		return refuse(kf, ErrRemote, "patchesStrategicMerge %q is remote; remote files are not allowed", entry)
	}
	if isInline(entry) {
		_, err := w.lim.parseYAML(kf, []byte(entry))
		return err
	}
	_, err := w.yamlFile(dir, kf, "patchesStrategicMerge", entry, true)
	return err
}

func (w *walker) kvSources(dir, kf, field string, s types.KvPairSources) error {
	for _, src := range s.FileSources {
		ref := src
		if k, v, ok := strings.Cut(src, "="); ok && k != "" {
			ref = v
		}
		p, err := w.file(dir, kf, field+" file", ref)
		if err != nil {
			return err
		}
		if _, err := w.read(p); err != nil {
			return err
		}
	}
	envs := s.EnvSources
	if s.EnvSource != "" {
		// Not into s.EnvSources' array: the kustomization is shared.
		envs = append(slices.Clip(envs), s.EnvSource)
	}
	for _, e := range envs {
		p, err := w.file(dir, kf, field+" env", e)
		if err != nil {
			return err
		}
		if _, err := w.read(p); err != nil {
			return err
		}
	}
	return nil
}

// pluginEntry checks a generators/transformers/validators entry: inline
// config, a file of configs, or a kustomization directory producing configs.
func (w *walker) pluginEntry(dir, kf, field, entry string) error {
	if isRemote(entry) && !strings.Contains(strings.TrimSpace(entry), "\n") {
		return refuse(kf, ErrRemote, "%s %q is remote; remote files are not allowed", field, entry)
	}
	if isInline(entry) {
		docs, err := w.lim.parseYAML(kf, []byte(entry))
		if err != nil {
			return err
		}
		if len(docs) == 0 {
			return refuse(kf, ErrMalformed, "%s entry %q is neither a path nor a config", field, entry)
		}
		for _, d := range docs {
			if err := w.pluginConfig(dir, kf, d); err != nil {
				return err
			}
		}
		return nil
	}
	p, err := w.resolve(dir, kf, field, entry)
	if err != nil {
		return err
	}
	if w.src.IsDir(abs(p)) {
		return w.kustomization(p, kf, field, false, dir)
	}
	docs, err := w.yamlFile(dir, kf, field, entry, true)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if err := w.pluginConfig(dir, p, d); err != nil {
			return err
		}
	}
	return nil
}

// resolve checks a reference written in kustomization file kf (in dir) and
// returns it relative to the repository root.
func (w *walker) resolve(dir, kf, field, ref string) (string, error) {
	switch {
	case ref == "":
		return "", refuse(kf, ErrMalformed, "empty %s path", field)
	case isRemote(ref):
		return "", refuse(kf, ErrRemote, "%s %q is remote; remote bases, resources and files are not allowed", field, ref)
	case path.IsAbs(ref) || filepath.IsAbs(ref) || strings.HasPrefix(ref, `\`) || strings.HasPrefix(ref, "~"):
		return "", refuse(kf, ErrOutsideRepository, "%s %q is an absolute path; paths must be relative and stay in the repository", field, ref)
	}
	p := path.Join(dir, filepath.ToSlash(ref))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", refuse(kf, ErrOutsideRepository, "%s %q leaves the repository", field, ref)
	}
	if err := w.confine(dir, kf, field, ref, p); err != nil {
		return "", err
	}
	return p, nil
}

// confine enforces confinement by directory: a kustomization under
// teams/<team>/ reaches only paths under teams/<team>/, one under platform/
// only paths under platform/, and only overlays reach into either from
// outside. Every field that names a path comes through resolve, for every
// kustomization the walk reaches, so the rule holds at any depth of
// nesting; and since the kustomizations that include or patch an object are
// exactly those that reach its file, a team's objects are included and
// changed only by its own kustomizations and the overlays.
func (w *walker) confine(dir, kf, field, ref, p string) error {
	from, to := layout.Of(dir), layout.Of(p)
	switch {
	case from.Confined() && !from.Contains(p):
		return refuse(kf, ErrConfinement, "%s %q leaves %s (a kustomization under %s may only name paths inside it)",
			fieldName(field), ref, from.Dir(), from.Dir())
	case from.Kind == layout.Other && dir != w.top && to.Confined():
		return refuse(kf, ErrConfinement, "%s %q reaches into %s; only an overlay (overlays/<env>/) may include platform/ and teams/ directories",
			fieldName(field), ref, to.Dir())
	}
	return nil
}

// fieldName is the kustomization field a walker label stands for.
func fieldName(label string) string {
	switch label {
	case "resource", "component", "crd", "configuration", "patch", "replacement", "generator", "transformer", "validator":
		return label + "s"
	case "openapi path":
		return "openapi.path"
	}
	return label
}

// dir resolves a reference that must be a directory in the repository.
func (w *walker) dir(dir, kf, field, ref string) (string, error) {
	p, err := w.resolve(dir, kf, field, ref)
	if err != nil {
		return "", err
	}
	if !w.src.IsDir(abs(p)) {
		return "", w.notFound(kf, field, ref, p, "directory")
	}
	return p, nil
}

// file resolves a reference that must be a file at or below dir (kustomize's
// root-only load restriction), and records it for the build.
func (w *walker) file(dir, kf, field, ref string) (string, error) {
	p, err := w.resolve(dir, kf, field, ref)
	if err != nil {
		return "", err
	}
	if !w.isFile(p) {
		return "", w.notFound(kf, field, ref, p, "file")
	}
	if what, ok := special(w.src, p); ok { // a Git LFS pointer
		return "", refuse(kf, ErrNotFound, "%s %q is %s", field, ref, what)
	}
	if dir != "." && !strings.HasPrefix(p, dir+"/") {
		return "", refuse(kf, ErrOutsideRepository,
			"%s %q is outside the kustomization's directory %s (kustomize loads files only from a kustomization's own directory tree)", field, ref, dir)
	}
	w.files[p] = true
	return p, nil
}

// yamlFile is file for YAML content: it parses the file, and with transform
// set (patches, configs) refuses the reserved provenance annotations.
func (w *walker) yamlFile(dir, kf, field, ref string, transform bool) ([]*kyaml.Node, error) {
	p, err := w.file(dir, kf, field, ref)
	if err != nil {
		return nil, err
	}
	data, err := w.read(p)
	if err != nil {
		return nil, err
	}
	if transform {
		if err := checkReserved(p, data); err != nil {
			return nil, err
		}
	}
	return w.lim.parseYAML(p, data)
}

// notFound refuses reference ref (p from the repository root), which names
// no file or directory of the kind what: saying what it is when the file
// system knows (a symbolic link not followed).
func (w *walker) notFound(kf, field, ref, p, what string) error {
	if s, ok := special(w.src, p); ok {
		return refuse(kf, ErrNotFound, "%s %q is %s", field, ref, s)
	}
	if looksLikeHost(ref) {
		return refuse(kf, ErrRemote, "%s %q looks like a remote base; remote bases are not allowed (and no such %s is in the repository)", field, ref, what)
	}
	return refuse(kf, ErrNotFound, "%s %q: no such %s in the repository", field, ref, what)
}

func (w *walker) isFile(p string) bool {
	return w.src.Exists(abs(p)) && !w.src.IsDir(abs(p))
}

// overlayEntry walks one entry of the overlay's own resources. With
// isolation on, a failure of an entry in a team directory is handed to
// w.isolate and the walk goes on without it; a team entry over the
// objects-per-team limit fails the same way.
func (w *walker) overlayEntry(dir, kf, ref string) error {
	before := w.docs
	err := w.resource(dir, kf, ref, "")
	p := path.Join(dir, filepath.ToSlash(ref))
	team := layout.Of(p).Kind == layout.Team
	if err == nil {
		w.entryDocs[ref] = w.docs - before
		if team && w.docs-before > w.lim.ObjectsPerTeam {
			err = refuse(w.kfile[p], ErrLimit, "%s lists %d objects, more than the limit of %d per team; split the team or ask the platform to raise --max-objects-per-team",
				layout.Of(p).Dir(), w.docs-before, w.lim.ObjectsPerTeam)
			if w.kfile[p] == "" {
				err.(*Error).File = p
			}
		}
	}
	if err == nil || !team || w.isolate == nil {
		return err
	}
	w.docs = before
	w.isolate(ref, err)
	return nil
}

// abs is the path of a repository-relative path in the caller's file system.
func abs(p string) string { return path.Join("/", p) }

// isInline reports whether a patchesStrategicMerge or plugin entry is YAML
// content rather than a path, as kustomize decides it (content parses as a
// mapping or a list). Where kustomize would fall back to reading it as a path
// after all, the staged file system holds only approved files; a one-line
// entry that could be a URL is refused before (isRemote).
func isInline(entry string) bool {
	var n kyaml.Node
	if err := kyaml.Unmarshal([]byte(entry), &n); err != nil {
		return strings.ContainsAny(entry, "\n{")
	}
	if len(n.Content) == 0 {
		return false
	}
	k := n.Content[0].Kind
	return k == kyaml.MappingNode || k == kyaml.SequenceNode
}

var scpUser = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*@`)

// isRemote mirrors what kustomize treats as a remote target (its git
// RepoSpec parser and its HTTP file loader), erring on the side of refusal.
func isRemote(ref string) bool {
	l := strings.ToLower(ref)
	return strings.Contains(l, "://") ||
		strings.HasPrefix(l, "git::") ||
		strings.HasPrefix(l, "github.com/") || strings.HasPrefix(l, "github.com:") ||
		scpUser.MatchString(ref) ||
		strings.Contains(l, "?ref=") || strings.Contains(l, "?version=") ||
		strings.Contains(l, "_git/")
}

// looksLikeHost reports whether ref starts with a host name (gitlab.com/x/y).
func looksLikeHost(ref string) bool {
	first, rest, ok := strings.Cut(ref, "/")
	return ok && rest != "" && strings.Contains(first, ".") && strings.Trim(first, ".") != ""
}

// checkReserved refuses content that mentions a provenance annotation (plain
// or as an escaped JSON pointer).
func checkReserved(file string, data []byte) error {
	for _, a := range reservedAnnotations {
		if bytes.Contains(data, []byte(a)) || bytes.Contains(data, []byte(strings.ReplaceAll(a, "/", "~1"))) {
			return refuse(file, ErrReservedAnnotation,
				"sets or mentions annotation %s, which kustomize writes for provenance; it may not be set by the repository", a)
		}
	}
	return nil
}
