package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// recheck bounds how long a missed event can delay a stage decision.
const recheck = 250 * time.Millisecond

// stageRun carries the state of one rollout across its stages.
type stageRun struct {
	e      *Engine
	r      *run
	events <-chan Event
	moved  map[string]bool
	log    *slog.Logger
	paused bool
	// dirty says fleet events arrived since waitACKs last observed.
	dirty bool

	querier Querier
}

func (s *stageRun) stageOf(n Node) int {
	if s.r.plan.FastPath != "" {
		return 0
	}
	return s.r.plan.Policy.StageOf(n.ID, n.Labels)
}

// move assigns the target to every connected node of stages 0..i not moved yet.
func (s *stageRun) move(i int) {
	var ids []string
	for _, n := range s.e.fleet.Nodes() {
		if !s.moved[n.ID] && s.stageOf(n) <= i {
			ids = append(ids, n.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		s.moved[id] = true
	}
	s.e.fleet.Assign(ids, s.r.plan.Target)
}

// minObserve is the least time between two observes of a stage waiting for
// ACKs.
const minObserve = 20 * time.Millisecond

// observe refreshes the stage's node list and ACK count in the status and
// returns the moved nodes that have not ACKed the target yet, or the
// failure of a moved node that rejected the target (in case its NACK event
// was dropped).
func (s *stageRun) observe(i int, stage string) (pending []string, err error) {
	var nodes []string
	acked := 0
	for _, n := range s.e.fleet.Nodes() {
		if !s.moved[n.ID] {
			continue
		}
		if why, ok := n.Rejected[s.r.plan.Target.Hash()]; ok && err == nil {
			err = &failure{reason: status.ReasonNACK, msg: fmt.Sprintf("stage %s: node %s rejected the revision: %s", stage, n.ID, why)}
		}
		inStage := s.stageOf(n) == i
		if inStage {
			nodes = append(nodes, n.ID)
		}
		switch {
		case !n.HasAcked(s.r.plan.Target):
			pending = append(pending, n.ID)
		case inStage:
			acked++ // of this stage's nodes, not a running total
		}
	}
	sort.Strings(nodes)
	s.e.update(s.r, func(st *status.Rollout) {
		st.Stages[i].Nodes = nodes
		st.Stages[i].Acked = acked
	})
	return pending, err
}

// handle reacts to a fleet event during stage i.
func (s *stageRun) handle(ev Event, i int, stage string) error {
	switch ev.Kind {
	case NACK:
		if s.moved[ev.NodeID] {
			return &failure{reason: status.ReasonNACK, msg: fmt.Sprintf("stage %s: node %s rejected %s (version %s): %s",
				stage, ev.NodeID, xdsres.ShortType(ev.TypeURL), ev.Version, ev.Error)}
		}
		s.log.Warn("rollout: NACK from a node not on the new revision", "node", ev.NodeID, "type", xdsres.ShortType(ev.TypeURL), "error", ev.Error)
	case Connect:
		// A node that connects mid-rollout gets what its stage has reached.
		s.move(i)
	}
	return nil
}

func (s *stageRun) control(action Action) {
	switch action {
	case Pause:
		s.paused = true
		s.e.update(s.r, func(st *status.Rollout) { st.Phase = Paused })
		s.log.Info("rollout: paused")
	case Resume:
		s.paused = false
		s.e.update(s.r, func(st *status.Rollout) { st.Phase = Progressing })
		s.log.Info("rollout: resumed")
	}
}

// run runs stage i as a list of steps: move its nodes, wait for their
// ACKs, bake with the gates, hold while paused, pass. A step that fails
// marks the stage Failed and ends the rollout.
func (s *stageRun) run(ctx context.Context, i int, stages []Stage) error {
	stage := stages[i]
	now := time.Now().UTC()
	s.e.update(s.r, func(st *status.Rollout) {
		st.StageIdx, st.Stage = i, stage.Name
		st.Stages[i].Phase = status.StageProgressing
		st.Stages[i].StartedAt = &now
	})
	s.move(i)
	for _, step := range []func(context.Context, int, Stage) error{s.waitACKs, s.bake, s.holdWhilePaused} {
		if err := step(ctx, i, stage); err != nil {
			return s.fail(i, err)
		}
	}
	s.e.update(s.r, func(st *status.Rollout) { st.Stages[i].Phase = status.StagePassed })
	s.log.Info("rollout: stage passed", "stage", stage.Name)
	return nil
}

// wakeup is what a step waits on besides what every step handles the same
// way (cancellation, fleet events, operator actions): a ticker, a deadline,
// and a condition that ends the wait. Any may be nil.
type wakeup struct {
	tick       <-chan time.Time
	onTick     func() (done bool, err error)
	deadline   <-chan time.Time
	onDeadline func() error
	// done is checked before each wait; true ends it.
	done func() bool
}

// wait is the one loop of a stage. A NACK from a moved node fails the
// stage at once, whatever the step; a node that connects gets what its
// stage has reached; pause and resume take effect at once. Events are
// handled in bursts (a stage of 1,000 nodes brings thousands of ACKs), and
// s.dirty says some arrived since the step last looked at the fleet.
func (s *stageRun) wait(ctx context.Context, i int, stage string, w wakeup) error {
	for w.done == nil || !w.done() {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case ev := <-s.events:
			if err := s.handleBurst(ev, i, stage); err != nil {
				return err
			}
		case a := <-s.r.control:
			s.control(a)
		case <-w.tick:
			if done, err := w.onTick(); err != nil || done {
				return err
			}
		case <-w.deadline:
			return w.onDeadline()
		}
	}
	return nil
}

// waitACKs waits until every moved node ACKs the target, looking at the
// fleet at most every minObserve (and at least every recheck, in case an
// event was dropped); it fails when a node rejected the target or the
// stage's nodes do not ACK within the policy's ackTimeout.
func (s *stageRun) waitACKs(ctx context.Context, i int, stage Stage) error {
	pol := s.r.plan.Policy
	pending, err := s.observe(i, stage.Name)
	if err != nil || len(pending) == 0 {
		return err
	}
	tick := time.NewTicker(minObserve)
	defer tick.Stop()
	ackTimeout := time.NewTimer(pol.AckTimeout)
	defer ackTimeout.Stop()
	last := time.Now()
	err = s.wait(ctx, i, stage.Name, wakeup{
		tick: tick.C,
		onTick: func() (bool, error) {
			if !s.dirty && time.Since(last) < recheck {
				return false, nil
			}
			s.dirty, last = false, time.Now()
			pending, err = s.observe(i, stage.Name)
			return len(pending) == 0, err
		},
		deadline: ackTimeout.C,
		onDeadline: func() error {
			return &failure{reason: status.ReasonAckTimeout, msg: fmt.Sprintf("stage %s: %s did not ACK within %s",
				stage.Name, nodeList(pending), pol.AckTimeout)}
		},
	})
	if err == nil {
		s.log.Info("rollout: stage acknowledged", "stage", stage.Name, "nodes", len(s.moved))
	}
	return err
}

// holdWhilePaused holds after the stage's bake until resumed, still
// watching for NACKs.
func (s *stageRun) holdWhilePaused(ctx context.Context, i int, stage Stage) error {
	return s.wait(ctx, i, stage.Name, wakeup{done: func() bool { return !s.paused }})
}

// bake keeps stage i's nodes on the target for stage.Bake, evaluating the
// metric gates every analysis interval and once more at the end.
func (s *stageRun) bake(ctx context.Context, i int, stage Stage) error {
	pol := s.r.plan.Policy
	if stage.Bake <= 0 || s.r.plan.FastPath != "" {
		return nil
	}
	s.r.mu.Lock()
	own := len(s.r.status.Stages[i].Nodes)
	s.r.mu.Unlock()
	if own == 0 {
		// A stage that selects no node passes at once: there is nothing to
		// watch (the first revision is often served before any node connects).
		return nil
	}
	s.e.update(s.r, func(st *status.Rollout) { st.Stages[i].Phase = status.StageBaking })
	var stageNodes []string
	for id := range s.moved {
		stageNodes = append(stageNodes, id)
	}
	sort.Strings(stageNodes)
	data := NewQueryData(stageNodes, stage.Name, s.r.plan.Revision)

	end := time.NewTimer(stage.Bake)
	defer end.Stop()
	var interval <-chan time.Time
	if len(pol.Metrics) > 0 {
		t := time.NewTicker(pol.Interval)
		defer t.Stop()
		interval = t.C
	}
	queryErrs := 0
	gate := func() error {
		if len(pol.Metrics) == 0 {
			return nil
		}
		if s.querier == nil {
			q, err := s.e.opts.NewQuerier(pol.Prometheus)
			if err != nil {
				return &failure{reason: status.ReasonQueryError, msg: fmt.Sprintf("stage %s: prometheus %s: %v", stage.Name, pol.Prometheus, err)}
			}
			s.querier = q
		}
		vals, failed, qerr := evalGates(ctx, s.querier, pol, data)
		s.e.update(s.r, func(st *status.Rollout) { st.Stages[i].Gates = vals })
		if failed != nil {
			return &failure{reason: status.ReasonMetricGate, msg: fmt.Sprintf("stage %s: metric %s = %g is out of bounds (%s) on %s",
				stage.Name, failed.Name, *failed.Value, bounds(*failed), nodeList(stageNodes))}
		}
		if qerr != nil {
			queryErrs++
			s.log.Warn("rollout: metric query failed", "stage", stage.Name, "error", qerr, "inARow", queryErrs)
			if queryErrs >= pol.FailureLimit {
				return &failure{reason: status.ReasonQueryError, msg: fmt.Sprintf("stage %s: %d metric queries in a row failed, last: %v", stage.Name, queryErrs, qerr)}
			}
			return nil
		}
		queryErrs = 0
		return nil
	}
	return s.wait(ctx, i, stage.Name, wakeup{
		tick:       interval,
		onTick:     func() (bool, error) { return false, gate() },
		deadline:   end.C,
		onDeadline: gate,
	})
}

func (s *stageRun) fail(i int, err error) error {
	if ctxErr, ok := err.(*failure); ok {
		s.e.update(s.r, func(st *status.Rollout) { st.Stages[i].Phase = status.StageFailed })
		return ctxErr
	}
	return err
}

func nodeList(ids []string) string {
	const max = 5
	if len(ids) <= max {
		return "node(s) " + strings.Join(ids, ", ")
	}
	return fmt.Sprintf("node(s) %s and %d more", strings.Join(ids[:max], ", "), len(ids)-max)
}

// handleBurst handles ev and every event already queued behind it.
func (s *stageRun) handleBurst(ev Event, i int, stage string) error {
	s.dirty = true
	for {
		if err := s.handle(ev, i, stage); err != nil {
			return err
		}
		select {
		case ev = <-s.events:
		default:
			return nil
		}
	}
}
