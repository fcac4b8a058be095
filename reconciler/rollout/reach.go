package rollout

import (
	"fmt"
	"sort"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// Reach is how a rollout reaches the nodes of its stages: it moves stage
// i, observes it, and wakes the stage loop when there may be something new
// to observe. The stage loop (stage.go) is the same whatever the reach:
// ACK wait, minNodes, bake, metric gates, pause and abort.
//
// Two reaches exist: Local, the nodes connected to this process's xDS
// server (one replica); and FleetWide, every replica's nodes, through a
// Board the leader writes the stage reached to and every replica reports
// to (high availability).
type Reach interface {
	// Begin starts the rollout of p over stages (p.Resume, when set, is
	// where a new leader resumes it).
	Begin(p Plan, stages []Stage)
	// Save records the rollout's progress (the fleet-wide reach writes it
	// to the Board, without blocking).
	Save(p Progress)
	// Move serves the target to the nodes of stages 0..i.
	Move(i int)
	// Observe is stage i now: its nodes, their ACKs, the moved nodes still
	// pending, and a failure (a NACK, a version skew) if there is one.
	Observe(i int) Observation
	// Events wakes the stage loop; Handle reacts to each event (a NACK of
	// the target fails the stage at once).
	Events() <-chan Event
	Handle(ev Event, i int, stage string) error
	// Fenced is closed when a newer leader owns the rollout: the stage
	// loop stops at once and End writes nothing (nil for Local).
	Fenced() <-chan struct{}
	// End serves the outcome: the target to every node on success, the
	// last good otherwise. stopped says the process is stopping (not
	// superseded by a newer revision): the fleet-wide reach then leaves
	// the rollout for the next leader to resume.
	End(res Result, stopped bool)
	// Moved is how many nodes the rollout moved so far.
	Moved() int
}

// Progress of a rollout, as the reach records it.
type Progress struct {
	Stage     int
	StageName string
	Phase     status.RolloutPhase
	// BakeUntil is when the stage's bake ends, while it bakes.
	BakeUntil *time.Time
}

// Observation of a stage.
type Observation struct {
	// Nodes of the stage (fleet-wide: those the replicas name), sorted.
	Nodes []string
	// InStage is how many nodes the stage selects now; Acked how many of
	// them ACKed the target.
	InStage, Acked int
	// Pending is how many moved nodes (of stages 0..i) have not ACKed the
	// target yet; PendingNodes names some of them.
	Pending      int
	PendingNodes []string
	// Waiting says why the stage cannot pass besides pending ACKs (a
	// replica has not applied the stage yet, or its report is stale).
	Waiting string
	// Failure is set when the stage must fail now.
	Failure error
}

// Local is the reach of one replica: the nodes connected to its xDS
// server (Fleet).
type Local struct {
	fleet  Fleet
	plan   Plan
	stages []Stage
	moved  map[string]bool
	events <-chan Event
	cancel func()
}

var _ Reach = (*Local)(nil)

// NewLocal returns the reach of the nodes connected to fleet.
func NewLocal(fleet Fleet) *Local { return &Local{fleet: fleet} }

// Begin implements Reach: nodes without an assignment are served the last
// good version.
func (l *Local) Begin(p Plan, stages []Stage) {
	l.plan, l.stages, l.moved = p, stages, map[string]bool{}
	l.events, l.cancel = l.fleet.Subscribe()
	if p.LastGood != nil {
		l.fleet.SetDefault(p.LastGood)
	}
}

// Save implements Reach: a single replica's progress lives in its engine.
func (l *Local) Save(Progress) {}

// Fenced implements Reach: a single replica is never fenced.
func (l *Local) Fenced() <-chan struct{} { return nil }

// Events implements Reach.
func (l *Local) Events() <-chan Event { return l.events }

func (l *Local) stageOf(n Node) int {
	if l.plan.FastPath != "" {
		return 0
	}
	return StageOf(l.stages, n.ID, n.Labels)
}

// Move implements Reach: it assigns the target to every connected node of
// stages 0..i not moved yet.
func (l *Local) Move(i int) {
	var ids []string
	for _, n := range l.fleet.Nodes() {
		if !l.moved[n.ID] && l.stageOf(n) <= i {
			ids = append(ids, n.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		l.moved[id] = true
	}
	l.fleet.Assign(ids, l.plan.Target)
}

// Observe implements Reach. A moved node that rejected the target fails
// the stage (in case its NACK event was dropped).
func (l *Local) Observe(i int) Observation {
	var o Observation
	stage := l.stages[i].Name
	for _, n := range l.fleet.Nodes() {
		if !l.moved[n.ID] {
			continue
		}
		if why, ok := n.Rejected[l.plan.Target.Hash()]; ok && o.Failure == nil {
			o.Failure = &failure{reason: status.ReasonNACK, msg: fmt.Sprintf("stage %s: node %s rejected the revision: %s", stage, n.ID, why)}
		}
		inStage := l.stageOf(n) == i
		if inStage {
			o.Nodes = append(o.Nodes, n.ID)
		}
		switch {
		case !n.HasAcked(l.plan.Target):
			o.PendingNodes = append(o.PendingNodes, n.ID)
		case inStage:
			o.Acked++ // of this stage's nodes, not a running total
		}
	}
	sort.Strings(o.Nodes)
	o.InStage, o.Pending = len(o.Nodes), len(o.PendingNodes)
	return o
}

// Handle implements Reach: a NACK from a moved node fails the stage; a
// node that connects mid-rollout gets what its stage has reached.
func (l *Local) Handle(ev Event, i int, stage string) error {
	switch ev.Kind {
	case NACK:
		if l.moved[ev.NodeID] {
			return &failure{reason: status.ReasonNACK, msg: fmt.Sprintf("stage %s: node %s rejected %s (version %s): %s",
				stage, ev.NodeID, xdsres.ShortType(ev.TypeURL), ev.Version, ev.Error)}
		}
	case Connect:
		l.Move(i)
	}
	return nil
}

// End implements Reach: every node goes to the target on success, back to
// the last good version otherwise, at once.
func (l *Local) End(res Result, _ bool) {
	defer l.cancel()
	if res.Phase == Succeeded {
		// The target is what everyone, and every node that connects
		// later, is served.
		l.fleet.SetDefault(l.plan.Target)
	} else if l.plan.LastGood != nil {
		l.fleet.SetDefault(l.plan.LastGood)
	}
	l.fleet.Unassign(keys(l.moved))
}

// Moved implements Reach.
func (l *Local) Moved() int { return len(l.moved) }
