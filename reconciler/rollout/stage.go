package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
)

// recheck bounds how long a missed event can delay a stage decision.
const recheck = 250 * time.Millisecond

// stageRun carries the state of one rollout across its stages.
type stageRun struct {
	e      *Engine
	r      *run
	reach  Reach
	log    *slog.Logger
	paused bool
	// dirty says events arrived since waitACKs last observed.
	dirty bool
	// from is the stage a resumed rollout starts at, and bakeUntil the end
	// of that stage's bake the previous leader set (nil when none).
	from      int
	bakeUntil *time.Time

	querier Querier
}

// minObserve is the least time between two observes of a stage waiting for
// ACKs.
const minObserve = 20 * time.Millisecond

// observe refreshes the stage's node list and ACK count in the status and
// returns what the reach observed.
func (s *stageRun) observe(i int) Observation {
	o := s.reach.Observe(i)
	s.e.update(s.r, func(st *status.Rollout) {
		st.Stages[i].Nodes = o.Nodes
		st.Stages[i].NodeCount = o.InStage
		st.Stages[i].Acked = o.Acked
	})
	return o
}

// save records the rollout's progress with the reach.
func (s *stageRun) save(i int, stage string, bakeUntil *time.Time) {
	ph := Progressing
	if s.paused {
		ph = Paused
	}
	s.reach.Save(Progress{Stage: i, StageName: stage, Phase: ph, BakeUntil: bakeUntil})
}

func (s *stageRun) control(action Action, i int, stage string) {
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
	s.save(i, stage, s.bakeUntil)
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
		st.Stages[i].MinNodes = s.minNodes(stage)
	})
	if i != s.from {
		s.bakeUntil = nil
	}
	s.save(i, stage.Name, s.bakeUntil)
	s.reach.Move(i)
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
// stage has reached; pause and resume take effect at once; a fenced
// leader stops at once. Events are handled in bursts (a stage of 1,000
// nodes brings thousands of ACKs), and s.dirty says some arrived since the
// step last looked at the fleet.
func (s *stageRun) wait(ctx context.Context, i int, stage string, w wakeup) error {
	for w.done == nil || !w.done() {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-s.reach.Fenced():
			return errFenced
		case ev := <-s.reach.Events():
			if err := s.handleBurst(ev, i, stage); err != nil {
				return err
			}
		case a := <-s.r.control:
			s.control(a, i, stage)
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

// minNodes is how many nodes stage must select to pass: none for the very
// first revision (no last good version to protect: nodes outside the stage
// have nothing to fall back to) and on the fast path.
func (s *stageRun) minNodes(stage Stage) int {
	if s.r.plan.LastGood == nil || s.r.plan.FastPath != "" {
		return 0
	}
	return stage.MinNodes
}

// waitACKs waits until every moved node ACKs the target and the stage
// selects at least its minNodes, looking at the fleet at most every
// minObserve (and at least every recheck, in case an event was dropped);
// it fails when a node rejected the target, or at the policy's ackTimeout
// when a node has not ACKed or the stage selects too few nodes.
func (s *stageRun) waitACKs(ctx context.Context, i int, stage Stage) error {
	pol := s.r.plan.Policy
	need := s.minNodes(stage)
	var o Observation
	check := func() (bool, error) {
		o = s.observe(i)
		if o.Failure != nil {
			return false, o.Failure
		}
		warning := ""
		if o.InStage < need {
			warning = fmt.Sprintf("selects %d node(s), needs at least %d (%s); waiting up to %s for them", o.InStage, need, stage.describe(), pol.AckTimeout)
		} else if o.Waiting != "" {
			warning = o.Waiting
		}
		s.e.update(s.r, func(st *status.Rollout) { st.Stages[i].Warning = warning })
		return o.Pending == 0 && o.Waiting == "" && o.InStage >= need, nil
	}
	if done, err := check(); err != nil || done {
		return err
	}
	tick := time.NewTicker(minObserve)
	defer tick.Stop()
	ackTimeout := time.NewTimer(pol.AckTimeout)
	defer ackTimeout.Stop()
	last := time.Now()
	err := s.wait(ctx, i, stage.Name, wakeup{
		tick: tick.C,
		onTick: func() (bool, error) {
			if !s.dirty && time.Since(last) < recheck {
				return false, nil
			}
			s.dirty, last = false, time.Now()
			return check()
		},
		deadline: ackTimeout.C,
		onDeadline: func() error {
			switch {
			case o.Pending > 0:
				msg := fmt.Sprintf("stage %s: %s did not ACK within %s", stage.Name, pendingList(o), pol.AckTimeout)
				if o.Waiting != "" {
					msg += " (" + o.Waiting + ")"
				}
				return &failure{reason: status.ReasonAckTimeout, msg: msg}
			case o.Waiting != "":
				return &failure{reason: status.ReasonAckTimeout, msg: fmt.Sprintf("stage %s: not acknowledged within %s: %s", stage.Name, pol.AckTimeout, o.Waiting)}
			}
			return &failure{reason: status.ReasonTooFewNodes, msg: fmt.Sprintf("stage %s: %s selected %d node(s) within %s, fewer than its minNodes %d",
				stage.Name, stage.describe(), o.InStage, pol.AckTimeout, need)}
		},
	})
	if err == nil {
		s.e.update(s.r, func(st *status.Rollout) { st.Stages[i].Warning = "" })
		s.log.Info("rollout: stage acknowledged", "stage", stage.Name, "nodes", o.InStage)
	}
	return err
}

// pendingList names the pending nodes of o.
func pendingList(o Observation) string {
	if len(o.PendingNodes) >= o.Pending {
		return nodeList(o.PendingNodes)
	}
	return fmt.Sprintf("%d node(s), among them %s,", o.Pending, strings.Join(o.PendingNodes, ", "))
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
	own := s.r.status.Stages[i].NodeCount
	stageNodes := append([]string(nil), s.r.status.Stages[i].Nodes...)
	s.r.mu.Unlock()
	if own == 0 {
		// A stage that selects no node and needs none (minNodes 0) passes
		// at once: there is nothing to watch.
		return nil
	}
	bake := stage.Bake
	until := time.Now().Add(bake).UTC()
	if i == s.from && s.bakeUntil != nil {
		// Resumed by a new leader: the rest of the bake the previous one
		// began.
		until = *s.bakeUntil
		bake = max(time.Until(until), 0)
	}
	s.bakeUntil = &until
	s.save(i, stage.Name, s.bakeUntil)
	s.e.update(s.r, func(st *status.Rollout) { st.Stages[i].Phase = status.StageBaking })
	data := NewQueryData(stageNodes, stage.Name, s.r.plan.Revision)

	end := time.NewTimer(bake)
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
		if err := s.reach.Handle(ev, i, stage); err != nil {
			return err
		}
		select {
		case ev = <-s.reach.Events():
		default:
			return nil
		}
	}
}
