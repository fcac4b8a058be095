package model

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"net/netip"
	"sort"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/status"
)

// Input of the model stage.
type Input struct {
	// Objects rendered for one revision, with their source files.
	Objects []render.Object
	// LastAccepted holds, per object key (Key, "Kind ns/name"), the last
	// accepted version of each object from earlier revisions: the Accepted
	// of the previous Output. Nil on the first run.
	LastAccepted map[string]render.Object
	// FirstAccepted holds, per object key, when gitxds first accepted the
	// object: the FirstAccepted of the previous Output. Conflicts between
	// routes go to the oldest.
	FirstAccepted map[string]Since
	// Revision being built; objects accepted for the first time get it in
	// Output.FirstAccepted.
	Revision string
	// Decoded, when set, caches the decoding of objects across revisions.
	Decoded *DecodeCache
	// Source, when set, reads the repository's files: an object that does
	// not decode is reported with the line of the field at fault in its
	// file (status.Object.Line), when it can be found there.
	Source SourceFunc
	// SystemCAFile is the CA bundle of the proxy hosts a BackendTLSPolicy
	// with wellKnownCACertificates: System trusts; empty is
	// DefaultSystemCAFile.
	SystemCAFile string
	// Services says how Kubernetes Service backendRefs resolve
	// (services.go): by DNS unless Kubernetes is set.
	Services Services
	// Cluster, when set, is what gitxds knows of the Kubernetes cluster's
	// Secrets and Services (cluster.go): a listener's certificate Secret
	// that is missing or malformed, or a Service that does not exist, is
	// an unresolved reference. Nil: they are not checked.
	Cluster Cluster
}

// Output of the model stage.
type Output struct {
	// IR of everything served, validated and sorted.
	IR *ir.IR
	// Status has one entry per input object, sorted with status.Sort.
	Status []status.Object
	// Accepted is what the caller keeps as Input.LastAccepted for the next
	// revision: every object of this revision that was fully accepted, and
	// the last accepted version of every object still present that was not.
	Accepted map[string]render.Object
	// FirstAccepted is what the caller keeps as Input.FirstAccepted: when
	// each object of Accepted, or served in part, was first accepted.
	FirstAccepted map[string]Since
	// Rollout is the platform's RolloutPolicy, nil if none was accepted.
	Rollout *v1alpha1.RolloutPolicy
	// Namespaces are the labels of the Namespace objects of platform/.
	Namespaces map[string]map[string]string
	// CheckIP applies the backend address policy of this revision (the
	// built-in rules and the BackendAddressPolicies of platform/) to an
	// address discovered at run time: "" when allowed, else the rule that
	// denies it.
	CheckIP func(netip.Addr) string `json:"-"`
}

// Key is how Input.LastAccepted and Output.Accepted name an object:
// "Kind namespace/name", or "Kind name" for cluster-scoped objects.
func Key(o render.Object) string { return o.ID() }

// Build turns the rendered objects of one revision into the IR and a status
// per object. It is pure and deterministic: the same input always gives the
// same output, and the input is not modified.
//
// An object that is rejected is left out and everything else is built
// without it. When a rejected object has a last accepted version in
// in.LastAccepted, that version is built instead and the object's status says
// so (status.Object.ServingLastAccepted), next to the conditions that explain
// why this revision's version was rejected.
func Build(in Input) *Output {
	dc := in.Decoded
	if dc == nil {
		dc = &DecodeCache{} // still shared by the passes of this call
	}
	svc := in.Services.withDefaults()
	build := func(objs []render.Object) *result {
		return buildPass(objs, dc, in.LastAccepted, in.FirstAccepted, in.Source, in.SystemCAFile, svc, in.Cluster)
	}
	first := build(in.Objects)
	subst := map[int]render.Object{}
	for i, o := range first.objects {
		if !o.dropped && !o.lostClaim {
			continue
		}
		last, ok := in.LastAccepted[Key(o.src)]
		if !ok || (string(last.YAML) == string(o.src.YAML) && last.File == o.src.File) {
			continue
		}
		subst[i] = last
	}
	final := first
	if len(subst) > 0 {
		// Build with the last accepted versions; keep only those that are
		// accepted now, and build once more so every other object sees
		// exactly the set that is served.
		objs := substitute(in.Objects, subst)
		second := build(objs)
		for i := range subst {
			if second.objects[i].dropped || second.objects[i].lostClaim {
				delete(subst, i)
			}
		}
		if len(subst) > 0 {
			final = build(substitute(in.Objects, subst))
		}
	}

	out := &Output{
		IR:         final.ir,
		Accepted:   map[string]render.Object{},
		Rollout:    freshRollout(final),
		Namespaces: final.namespaces,
		CheckIP:    final.addrPolicy.checkIP,
	}
	out.Accepted = make(map[string]render.Object, len(in.Objects))
	out.Status = make([]status.Object, 0, len(final.objects))
	present := make(map[string]bool, len(in.Objects))
	for _, o := range in.Objects {
		present[Key(o)] = true
	}
	for key, last := range in.LastAccepted {
		if present[key] {
			out.Accepted[key] = last
		}
	}
	for i, o := range final.objects {
		st := o.status()
		gen := objectGeneration(o.typed)
		if _, ok := subst[i]; ok {
			// Report what is wrong with this revision's version.
			st = first.objects[i].status()
			st.ServingLastAccepted = servingLastAcceptedMessage(first.objects[i])
			st.Served = status.ServedLastAccepted
			gen = objectGeneration(first.objects[i].typed)
		} else if st.Accepted() {
			out.Accepted[Key(o.src)] = o.src
		}
		observed(&st, gen)
		out.Status = append(out.Status, st)
	}
	status.Sort(out.Status)
	out.FirstAccepted = firstAccepted(in, final, out.Accepted)
	return out
}

func substitute(objs []render.Object, subst map[int]render.Object) []render.Object {
	out := make([]render.Object, len(objs))
	copy(out, objs)
	for i, o := range subst {
		out[i] = o
	}
	return out
}

func servingLastAcceptedMessage(o *object) string {
	msg := "this version was rejected; the last accepted version keeps serving"
	if c := status.Problem(o.status()); c != nil {
		msg += " (" + c.Reason + ")"
	}
	return msg
}

// result of one build pass.
type result struct {
	objects    []*object // in input order
	ir         *ir.IR
	rollout    *object // the accepted RolloutPolicy, nil if none
	namespaces map[string]map[string]string
	addrPolicy *addressPolicy
}

// freshRollout decodes the accepted RolloutPolicy of r again for
// Output.Rollout: the typed object of the model is shared with the
// DecodeCache, and the caller may keep or modify what Build returns.
func freshRollout(r *result) *v1alpha1.RolloutPolicy {
	if r.rollout == nil {
		return nil
	}
	p := &v1alpha1.RolloutPolicy{}
	if err := unmarshalStrict(r.rollout.src.YAML, p); err != nil {
		// It decoded before, from the same bytes.
		panic("model: RolloutPolicy does not decode again: " + err.Error())
	}
	return p
}

// buildPass runs the steps of the model over one set of objects.
func buildPass(objs []render.Object, dc *DecodeCache, last map[string]render.Object, since map[string]Since, source SourceFunc, systemCA string, svc Services, cluster Cluster) *result {
	b := newBuilder(objs)
	b.decoded, b.source, b.systemCA, b.services, b.cluster = dc, source, systemCA, svc, cluster
	b.last, b.since = last, since
	for _, step := range []func(*builder){
		(*builder).decode,      // Accepted=False Invalid/UnsupportedKind
		(*builder).ownership,   // Accepted=False InvalidNamespace/NotOwner
		(*builder).duplicates,  // Accepted=False Duplicate
		(*builder).index,       // namespaces, hostname owners, address policy, backends, grants
		(*builder).gateways,    // Gateway Accepted, listeners
		(*builder).routes,      // route Accepted/ResolvedRefs, IR routes, owned hostnames
		(*builder).seniority,   // the order of routes in conflicts: oldest first
		(*builder).conflicts,   // HTTPRoute/GRPCRoute hostname conflicts
		(*builder).backendTLS,  // BackendTLSPolicy Accepted/ResolvedRefs, cluster TLS
		(*builder).secPolicies, // SecurityPolicy Accepted/Conflicted, IR route security
		(*builder).policies,    // BackendTrafficPolicy Accepted/Conflicted (global limits on JWT claims need the route's security)
		(*builder).extPolicies, // EnvoyExtensionPolicy Accepted/TargetNotFound
		(*builder).assemble,    // virtual hosts in precedence, clusters
		(*builder).shadows,     // Overlapped=True on shadowed routes
		(*builder).gatewayAPI,  // route status.parents, Gateway status.listeners
		(*builder).finishState, // default conditions
	} {
		step(b)
	}
	return &result{objects: b.objects, ir: b.ir, rollout: b.rolloutObj, namespaces: b.nsLabels, addrPolicy: b.addrPolicy}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// objectGeneration is the object's metadata.generation, 0 when it has none.
// Objects in Git say none unless their author wrote it (or a tool that
// copies them from a cluster kept it); the API server sets 1 on creation
// and bumps it on every spec change.
func objectGeneration(typed any) int64 {
	if m, ok := typed.(interface{ GetGeneration() int64 }); ok {
		return m.GetGeneration()
	}
	return 0
}

// observed sets observedGeneration on every condition of st (its own, its
// parents', listeners' and ancestors') to the generation they are about,
// as Gateway API status requires; nothing when the object has no
// generation.
func observed(st *status.Object, gen int64) {
	if gen == 0 {
		return
	}
	set := func(cs []metav1.Condition) {
		for i := range cs {
			cs[i].ObservedGeneration = gen
		}
	}
	set(st.Conditions)
	for i := range st.Parents {
		set(st.Parents[i].Conditions)
	}
	for i := range st.Listeners {
		set(st.Listeners[i].Conditions)
	}
	for i := range st.Ancestors {
		set(st.Ancestors[i].Conditions)
	}
}
