package xds

import (
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// watcher is the SnapshotCache as the xDS servers see it, plus what the
// registry needs of delta watches.
//
// A delta client is only sent what changed in the resources it subscribed
// to. When a new snapshot changes nothing of those, no response is sent and
// so no ACK comes back, although the node now runs exactly what the new
// snapshot serves it. The watcher sees that case, at watch creation and at
// each SetSnapshot, and records it as an ACK of the snapshot's version (so
// WaitACK does not wait for an ACK that cannot come).
type watcher struct {
	cache.SnapshotCache
	s *Server
}

var _ cache.Cache = (*watcher)(nil)

// deltaWatch is an open (held) delta watch. Its subscription does not
// change while the watch is open (cache.Subscription's contract).
type deltaWatch struct {
	typeURL string
	req     *cache.DeltaRequest
	sub     cache.Subscription
}

func (w *watcher) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	id := req.GetNode().GetId()
	n := s.nodes[id]
	if n != nil && n.cur != nil && req.GetErrorDetail() == nil && !deltaWouldRespond(n.cur, req, sub) {
		s.recordSyncLocked(n, req.GetTypeUrl(), n.cur.GetVersion(req.GetTypeUrl()))
	}
	cancel, err := w.SnapshotCache.CreateDeltaWatch(req, sub, ch)
	if err != nil || cancel == nil || n == nil {
		return cancel, err
	}
	s.nextWatch++
	wid := s.nextWatch
	if s.deltaWatches[id] == nil {
		s.deltaWatches[id] = map[int64]*deltaWatch{}
	}
	s.deltaWatches[id][wid] = &deltaWatch{typeURL: req.GetTypeUrl(), req: req, sub: sub}
	s.advanceLocked(n, false)
	return func() {
		s.mu.Lock()
		delete(s.deltaWatches[id], wid)
		s.mu.Unlock()
		cancel()
	}, nil
}

// beforeSetLocked runs before the cache moves node n from snapshot prev to
// next: a held delta watch of a type whose version changes either gets a
// response (the cache drops the watch; so do we) or is in sync with next.
func (s *Server) beforeSetLocked(n *nodeState, prev, next *cache.Snapshot) {
	for wid, w := range s.deltaWatches[n.id] {
		v := next.GetVersion(w.typeURL)
		if v == prev.GetVersion(w.typeURL) {
			continue
		}
		if deltaWouldRespond(next, w.req, w.sub) {
			delete(s.deltaWatches[n.id], wid)
			continue
		}
		if w.req.GetErrorDetail() == nil {
			s.recordSyncLocked(n, w.typeURL, v)
		}
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

// deltaWouldRespond mirrors the SnapshotCache's decision (createDeltaResponse
// and respondDelta in pkg/cache/v3): respond when a subscribed resource is
// new, changed or gone, or to the first request of a wildcard subscription.
func deltaWouldRespond(snap *cache.Snapshot, req *cache.DeltaRequest, sub cache.Subscription) bool {
	t := req.GetTypeUrl()
	if sub.IsWildcard() && req.GetResponseNonce() == "" {
		return true
	}
	items := snap.GetResourcesAndTTL(t)
	versions := snap.GetVersionMap(t)
	returned := sub.ReturnedResources()
	if sub.IsWildcard() {
		for name := range items {
			if prev, ok := returned[name]; !ok || prev != versions[name] {
				return true
			}
		}
		for name := range returned {
			if _, ok := items[name]; !ok {
				return true
			}
		}
		return false
	}
	for name := range sub.SubscribedResources() {
		prev, found := returned[name]
		if _, ok := items[name]; ok {
			if prev != versions[name] {
				return true
			}
		} else if found {
			return true
		}
	}
	return false
}
