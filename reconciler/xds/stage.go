package xds

import (
	"context"
	"time"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// DefaultStageTimeout is how long a node may take to ACK one stage of a
// transition before the next stage is sent anyway.
const DefaultStageTimeout = 5 * time.Second

// transitionLocked moves node n to Set to in stages (plan.go). A stage is
// set only once the node has ACKed the previous one for every type it
// subscribed to, so CDS is in the node before the LDS and RDS that use it,
// even when a response was still in flight (a SnapshotCache response goes
// only to an open watch; the next one waits for the client's request).
func (s *Server) transitionLocked(n *nodeState, to *snapshot.Set) {
	snap, err := to.CacheSnapshot(n.class)
	if err != nil || snap == nil {
		s.log.Error("no cache snapshot: node keeps what it has", "node", n.id, "revision", to.Revision, "error", err)
		return
	}
	snap = s.withEndpointsLocked(snap, n.class)
	snap = s.withDrainingLocked(n, snap, time.Now())
	n.target = snap
	s.armDrainTimerLocked(n)
	from := n.cur
	if from == nil {
		// Staged too: the node may have watches open already (it
		// connected before there was any Set).
		from = emptySnapshot
	}
	stages := s.plans.stages(from, snap)
	n.served = to
	n.queue = stages
	n.pending = map[string]map[string]bool{}
	for _, st := range stages {
		for _, t := range snapshot.TypeURLs {
			if n.pending[t] == nil {
				n.pending[t] = map[string]bool{}
			}
			n.pending[t][st.GetVersion(t)] = true
		}
	}
	s.log.Debug("node moving", "node", n.id, "revision", to.Revision, "hash", to.Hash(), "stages", len(stages))
	s.advanceLocked(n, false)
}

// advanceLocked sets the node's next stages while the current one is
// delivered (or force, once).
func (s *Server) advanceLocked(n *nodeState, force bool) {
	if n.advancing {
		return // an implicit ACK while setting a stage: the loop goes on
	}
	n.advancing = true
	defer func() { n.advancing = false }()
	for len(n.queue) > 0 {
		if !force && !s.stageDoneLocked(n) {
			s.armStageTimerLocked(n)
			return
		}
		force = false
		next := n.queue[0]
		n.queue = n.queue[1:]
		answerHeldLocked(n, s.deltaWatches, n.cur, next, s.answerDeltaLocked)
		answerHeldLocked(n, s.sotwWatches, n.cur, next, s.answerSotwLocked)
		// Background: responses go to buffered channels (one slot per type
		// and watch), so this never waits for a stream.
		if err := s.cache.SetSnapshot(context.Background(), n.id, next); err != nil {
			s.log.Error("set snapshot", "node", n.id, "error", err)
		}
		n.cur = next
		s.stopStageTimerLocked(n)
	}
	s.stopStageTimerLocked(n)
	s.checkGoodLocked(n)
}

// stageDoneLocked: every type the node subscribed to is ACKed at the
// current stage's version, or was NACKed at it (the node keeps what it has:
// there was nothing to reset it to).
func (s *Server) stageDoneLocked(n *nodeState) bool {
	if n.cur == nil {
		return true
	}
	for _, t := range snapshot.TypeURLs {
		if !n.requested(t) {
			continue
		}
		v := n.cur.GetVersion(t)
		ts := n.typ(t)
		if ts.acked != v && (ts.lastNACK == nil || ts.lastNACK.Version != v) {
			return false
		}
	}
	return true
}

// armStageTimerLocked starts the stage timer unless it runs already; each
// stage set stops it, so it always times the stage the node is at.
func (s *Server) armStageTimerLocked(n *nodeState) {
	if n.timer != nil {
		return
	}
	var timer *time.Timer
	timer = time.AfterFunc(s.opts.StageTimeout, func() {
		s.mu.Lock() // held by the caller until timer is assigned
		defer s.mu.Unlock()
		if n.timer != timer || s.nodes[n.id] != n {
			return
		}
		n.timer = nil
		if len(n.queue) == 0 {
			return
		}
		s.log.Warn("node did not ACK a stage in time: sending the next one", "node", n.id, "timeout", s.opts.StageTimeout)
		s.advanceLocked(n, true)
		s.notifyLocked()
	})
	n.timer = timer
}

func (s *Server) stopStageTimerLocked(n *nodeState) {
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
	}
}
