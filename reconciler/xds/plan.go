package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// A plan moves a node from the snapshot it holds to another one in steps,
// each a full snapshot that differs from the previous one in one type:
//
//  1. CDS: the new clusters, or the union of old and new when clusters go
//  2. EDS, then SDS: likewise (a listener warms until the secrets its TLS
//     contexts name have arrived)
//  3. LDS, SRDS and RDS together: the new listeners, scopes and routes.
//     A client asks for the scopes and route configurations a listener
//     names only once it has the listener (and for a scope's route
//     configuration once it has the scope), and a new listener warms until
//     they arrive: sent together, they are all there when asked for. Sent
//     one step after the listener, a port moving from one route
//     configuration to scoped routes would get its new listener with no
//     scopes yet, and answer 404 until the next step.
//  4. CDS, EDS, then SDS: the new ones, when step 1 or 2 was a union
//
// A step that changes nothing is skipped; the last step is the target
// itself, so nodes share it. Plans are cached by (from, to) snapshot: every
// node of a class moving between the same two Sets shares the steps.

// emptySnapshot is where a node without a snapshot starts from.
var emptySnapshot = func() *cache.Snapshot {
	s := &cache.Snapshot{}
	_ = s.ConstructVersionMap()
	return s
}()

// planCacheMax bounds the plan cache; it is cleared when full. Small: a
// plan holds its snapshots, so every entry keeps a whole Set's resources
// alive (a bound of 256 kept the last 256 revisions, 7 MB each at 200
// teams), and nodes only ever move between the few Sets of a rollout.
const planCacheMax = 16

type planKey struct{ from, to *cache.Snapshot }

type planCache struct {
	mu sync.Mutex
	m  map[planKey][]*cache.Snapshot
}

func (p *planCache) steps(from, to *cache.Snapshot) []*cache.Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := planKey{from, to}
	if st, ok := p.m[k]; ok {
		return st
	}
	if len(p.m) >= planCacheMax {
		clear(p.m)
	}
	st := plan(from, to)
	p.m[k] = st
	return st
}

var (
	wayIn    = []types.ResponseType{types.Cluster, types.Endpoint, types.Secret}
	wayAfter = [][]types.ResponseType{{types.Listener, types.ScopedRoute, types.Route}}
)

func plan(from, to *cache.Snapshot) []*cache.Snapshot {
	var steps []*cache.Snapshot
	work := cloneSnapshot(from)
	step := func(t types.ResponseType, r cache.Resources, vm map[string]string) {
		if work.Resources[t].Version == r.Version {
			return
		}
		work.Resources[t] = r
		work.VersionMap[typeURL(t)] = vm
		steps = append(steps, cloneSnapshot(work))
	}
	union := map[types.ResponseType]bool{}
	for _, t := range wayIn {
		a, b := from.Resources[t], to.Resources[t]
		avm, bvm := from.VersionMap[typeURL(t)], to.VersionMap[typeURL(t)]
		if drops(a, b) {
			union[t] = true
			if !covers(avm, bvm) { // else a is the union already
				r, vm := unite(a, b, avm, bvm)
				step(t, r, vm)
			}
		} else {
			step(t, b, to.VersionMap[typeURL(t)])
		}
	}
	for _, ts := range wayAfter {
		changed := false
		for _, t := range ts {
			if work.Resources[t].Version != to.Resources[t].Version {
				work.Resources[t] = to.Resources[t]
				work.VersionMap[typeURL(t)] = to.VersionMap[typeURL(t)]
				changed = true
			}
		}
		if changed {
			steps = append(steps, cloneSnapshot(work))
		}
	}
	for _, t := range wayIn {
		if union[t] {
			step(t, to.Resources[t], to.VersionMap[typeURL(t)])
		}
	}
	// By now work equals to in the served types, and both hold nothing
	// else: end on to itself.
	if len(steps) == 0 {
		return []*cache.Snapshot{to}
	}
	steps[len(steps)-1] = to
	return steps
}

func typeURL(t types.ResponseType) string {
	u, _ := cache.GetResponseTypeURL(t)
	return u
}

// drops reports whether b lacks a resource a has.
func drops(a, b cache.Resources) bool {
	for name := range a.Items {
		if _, ok := b.Items[name]; !ok {
			return true
		}
	}
	return false
}

// covers reports whether every resource of b is in a, at the same version.
func covers(avm, bvm map[string]string) bool {
	for name, v := range bvm {
		if av, ok := avm[name]; !ok || av != v {
			return false
		}
	}
	return true
}

// unite is a ∪ b, b winning a name present in both, with a version derived
// from both.
func unite(a, b cache.Resources, avm, bvm map[string]string) (cache.Resources, map[string]string) {
	items := maps.Clone(a.Items)
	if items == nil {
		items = map[string]types.ResourceWithTTL{}
	}
	maps.Copy(items, b.Items)
	vm := maps.Clone(avm)
	if vm == nil {
		vm = map[string]string{}
	}
	maps.Copy(vm, bvm)
	h := sha256.Sum256([]byte(a.Version + "|" + b.Version))
	return cache.Resources{Version: "u-" + hex.EncodeToString(h[:8]), Items: items}, vm
}

func cloneSnapshot(s *cache.Snapshot) *cache.Snapshot {
	out := &cache.Snapshot{Resources: s.Resources, VersionMap: make(map[string]map[string]string, len(s.VersionMap))}
	maps.Copy(out.VersionMap, s.VersionMap)
	if out.VersionMap[resource.ClusterType] == nil {
		// A snapshot whose version map was never built: build it on the
		// copy (ConstructVersionMap skips a non-nil map).
		out.VersionMap = nil
		_ = out.ConstructVersionMap()
	}
	return out
}
