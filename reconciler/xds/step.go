package xds

import (
	"context"
	"time"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// DefaultStepTimeout is how long a node may take to ACK one step of a
// transition before the next step is sent anyway.
const DefaultStepTimeout = 5 * time.Second

// transitionLocked moves node n to Set to in steps (plan.go). A step is
// set only once the node has ACKed the previous one for every type it
// subscribed to, so CDS is in the node before the LDS and RDS that use it,
// even when a response was still in flight (a SnapshotCache response goes
// only to an open watch; the next one waits for the client's request).
func (s *Server) transitionLocked(n *nodeState, to *snapshot.Set) {
	snap, err := to.In(n.group).CacheSnapshot(n.class)
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
		// Stepd too: the node may have watches open already (it
		// connected before there was any Set).
		from = emptySnapshot
	}
	steps := s.plans.steps(from, snap)
	n.served = to
	n.queue = steps
	n.pending = map[string]map[string]bool{}
	for _, st := range steps {
		for _, t := range snapshot.TypeURLs {
			if n.pending[t] == nil {
				n.pending[t] = map[string]bool{}
			}
			n.pending[t][st.GetVersion(t)] = true
		}
	}
	s.log.Debug("node moving", "node", n.id, "revision", to.Revision, "hash", to.Hash(), "steps", len(steps))
	s.advanceLocked(n, false)
}

// advanceLocked sets the node's next steps while the current one is
// delivered (or force, once).
func (s *Server) advanceLocked(n *nodeState, force bool) {
	if n.advancing {
		return // an implicit ACK while setting a step: the loop goes on
	}
	n.advancing = true
	defer func() { n.advancing = false }()
	for len(n.queue) > 0 {
		if !force && !s.stepDoneLocked(n) {
			s.armStepTimerLocked(n)
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
		s.stopStepTimerLocked(n)
	}
	s.stopStepTimerLocked(n)
	s.checkGoodLocked(n)
}

// stepDoneLocked: every type the node subscribed to is ACKed at the
// current step's version, or was NACKed at it (the node keeps what it has:
// there was nothing to reset it to).
func (s *Server) stepDoneLocked(n *nodeState) bool {
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

// armStepTimerLocked starts the step timer unless it runs already; each
// step set stops it, so it always times the step the node is at.
func (s *Server) armStepTimerLocked(n *nodeState) {
	if n.timer != nil {
		return
	}
	var timer *time.Timer
	timer = time.AfterFunc(s.opts.StepTimeout, func() {
		s.mu.Lock() // held by the caller until timer is assigned
		defer s.mu.Unlock()
		if n.timer != timer || s.nodes[n.id] != n {
			return
		}
		n.timer = nil
		if len(n.queue) == 0 {
			return
		}
		s.log.Warn("node did not ACK a step in time: sending the next one", "node", n.id, "timeout", s.opts.StepTimeout)
		s.advanceLocked(n, true)
		s.notifyLocked()
	})
	n.timer = timer
}

func (s *Server) stopStepTimerLocked(n *nodeState) {
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
	}
}
