package xds

import (
	"cmp"
	"maps"
	"slices"
	"sort"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// watcher is the cache as the xDS servers see it. It answers every watch
// itself, sotw (sotw.go) and delta (here), from the node's current step
// snapshot, which the SnapshotCache it embeds also holds (for Fetch, which
// the callbacks refuse, and for tools that read it).
//
// A delta client is only sent what changed in the resources it subscribed
// to, in parts of at most maxResponseBytes (each part with its own
// system_version_info, the last with the type's version), built from the
// Anys every node shares. When a new snapshot changes nothing of those, no
// response is sent and so no ACK comes back, although the node now runs
// exactly what the new snapshot serves it: that case is recorded as an ACK
// of the snapshot's version (so WaitACK does not wait for an ACK that
// cannot come).
type watcher struct {
	cache.SnapshotCache
	s *Server
}

var _ cache.Cache = (*watcher)(nil)

// deltaWatch is an open (held) delta watch. Its subscription does not
// change while the watch is open (cache.Subscription's contract).
type deltaWatch struct {
	req *cache.DeltaRequest
	sub cache.Subscription
	ch  chan cache.DeltaResponse
}

func (w *watcher) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	dw := &deltaWatch{req: req, sub: sub, ch: ch}
	return openWatchLocked(s, s.deltaWatches, req.GetNode().GetId(), dw, s.answerDeltaLocked), nil
}

func (dw *deltaWatch) typeURL() string { return dw.req.GetTypeUrl() }

// openWatchLocked answers watch w of node id from the node's current
// step when there is something to send, else holds it in held until
// answerHeldLocked answers it or the returned cancel drops it.
func openWatchLocked[W interface{ typeURL() string }](s *Server, held map[string]map[int64]W, id string, w W,
	answer func(*nodeState, *cache.Snapshot, W) bool) func() {
	if n := s.nodes[id]; n != nil && n.cur != nil && answer(n, n.cur, w) {
		return func() {}
	}
	s.nextWatch++
	wid := s.nextWatch
	if held[id] == nil {
		held[id] = map[int64]W{}
	}
	held[id][wid] = w
	return func() {
		s.mu.Lock()
		delete(held[id], wid)
		s.mu.Unlock()
	}
}

// answerHeldLocked answers node n's watches in held of the types whose
// version changes from prev to next, in snapshot.TypeURLs order (a
// listener before the scopes and routes of the same step).
func answerHeldLocked[W interface{ typeURL() string }](n *nodeState, held map[string]map[int64]W, prev, next *cache.Snapshot,
	answer func(*nodeState, *cache.Snapshot, W) bool) {
	if len(held[n.id]) == 0 {
		return
	}
	ids := slices.Collect(maps.Keys(held[n.id]))
	rank := func(wid int64) int { return slices.Index(snapshot.TypeURLs, held[n.id][wid].typeURL()) }
	slices.SortFunc(ids, func(a, b int64) int { return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b)) })
	for _, wid := range ids {
		w := held[n.id][wid]
		t := w.typeURL()
		if prev != nil && next.GetVersion(t) == prev.GetVersion(t) {
			continue
		}
		if answer(n, next, w) {
			delete(held[n.id], wid)
		}
	}
}

// answerDeltaLocked answers dw from snap when a subscribed resource is new,
// changed or gone (go-control-plane's SnapshotCache decides the same way),
// or to the first request of a wildcard subscription, and reports whether
// it did.
func (s *Server) answerDeltaLocked(n *nodeState, snap *cache.Snapshot, dw *deltaWatch) bool {
	t := dw.req.GetTypeUrl()
	version := snap.GetVersion(t)
	items := snap.GetResourcesAndTTL(t)
	hashes := snap.GetVersionMap(t)
	returned := dw.sub.ReturnedResources()
	// After a NACK: hold while the node is at the rejected version, then
	// send every subscribed resource again (afterNACK, sotw.go); removals
	// are still told against what was sent.
	known, hold := afterNACK(n, t, version, dw.req.GetErrorDetail() != nil, returned)
	if hold {
		return false
	}
	wildcard := dw.sub.IsWildcard()
	subscribed := dw.sub.SubscribedResources()
	// Sized for all of snap's resources at once: growing a map of 1,000
	// entries one insertion at a time, for every node, is garbage.
	next := make(map[string]string, max(len(returned), len(items)))
	maps.Copy(next, returned)
	var send, removed []string
	consider := func(name string) {
		if _, ok := items[name]; ok {
			if prev, sent := known[name]; !sent || prev != hashes[name] {
				send = append(send, name)
			}
		} else if _, had := returned[name]; had {
			removed = append(removed, name)
			delete(next, name)
		}
	}
	if wildcard {
		for name := range items {
			consider(name)
		}
		for name := range returned {
			if _, ok := items[name]; !ok {
				consider(name)
			}
		}
	} else {
		for name := range subscribed {
			consider(name)
		}
	}
	first := wildcard && dw.req.GetResponseNonce() == ""
	if len(send) == 0 && len(removed) == 0 && !first {
		if dw.req.GetErrorDetail() == nil {
			s.recordSyncLocked(n, t, version)
		}
		return false
	}
	sort.Strings(send)
	sort.Strings(removed)
	resp := &discovery.DeltaDiscoveryResponse{TypeUrl: t, RemovedResources: removed}
	size := 0
	for i, name := range send {
		a, err := s.anys.get(t, hashes[name], items[name].Resource)
		if err != nil {
			s.log.Error("marshal resource", "node", n.id, "type", t, "error", err)
			return false
		}
		if i > 0 && size+len(a.GetValue()) > maxResponseBytes {
			version = partVersion(version, next) // the rest in the next parts
			break
		}
		size += len(a.GetValue())
		resp.Resources = append(resp.Resources, &discovery.Resource{Name: name, Version: hashes[name], Resource: a})
		next[name] = hashes[name]
	}
	resp.SystemVersionInfo = version
	select {
	case dw.ch <- &cache.DeltaPassthroughResponse{DeltaRequest: dw.req, NextVersionMap: next, DeltaDiscoveryResponse: resp}:
		return true
	default:
		// Cannot happen: the stream's channel has a slot per type and
		// one watch per type is open at a time.
		s.log.Error("delta response channel full: response dropped", "node", n.id, "type", t)
		return false
	}
}

// recordSyncLocked is an implicit ACK: recorded, and an event only when the
// version changes.
func (s *Server) recordSyncLocked(n *nodeState, typeURL, version string) {
	if n.typ(typeURL).acked == version {
		return
	}
	s.recordACK(n, typeURL, version, time.Now())
	s.notifyLocked()
}
