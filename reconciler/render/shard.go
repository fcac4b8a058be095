package render

// Sharded rendering.
//
// Kustomize accumulates the resources of an overlay in a list and checks
// every object it appends against every object already there, recomputing
// each one's id from its YAML: a build of N objects costs O(N²) (200 teams of
// 30 objects: ~50 s). A gitxds overlay is a list of bases (platform/ and one
// directory per team) with per-object transformations on top, so Render
// builds it as shards instead: one kustomize build per entry of the
// overlay's `resources`, each of a copy of the overlay whose `resources`
// lists just that entry (so the overlay's own transformers, patches and
// components run on that entry's objects, with the same origin paths as in a
// whole build), then composes the shards with a linear duplicate check and
// sorts them as kustomize does. Each shard is small, so the quadratic term
// disappears, and shards are cached by the content of every file their build
// may read: a one-team change rebuilds one shard.
//
// The result is the whole build's, byte for byte, because every step of a
// kustomize build of an eligible overlay either acts on one object at a time
// or is reproduced here over all shards:
//
//   - accumulation of a base is the same build in a shard as in the whole
//     overlay (same kustomization, same paths, same origin annotations);
//     duplicates across bases, which kustomize reports while appending, are
//     found by the composition (see dupError);
//   - the overlay's (and its components') namespace, namePrefix, nameSuffix,
//     labels, commonLabels, commonAnnotations, images and patches that name a
//     `target` change each selected object by itself; a target that selects
//     nothing in a shard is no error;
//   - the steps kustomize runs once at the top — the hash suffixes of
//     generated objects and IgnoreLocal act per object; name-reference fixing
//     does nothing unless the output holds an object of a kind that can be
//     referred to by name (ConfigMap, Secret, Service, ServiceAccount, ...),
//     which falls back; vars fall back;
//   - the final order is kustomize's legacy order (a total order on object
//     ids, reproduced by legacyLess) or, with sortOptions fifo, the order of
//     accumulation, which is the order of the shards.
//
// An overlay falls back to the whole build (shardBlocker says why) when it
//   - is a Component, or lists fewer than two resources;
//   - has configMapGenerator, secretGenerator, generators, transformers,
//     validators, replacements, replicas (which fails when its target is
//     absent), patchesStrategicMerge or a patch without `target` (both are
//     matched by the patch's own id, and must match exactly one object of
//     all shards), or a component that has any of those or lists resources;
//   - or any kustomization it reaches has vars, configurations or crds (they
//     change the top-level name-reference and var steps) or an openapi field
//     (kustomize's schema is process-wide, set by whichever base loads it);
//
// and, after the shards are built, when an object's kind is a target of
// kustomize's name references, or when two shards render the same object id
// and building just those two together does not give kustomize's duplicate
// error (a patch or the namespace transformer made them collide).
//
// Errors: a shard that fails fails the render with that shard's error, the
// first in the order of `resources`. A whole build fails in the same cases;
// when several things are wrong at once it may name a different one first.

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"gitxds.dev/gitxds/reconciler/layout"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/resid"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// DefaultCacheEntries is the capacity of the process-wide shard cache.
const DefaultCacheEntries = 8192

// Cache holds rendered shards by the content hash of everything their build
// reads. It is safe for concurrent use. The zero value is not usable; use
// NewCache.
type Cache struct{ l *lru[[32]byte, cachedShard] }

// cachedShard is a built shard: its objects and their sort keys (which
// depend on nothing else), so that composing a render of cached shards
// computes no key again.
type cachedShard struct {
	objs []Object
	keys []sortKey
}

// NewCache returns a cache of at most max shards (least recently used ones
// are dropped first); DefaultCacheEntries when max <= 0.
func NewCache(max int) *Cache {
	if max <= 0 {
		max = DefaultCacheEntries
	}
	return &Cache{l: newLRU[[32]byte, cachedShard](max)}
}

// Len is the number of cached shards.
func (c *Cache) Len() int { return c.l.len() }

func (c *Cache) get(k [32]byte) (cachedShard, bool) { return c.l.get(k) }
func (c *Cache) put(k [32]byte, s cachedShard)      { c.l.put(k, s) }

// lru is a map of at most max entries that drops the least recently used
// quarter when it overflows (amortized O(1) per put).
type lru[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	tick    uint64
	entries map[K]*lruEntry[V]
}

type lruEntry[V any] struct {
	v    V
	used uint64
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, entries: map[K]*lruEntry[V]{}}
}

func (l *lru[K, V]) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *lru[K, V]) get(k K) (V, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	l.tick++
	e.used = l.tick
	return e.v, true
}

func (l *lru[K, V]) put(k K, v V) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tick++
	l.entries[k] = &lruEntry[V]{v: v, used: l.tick}
	if len(l.entries) <= l.max {
		return
	}
	ticks := make([]uint64, 0, len(l.entries))
	for _, e := range l.entries {
		ticks = append(ticks, e.used)
	}
	slices.Sort(ticks)
	cut := ticks[len(ticks)/4]
	for key, e := range l.entries {
		if e.used <= cut {
			delete(l.entries, key)
		}
	}
}

var defaultCache = NewCache(DefaultCacheEntries)

func (o Options) cache() *Cache {
	if o.Cache != nil {
		return o.Cache
	}
	return defaultCache
}

// namerefTargets are the kinds kustomize's default name-reference
// configuration knows as referral targets (api/internal/konfig/
// builtinpluginconsts/namereference.go): objects other objects name, whose
// renames kustomize propagates across the whole build.
var namerefTargets = map[string]bool{
	"Deployment": true, "ReplicationController": true, "ReplicaSet": true,
	"StatefulSet": true, "ConfigMap": true, "Secret": true, "Service": true,
	"Role": true, "ClusterRole": true, "ServiceAccount": true,
	"PersistentVolumeClaim": true, "PersistentVolume": true,
	"StorageClass": true, "PriorityClass": true, "IngressClass": true,
	"ValidatingAdmissionPolicy": true,
}

// shardBlocker says why the overlay in dir cannot be built as shards, or ""
// when it can.
func shardBlocker(w *walker, dir string) string {
	k := w.kust[dir]
	switch {
	case k == nil:
		return "no kustomization"
	case k.Kind == types.ComponentKind:
		return "the overlay is a Component"
	case len(k.Resources) < 2:
		return "the overlay lists fewer than two resources"
	case w.openapi:
		return "a kustomization sets an openapi schema (kustomize's schema is process-wide)"
	}
	for _, d := range sortedKeys(w.kust) {
		kk := w.kust[d]
		switch {
		case len(kk.Vars) > 0:
			return w.kfile[d] + " has vars"
		case len(kk.Configurations) > 0:
			return w.kfile[d] + " has configurations"
		case len(kk.Crds) > 0:
			return w.kfile[d] + " has crds"
		}
	}
	return ownBlocker(w, dir, k)
}

// ownBlocker checks the overlay's own fields, and its components'.
func ownBlocker(w *walker, dir string, k *types.Kustomization) string {
	kf := w.kfile[dir]
	switch {
	case len(k.ConfigMapGenerator) > 0, len(k.SecretGenerator) > 0, len(k.Generators) > 0:
		return kf + " has generators"
	case len(k.Transformers) > 0:
		return kf + " has transformers"
	case len(k.Validators) > 0:
		return kf + " has validators"
	case len(k.Replacements) > 0:
		return kf + " has replacements"
	case len(k.Replicas) > 0:
		return kf + " has replicas"
	case len(k.PatchesStrategicMerge) > 0:
		return kf + " has patchesStrategicMerge (matched by id across all bases)"
	case len(k.HelmCharts) > 0:
		return kf + " has helmCharts"
	}
	for _, p := range k.Patches {
		if p.Target == nil {
			return kf + " has a patch without target (matched by id across all bases)"
		}
	}
	for _, c := range k.Components {
		p := path.Join(dir, c)
		ck := w.kust[p]
		if ck == nil {
			return "component " + p + " not walked"
		}
		if len(ck.Resources) > 0 {
			return "component " + w.kfile[p] + " lists resources"
		}
		if r := ownBlocker(w, p, ck); r != "" {
			return r
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// overrideFS is src with one file's content replaced: the overlay's
// kustomization, as a shard sees it.
type overrideFS struct {
	filesys.FileSystem
	path string
	data []byte
}

func (o overrideFS) ReadFile(p string) ([]byte, error) {
	if path.Clean(p) == o.path {
		return slices.Clone(o.data), nil
	}
	return o.FileSystem.ReadFile(p)
}

// shardKustomization is the overlay's kustomization file with `resources`
// set to entries (and the deprecated `bases`, which kustomize appends to
// resources, removed). Everything else stays as written.
func shardKustomization(data []byte, entries []string) ([]byte, error) {
	e, err := newShardEditor(data)
	if err != nil {
		return nil, err
	}
	return e.kustomization(entries)
}

// shardEditor makes the shard kustomizations of one overlay kustomization.
// It parses the file once: the overlay of a large repository lists a
// resource per team, so parsing it again for each shard would cost
// O(teams²) (200 teams: ~40 ms of a one-team change).
//
// Setting `resources` replaces the field's value node in place (kyaml's
// FieldSetter copies the new list into the existing node, keeping its key
// and position, and the new list takes the old value's style), so each call
// gives exactly what a fresh parse followed by the same edit gives.
type shardEditor struct{ rn *kyaml.RNode }

func newShardEditor(data []byte) (*shardEditor, error) {
	rn, err := kyaml.Parse(string(data))
	if err != nil {
		return nil, err
	}
	if _, err := rn.Pipe(kyaml.Clear("bases")); err != nil {
		return nil, err
	}
	return &shardEditor{rn: rn}, nil
}

// kustomization returns the overlay's kustomization with `resources` set to
// entries. Not safe for concurrent use.
func (e *shardEditor) kustomization(entries []string) ([]byte, error) {
	list := kyaml.NewListRNode()
	for _, x := range entries {
		if err := list.PipeE(kyaml.Append(kyaml.NewStringRNode(x).YNode())); err != nil {
			return nil, err
		}
	}
	if err := e.rn.PipeE(kyaml.SetField("resources", list)); err != nil {
		return nil, err
	}
	s, err := e.rn.String()
	return []byte(s), err
}

type shard struct {
	entry string
	kust  []byte // the overlay's kustomization, with just this entry
	// files the shard's walk approved: all its build reads.
	files  map[string]bool
	key    [32]byte
	objs   []Object
	keys   []sortKey // of objs
	cached bool
}

// shardKey hashes everything the shard's build reads: the overlay path, its
// kustomization as the shard sees it, and every file the confinement walk
// of that kustomization approved.
func shardKey(fsys filesys.FileSystem, dir string, files map[string]bool, sums map[string][32]byte) ([32]byte, error) {
	h := sha256.New()
	var n [8]byte
	put := func(b []byte) {
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte("gitxds render shard v1"))
	put([]byte(dir))
	for _, f := range sortedKeys(files) {
		sum, ok := sums[f]
		if !ok {
			data, err := fsys.ReadFile(abs(f))
			if err != nil {
				return [32]byte{}, &Error{File: f, Err: err}
			}
			sum = sha256.Sum256(data)
		}
		put([]byte(f))
		put(sum[:])
	}
	var k [32]byte
	h.Sum(k[:0])
	return k, nil
}

// renderShards renders the overlay as shards. When it cannot, reason says
// why and the caller builds the whole overlay. Team shards that fail are
// returned in failed (the caller renders again without them).
func renderShards(src filesys.FileSystem, w *walker, dir string, opts Options) (res *Result, failed []TeamFailure, err error, reason string) {
	if r := shardBlocker(w, dir); r != "" {
		return nil, nil, nil, r
	}
	k := w.kust[dir]
	kf := w.kfile[dir]
	orig, err := src.ReadFile(abs(kf))
	if err != nil {
		return nil, nil, &Error{File: kf, Err: err}, ""
	}
	cache := opts.cache()
	ed, err := newShardEditor(orig)
	if err != nil {
		return nil, nil, nil, fmt.Sprintf("%s: cannot edit resources: %v", kf, err)
	}
	// The shards' walks read the files the overlay's walk read, but for the
	// overlay's kustomization.
	known := maps.Clone(w.sums)
	delete(known, kf)
	shards := make([]shard, len(k.Resources))
	for i, e := range k.Resources {
		s := &shards[i]
		s.entry = e
		if s.kust, err = ed.kustomization([]string{e}); err != nil {
			return nil, nil, nil, fmt.Sprintf("%s: cannot edit resources: %v", kf, err)
		}
		ov := overrideFS{FileSystem: src, path: abs(kf), data: s.kust}
		sw := newWalker(ov, opts.Limits)
		sw.known = known
		sw.top = dir
		if err := sw.kustomization(dir, "", "overlay", false, ""); err != nil {
			// The whole overlay passed the same checks: this is unexpected.
			return nil, nil, nil, fmt.Sprintf("shard %s: %v", e, err)
		}
		if s.key, err = shardKey(ov, dir, sw.files, sw.sums); err != nil {
			return nil, nil, err, ""
		}
		var c cachedShard
		c, s.cached = cache.get(s.key)
		s.objs, s.keys = c.objs, c.keys
		s.files = sw.files
	}
	errs, err := buildShards(src, w, dir, kf, shards, cache)
	if err != nil {
		return nil, nil, err, ""
	}
	for i, err := range errs {
		switch {
		case err == nil:
		case isTeamEntry(dir, shards[i].entry):
			failed = append(failed, teamFailure(w, dir, shards[i].entry, err))
		case len(failed) == 0:
			return nil, nil, err, ""
		}
	}
	if len(failed) > 0 {
		return nil, failed, nil, ""
	}

	// Compose: a linear duplicate check over the effective ids.
	scope := clusterScope(shards)
	total := 0
	for _, s := range shards {
		total += len(s.objs)
	}
	objs := make([]Object, 0, total)
	keys := make([]sortKey, 0, total)
	seen := make(map[dupKey]int, total)
	for i, s := range shards {
		keys = append(keys, s.keys...)
		for _, o := range s.objs {
			if namerefTargets[o.Kind] {
				return nil, nil, nil, fmt.Sprintf("%s %s is a kind kustomize fixes name references to", o.ID(), o.File)
			}
			dk := effectiveKey(o, scope)
			if j, dup := seen[dk]; dup && j != i {
				// A team that renders an object of another namespace
				// cannot take it from its owner: the team fails.
				for _, x := range []int{i, j} {
					if t := layout.Of(path.Join(dir, shards[x].entry)); t.Kind == layout.Team && dk.namespace != t.Team {
						return nil, []TeamFailure{{Entry: shards[x].entry, Team: t, Err: &Error{File: o.File, Object: o.ID(),
							Err: &refusal{kind: ErrConfinement, msg: fmt.Sprintf("%s renders this object of namespace %q, which another directory of the overlay also renders; a team may only render objects of its own namespace %q", t.Dir(), dk.namespace, t.Team)}}}}, nil, ""
					}
				}
				if err := dupError(src, w, dir, kf, orig, shards[j].entry, s.entry); err != nil {
					return nil, nil, err, ""
				}
				return nil, nil, nil, fmt.Sprintf("%s is rendered by both %s and %s", o.ID(), shards[j].entry, s.entry)
			}
			seen[dk] = i
			objs = append(objs, o)
		}
	}
	if err := sortObjects(objs, keys, k.SortOptions); err != nil {
		return nil, nil, nil, err.Error()
	}
	if max := opts.maxObjects(); max > 0 && len(objs) > max {
		return nil, nil, refuse(kf, ErrTooManyObjects, "the overlay renders %d objects, more than the limit of %d", len(objs), max), ""
	}
	res = &Result{Objects: objs, Warnings: w.warnings, Shards: len(shards)}
	for _, s := range shards {
		if s.cached {
			res.ShardsCached++
		}
	}
	return res, nil, nil, ""
}

// buildShards builds the shards that are not cached. Kustomize runs one
// build at a time (buildMu); converting a build's output to Objects (mostly
// YAML encoding) runs meanwhile on another goroutine. errs holds each
// shard's failure; every shard that built is cached, even when others fail.
// err is a failure to stage the files.
func buildShards(src filesys.FileSystem, w *walker, dir, kf string, shards []shard, cache *Cache) (errs []error, err error) {
	// Only the files of the shards to build are staged (all of them for a
	// cold cache; one team's for a one-team change): a shard's walk approved
	// every file its build reads, and its cache key covers exactly those.
	var st *staged
	files := map[string]bool{}
	for _, s := range shards {
		if !s.cached {
			maps.Copy(files, s.files)
		}
	}
	type job struct {
		i int
		m resmap.ResMap
		// alone is the shard's team directory built without the overlay
		// (nil: not a team directory, or the overlay changes nothing).
		alone resmap.ResMap
	}
	transforms := overlayTransforms(w, dir)
	jobs := make(chan job, 8)
	errs = make([]error, len(shards))
	done := make(chan struct{})
	started := false
	for i := range shards {
		s := &shards[i]
		if s.cached {
			continue
		}
		if st == nil {
			if st, err = stage(src, w, dir, files); err != nil {
				return nil, err
			}
		}
		if !started {
			started = true
			go func() {
				defer close(done)
				for j := range jobs {
					s := &shards[j.i]
					if s.objs, errs[j.i] = st.objects(j.m); errs[j.i] == nil {
						s.keys = sortKeys(s.objs)
						markOverlaid(s.objs, j.alone, kf)
					}
				}
			}()
		}
		m, err := st.build(kf, s.kust)
		if err != nil {
			errs[i] = err
			continue
		}
		var alone resmap.ResMap
		if p := path.Join(dir, s.entry); transforms && isTeamEntry(dir, s.entry) && w.kfile[p] != "" {
			// What the team's own kustomization renders; where the shard's
			// object differs, the overlay changed it. A failure here is
			// the shard's own and already reported.
			alone, _ = build(st.fs, path.Join(st.tr.repoDir, p), false)
		}
		jobs <- job{i, m, alone}
	}
	close(jobs)
	if started {
		<-done
	}
	for i, err := range errs {
		if s := &shards[i]; err == nil && !s.cached {
			cache.put(s.key, cachedShard{objs: s.objs, keys: s.keys})
		}
	}
	return errs, nil
}

// build builds the staged overlay with its kustomization file kf replaced
// by kust.
func (st *staged) build(kf string, kust []byte) (resmap.ResMap, error) {
	if err := st.fs.WriteFile(path.Join(st.tr.repoDir, kf), kust); err != nil {
		return nil, &Error{File: kf, Err: err}
	}
	m, err := build(st.fs, st.topDir, false)
	if err != nil {
		return nil, st.tr.wrap(err)
	}
	return m, nil
}

// dupError builds the overlay with just the two entries a and b that render
// the same object, which gives kustomize's duplicate error as the whole
// build reports it; nil when that build succeeds (the objects collide only
// after the overlay's transformations).
func dupError(src filesys.FileSystem, w *walker, dir, kf string, orig []byte, a, b string) error {
	kust, err := shardKustomization(orig, []string{a, b})
	if err != nil {
		return nil
	}
	st, err := stage(src, w, dir, w.files)
	if err != nil {
		return err
	}
	_, err = st.build(kf, kust)
	if err != nil && strings.Contains(err.Error(), "already registered id") {
		return err
	}
	return nil
}

type gvkKey struct{ apiVersion, kind string }

// clusterScope tells, for every kind in the shards, whether kustomize takes
// it as cluster-scoped (its effective namespace is then none), from
// kustomize's default schema.
func clusterScope(shards []shard) map[gvkKey]resid.Gvk {
	out := map[gvkKey]resid.Gvk{}
	buildMu.Lock()
	defer buildMu.Unlock()
	if schemaSet {
		openapi.ResetOpenAPI()
		schemaSet = false
	}
	for _, s := range shards {
		for _, o := range s.objs {
			k := gvkKey{o.APIVersion, o.Kind}
			if _, ok := out[k]; !ok {
				g, v := resid.ParseGroupVersion(o.APIVersion)
				out[k] = resid.NewGvk(g, v, o.Kind)
			}
		}
	}
	return out
}

type dupKey struct{ group, version, kind, namespace, name string }

// effectiveKey is the identity kustomize's duplicate check compares
// (resid.ResId.Equals): group, version, kind, name and effective namespace.
func effectiveKey(o Object, scope map[gvkKey]resid.Gvk) dupKey {
	gvk := scope[gvkKey{o.APIVersion, o.Kind}]
	id := resid.NewResIdWithNamespace(gvk, o.Name, o.Namespace)
	return dupKey{gvk.Group, gvk.Version, gvk.Kind, id.EffectiveNamespace(), o.Name}
}

// sortKey is what the legacy order compares of an object.
type sortKey struct {
	gvk  resid.Gvk
	id   string // legacyResIDSortString
	gvks string // legacyGVKSortString
}

func sortKeys(objs []Object) []sortKey {
	keys := make([]sortKey, len(objs))
	for i, o := range objs {
		g, v := resid.ParseGroupVersion(o.APIVersion)
		gvk := resid.Gvk{Group: g, Version: v, Kind: o.Kind}
		keys[i] = sortKey{gvk: gvk, id: legacyResIDSortString(resid.ResId{Gvk: gvk, Name: o.Name, Namespace: o.Namespace}), gvks: legacyGVKSortString(gvk)}
	}
	return keys
}

// sortObjects orders the composed objects, whose sort keys are keys, as
// kustomize's final SortOrderTransformer does: legacy order unless the
// overlay asks for fifo (the order of accumulation, which the composition
// kept).
func sortObjects(objs []Object, keys []sortKey, so *types.SortOptions) error {
	opts := &types.LegacySortOptions{OrderFirst: defaultOrderFirst, OrderLast: defaultOrderLast}
	if so != nil {
		switch so.Order {
		case types.FIFOSortOrder:
			if so.LegacySortOptions != nil {
				return fmt.Errorf("sortOptions: legacySortOptions with order fifo")
			}
			return nil
		case types.LegacySortOrder:
			if so.LegacySortOptions != nil {
				opts = so.LegacySortOptions
			}
		default:
			return fmt.Errorf("sortOptions: unknown order %q", so.Order)
		}
	}
	typeOrders := map[string]int{}
	for i, n := range opts.OrderFirst {
		typeOrders[n] = -len(opts.OrderFirst) + i
	}
	for i, n := range opts.OrderLast {
		typeOrders[n] = 1 + i
	}
	if len(keys) != len(objs) {
		keys = sortKeys(objs) // defensive: every shard carries its keys
	}
	// Each object's type order and GVK class (equal classes: Gvk.Equals),
	// found once instead of in every comparison.
	ords := make([]int, len(objs))
	classes := make([]int, len(objs))
	classOf := map[[3]string]int{}
	for i := range keys {
		ords[i] = typeOrders[keys[i].gvk.Kind]
		g := [3]string{keys[i].gvk.Group, keys[i].gvk.Version, keys[i].gvk.Kind}
		c, ok := classOf[g]
		if !ok {
			c = len(classOf)
			classOf[g] = c
		}
		classes[i] = c
	}
	idx := make([]int, len(objs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		x, y := &keys[idx[a]], &keys[idx[b]]
		if classes[idx[a]] != classes[idx[b]] {
			ix, iy := ords[idx[a]], ords[idx[b]]
			if ix != iy {
				return ix < iy
			}
			if x.gvk.Kind == types.NamespaceKind && y.gvk.Kind == types.NamespaceKind && (x.gvk.Group == "" || y.gvk.Group == "") {
				return x.gvks > y.gvks
			}
			return x.gvks < y.gvks
		}
		return x.id < y.id
	})
	sorted := make([]Object, len(objs))
	for i, j := range idx {
		sorted[i] = objs[j]
	}
	copy(objs, sorted)
	return nil
}

// The rest reproduces kustomize's legacy sort (api/internal/builtins/
// SortOrderTransformer.go, v0.21.2), which is internal there.

var defaultOrderFirst = []string{ //nolint:gochecknoglobals
	"Namespace",
	"ResourceQuota",
	"StorageClass",
	"CustomResourceDefinition",
	"ServiceAccount",
	"PodSecurityPolicy",
	"Role",
	"ClusterRole",
	"RoleBinding",
	"ClusterRoleBinding",
	"ConfigMap",
	"Secret",
	"Endpoints",
	"Service",
	"LimitRange",
	"PriorityClass",
	"PersistentVolume",
	"PersistentVolumeClaim",
	"Deployment",
	"StatefulSet",
	"CronJob",
	"PodDisruptionBudget",
}

var defaultOrderLast = []string{ //nolint:gochecknoglobals
	"MutatingWebhookConfiguration",
	"ValidatingWebhookConfiguration",
}

func legacyGVKSortString(x resid.Gvk) string {
	g, v, k := x.Group, x.Version, x.Kind
	if g == "" {
		g = "~G"
	}
	if v == "" {
		v = "~V"
	}
	if k == "" {
		k = "~K"
	}
	return strings.Join([]string{g, v, k}, "_")
}

func legacyResIDSortString(id resid.ResId) string {
	ns, nm := id.Namespace, id.Name
	if ns == "" {
		ns = "~X"
	}
	if nm == "" {
		nm = "~N"
	}
	return strings.Join([]string{id.Gvk.String(), ns, nm}, "|")
}
