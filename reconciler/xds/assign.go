package xds

import (
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// SetDefault makes set what every node without an assignment is served,
// and moves those nodes to it now. A nil set is ignored: nothing is ever
// served empty, and a node never loses its snapshot.
func (s *Server) SetDefault(set *snapshot.Set) {
	if set == nil {
		s.log.Debug("SetDefault(nil) ignored")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = set
	for id, n := range s.nodes {
		if _, ok := s.assigned[id]; !ok {
			s.applyLocked(n)
		}
	}
	s.reportServiceClustersLocked()
	s.notifyLocked()
}

// Default is the Set nodes without an assignment are served; nil before
// the first SetDefault.
func (s *Server) Default() *snapshot.Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.def
}

// Assign serves set to these nodes, connected now or later, until Unassign.
// Assign(ids, nil) is Unassign(ids).
func (s *Server) Assign(nodeIDs []string, set *snapshot.Set) {
	if set == nil {
		s.Unassign(nodeIDs)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range nodeIDs {
		s.assigned[id] = set
		if n := s.nodes[id]; n != nil {
			s.applyLocked(n)
		}
	}
	s.reportServiceClustersLocked()
	s.notifyLocked()
}

// Unassign puts these nodes back on the default Set (a node keeps what it
// has while there is no default).
func (s *Server) Unassign(nodeIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range nodeIDs {
		delete(s.assigned, id)
		if n := s.nodes[id]; n != nil {
			s.applyLocked(n)
		}
	}
	s.reportServiceClustersLocked()
	s.notifyLocked()
}

// Served is the Set a connected node is being served now, nil for a node
// that is not connected (or connected before any Set existed).
func (s *Server) Served(nodeID string) *snapshot.Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nodes[nodeID]; n != nil {
		return n.served
	}
	return nil
}

// targetLocked is the Set node n should be served: its assignment, else the
// default, unless n rejected that one; then its last good Set, else what it
// has now.
func (s *Server) targetLocked(n *nodeState) *snapshot.Set {
	want := s.assigned[n.id]
	if want == nil {
		want = s.def
	}
	if want == nil {
		return n.served
	}
	if _, bad := n.failed[want.Hash()]; bad {
		if n.lastGood != nil {
			return n.lastGood
		}
		return n.served
	}
	return want
}

func (s *Server) applyLocked(n *nodeState) {
	to := s.targetLocked(n)
	if to == nil {
		return
	}
	if n.served != nil && n.cur != nil && to.In(n.group).Hash() == n.served.In(n.group).Hash() {
		n.served = to // same bytes for its group: only the revision or other groups differ
		s.checkGoodLocked(n)
		return
	}
	s.transitionLocked(n, to)
}

// recordNACK handles a rejection of version of typeURL by node n: event,
// failure record, and the reset to the node's last good Set.
func (s *Server) recordNACK(n *nodeState, typeURL, version, msg string, now time.Time) {
	n.typ(typeURL).lastNACK = &Rejection{Version: version, Error: msg, Time: now}
	s.emitLocked(Event{NodeID: n.id, TypeURL: typeURL, Version: version, Kind: NACK, Error: msg, Time: now})
	bad := n.served
	if bad == nil {
		return
	}
	if version != "" && !n.pending[typeURL][version] {
		// A late NACK of a version the node is no longer being moved to.
		s.log.Info("stale NACK", "node", n.id, "type", typeURL, "version", version, "error", msg)
		return
	}
	s.log.Warn("NACK", "node", n.id, "type", typeURL, "version", version, "revision", bad.Revision, "hash", bad.Hash(), "error", msg)
	if _, seen := n.failed[bad.Hash()]; !seen {
		n.failed[bad.Hash()] = Failure{TypeURL: typeURL, Version: version, Error: msg, Time: now}
	}
	if n.lastGood != nil && n.lastGood.Hash() == bad.Hash() {
		n.lastGood = nil
	}
	if n.lastGood != nil {
		s.log.Info("node reset to its last good set", "node", n.id, "revision", n.lastGood.Revision, "hash", n.lastGood.Hash())
		n.cur = s.keptLocked(n, typeURL)
		// The rejected Set's scopes are not kept for draining: the node
		// may have rejected one of them.
		n.target = nil
		s.transitionLocked(n, n.lastGood)
	}
}

// keptLocked is what node n holds after rejecting the current step's
// typeURL: the current step, with the version of typeURL the node kept
// when that is its last good Set's. The reset is planned from it: planned
// from the rejected step, a rejected union of clusters (step 1 of plan.go)
// would be sent again inside the reset's own union, NACKed again, and the
// last good Set recorded as failed.
func (s *Server) keptLocked(n *nodeState, typeURL string) *cache.Snapshot {
	cur := n.cur
	if cur == nil || n.lastGood == nil {
		return cur
	}
	good, err := n.lastGood.In(n.group).CacheSnapshot(n.class)
	if err != nil || good == nil {
		return cur
	}
	good = s.withEndpointsLocked(good, n.class)
	kept := n.typ(typeURL).acked
	if kept == "" || kept != good.GetVersion(typeURL) || cur.GetVersion(typeURL) == kept {
		return cur
	}
	out := cloneSnapshot(cur)
	rt := cache.GetResponseType(typeURL)
	out.Resources[rt] = good.Resources[rt]
	out.VersionMap[typeURL] = good.VersionMap[typeURL]
	return out
}
