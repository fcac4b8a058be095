package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// Scope life cycle (Envoy's scoped routes, SRDS).
//
// Envoy treats every SRDS state-of-the-world response as the whole set of
// scopes: ScopedRdsConfigSubscription::onConfigUpdate
// (source/common/router/scoped_rds.cc) removes every scope it does not
// list, at once, for every HttpConnectionManager that shares the
// subscription — including the filter chains of an older version of a
// listener, whose connections keep running for the drain time (Envoy's
// --drain-time-s, 600 s by default). A hostname removed from Git, or a port
// that stops using scoped routes, would 404 those connections at once.
//
// So when a node moves to a Set that drops a scope it was served, the
// server keeps serving it that scope and the route configuration the scope
// names for Options.ScopeDrain (DefaultScopeDrain), then sends the scope
// list without it. A scope of the new Set with the same name, or the same
// key, ends the drain of the old one at once (Envoy refuses two scopes
// with one key: detectUpdateConflictAndCleanupRemoved).
//
// The versions of SRDS and RDS served meanwhile are the Set's with a
// drainSep suffix; a node that ACKs them counts as running the Set
// (setVersion): it serves every route of it.
//
// Scopes added are the other half: a scope added once the subscription
// exists gets an empty route table until its RouteConfiguration arrives
// ("we don't wait for them to warm up", ScopedRdsConfigSubscription::
// onConfigUpdate), and Envoy asks for that route configuration only once
// it has the scope. The step that carries a scope list carries the route
// configurations it names (plan.go), so that request is answered at once,
// without waiting for the scope list's ACK.

// DefaultScopeDrain is how long a scope a node no longer needs is still
// served: Envoy's default drain time (--drain-time-s 600).
const DefaultScopeDrain = 600 * time.Second

// drainSep separates a Set's version from the drain part of a version
// served with scopes kept for draining.
const drainSep = "+drain-"

// setVersion is the Set version a served version stands for: the version
// it extends with draining scopes, else itself (a part of a version,
// sotw.go, stays a part: the node does not hold all of it).
func setVersion(v string) string {
	if strings.Contains(v, partSep) {
		return v
	}
	if i := strings.Index(v, drainSep); i >= 0 {
		v = v[:i]
	}
	if i := strings.Index(v, epsSep); i >= 0 {
		v = v[:i] // discovered endpoints (endpoints.go)
	}
	return v
}

// draining is a scope kept for draining, with the route configuration it
// names when the target does not serve that name.
type draining struct {
	scope     types.ResourceWithTTL
	scopeHash string
	rcName    string
	rc        *types.ResourceWithTTL
	rcHash    string
	until     time.Time
}

type drainKey struct {
	snap *cache.Snapshot
	tag  string
}

// withDrainingLocked is snap with the scopes node n is draining: it starts
// the drain of the scopes n's last target served and snap does not, and
// ends those past their time or that snap replaces.
func (s *Server) withDrainingLocked(n *nodeState, snap *cache.Snapshot, now time.Time) *cache.Snapshot {
	if s.opts.ScopeDrain < 0 || snap == nil {
		return snap
	}
	srds, rds := resource.ScopedRouteType, resource.RouteType
	newScopes := snap.Resources[types.ScopedRoute].Items
	if prev := n.target; prev != nil {
		for name, r := range prev.Resources[types.ScopedRoute].Items {
			if _, ok := newScopes[name]; ok {
				continue
			}
			if _, ok := n.draining[name]; ok {
				continue // draining already: it keeps its deadline
			}
			d := &draining{scope: r, scopeHash: prev.VersionMap[srds][name], until: now.Add(s.opts.ScopeDrain)}
			if sc := decodeScope(r.Resource); sc != nil {
				d.rcName = sc.GetRouteConfigurationName()
				if rc, ok := prev.Resources[types.Route].Items[d.rcName]; ok {
					d.rc, d.rcHash = &rc, prev.VersionMap[rds][d.rcName]
				}
			}
			if n.draining == nil {
				n.draining = map[string]*draining{}
			}
			n.draining[name] = d
		}
	}
	if len(n.draining) == 0 {
		return snap
	}
	keys := map[string]bool{}
	for _, r := range newScopes {
		keys[scopeKey(r.Resource)] = true
	}
	for name, d := range n.draining {
		_, again := newScopes[name]
		if again || keys[scopeKey(d.scope.Resource)] || !now.Before(d.until) {
			delete(n.draining, name)
		}
	}
	if len(n.draining) == 0 {
		return snap
	}
	names := make([]string, 0, len(n.draining))
	for name := range n.draining {
		names = append(names, name)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		d := n.draining[name]
		fmt.Fprintf(h, "%s=%s %s=%s\n", name, d.scopeHash, d.rcName, d.rcHash)
	}
	tag := hex.EncodeToString(h.Sum(nil))[:8]
	k := drainKey{snap, tag}
	if out, ok := s.drainSnaps[k]; ok {
		return out
	}
	out := cloneSnapshot(snap)
	scopes := maps.Clone(snap.Resources[types.ScopedRoute].Items)
	scopeVM := maps.Clone(snap.VersionMap[srds])
	routes := maps.Clone(snap.Resources[types.Route].Items)
	routeVM := maps.Clone(snap.VersionMap[rds])
	if scopes == nil {
		scopes, scopeVM = map[string]types.ResourceWithTTL{}, map[string]string{}
	}
	if routes == nil {
		routes, routeVM = map[string]types.ResourceWithTTL{}, map[string]string{}
	}
	for _, name := range names {
		d := n.draining[name]
		scopes[name], scopeVM[name] = d.scope, d.scopeHash
		if _, served := routes[d.rcName]; !served && d.rc != nil {
			routes[d.rcName], routeVM[d.rcName] = *d.rc, d.rcHash
		}
	}
	out.Resources[types.ScopedRoute] = cache.Resources{Version: snap.GetVersion(srds) + drainSep + tag, Items: scopes}
	out.Resources[types.Route] = cache.Resources{Version: snap.GetVersion(rds) + drainSep + tag, Items: routes}
	out.VersionMap[srds], out.VersionMap[rds] = scopeVM, routeVM
	if len(s.drainSnaps) >= planCacheMax {
		clear(s.drainSnaps)
	}
	s.drainSnaps[k] = out
	return out
}

// scopeKey is a scope's key as Envoy compares it: its fragments in order.
func scopeKey(r types.Resource) string {
	sc := decodeScope(r)
	if sc == nil {
		return ""
	}
	var b strings.Builder
	for _, f := range sc.GetKey().GetFragments() {
		fmt.Fprintf(&b, "%d:%s;", len(f.GetStringKey()), f.GetStringKey())
	}
	return b.String()
}

// armDrainTimerLocked sets node n's drain timer to its earliest drain end:
// then the node is moved again to what it is served, without the scopes
// whose drain is over.
func (s *Server) armDrainTimerLocked(n *nodeState) {
	s.stopDrainTimerLocked(n)
	if len(n.draining) == 0 {
		return
	}
	var first time.Time
	for _, d := range n.draining {
		if first.IsZero() || d.until.Before(first) {
			first = d.until
		}
	}
	var timer *time.Timer
	timer = time.AfterFunc(time.Until(first), func() {
		s.mu.Lock() // held by the caller until timer is assigned
		defer s.mu.Unlock()
		if n.drainTimer != timer || s.nodes[n.id] != n {
			return
		}
		n.drainTimer = nil
		if n.served != nil {
			s.log.Debug("scope drain over", "node", n.id)
			s.transitionLocked(n, n.served)
			s.notifyLocked()
		}
	})
	n.drainTimer = timer
}

func (s *Server) stopDrainTimerLocked(n *nodeState) {
	if n.drainTimer != nil {
		n.drainTimer.Stop()
		n.drainTimer = nil
	}
}

// decodeScope is r as a whole ScopedRouteConfiguration: the snapshot's
// are premarshaled (only the name is a known field), so it is decoded
// again from its bytes. Nil when r is not one.
func decodeScope(r types.Resource) *routev3.ScopedRouteConfiguration {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return nil
	}
	sc := &routev3.ScopedRouteConfiguration{}
	if _, ok := r.(*routev3.ScopedRouteConfiguration); !ok || proto.Unmarshal(b, sc) != nil {
		return nil
	}
	return sc
}
