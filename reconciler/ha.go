package reconciler

import (
	"context"
	"fmt"
	"time"

	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/status"
)

// High availability (docs/architecture.md section 4.1): every replica
// polls Git and builds each revision itself, and serves its own nodes
// through a rollout.Replica that follows the fleet-wide rollout on the
// Board. The leader (Lead) also starts rollouts, through the engine's
// FleetWide reach. What a replica persists in its own state directory is
// the last good it serves, for a restart with Git unreachable; the
// rollout itself lives on the Board.

// haState is what a replica keeps for high availability.
type haState struct {
	fw      *rollout.FleetWide
	applier *rollout.Replica
	// leadc tells the reconcile loop that this replica took the lead.
	leadc     chan struct{}
	cancelFan context.CancelFunc

	// Guarded by Reconciler.mu.
	leading bool
	// prev is the FleetState a new leader found in progress, until its
	// first decision: resumed when its build of the head is that
	// revision, superseded otherwise; resume is the one to resume.
	prev, resume *rollout.FleetState
	decided      bool
	// lastBuild is the last revision this replica built; overtaken when
	// the fleet applied another revision since (this replica's poll lags
	// behind the previous leader's): a new leader does not start it.
	lastBuild *pipeline.Result
	overtaken bool
	// sets are the Sets of revisions built for the applier, a few.
	sets  map[string]*snapshot.Set
	order []string
	// fleet is the FleetState this replica's applier last applied.
	fleet *rollout.FleetState
}

// keptSets is how many built revisions a replica keeps for its applier.
const keptSets = 4

func (h *haState) keep(revision string, set *snapshot.Set) {
	if _, ok := h.sets[revision]; !ok {
		h.order = append(h.order, revision)
	}
	h.sets[revision] = set
	for len(h.order) > keptSets {
		delete(h.sets, h.order[0])
		h.order = h.order[1:]
	}
}

// newHA sets up the replica's applier and the leader's reach.
func (r *Reconciler) newHA() rollout.Reach {
	ctx, cancel := context.WithCancel(context.Background())
	outs := rollout.Fanout(ctx, r.opts.Board.Changes(), 2)
	h := &haState{leadc: make(chan struct{}, 1), cancelFan: cancel, sets: map[string]*snapshot.Set{}}
	h.fw = rollout.NewFleetWide(rollout.FleetWideOptions{Board: r.opts.Board, Changes: outs[0],
		StaleAfter: r.opts.StaleAfter, GoneAfter: r.opts.GoneAfter, Log: r.log})
	h.applier = rollout.NewReplica(rollout.ReplicaOptions{Name: r.opts.Replica, Board: r.opts.Board, Changes: outs[1],
		Fleet: r.opts.Fleet, Sets: r, OnState: r.onFleetState, Heartbeat: r.opts.ReplicaHeartbeat, Log: r.log})
	r.ha = h
	return h.fw
}

// runHA starts the applier for the life of ctx.
func (r *Reconciler) runHA(ctx context.Context) {
	go r.ha.applier.Run(ctx)
	go func() { <-ctx.Done(); r.ha.cancelFan() }()
}

// Lead runs this replica's leadership of epoch (from the leader
// election) until ctx ends, or until a newer leader fences it: then it
// returns rollout.ErrFenced at once, and this replica decides nothing
// more. It resumes the rollout the previous leader left Progressing or
// Paused when its own build of the head is that revision (at its stage,
// with the rest of its bake), and supersedes it otherwise. Run must be
// running.
func (r *Reconciler) Lead(ctx context.Context, epoch int64) error {
	h := r.ha
	if h == nil {
		return fmt.Errorf("reconciler: Lead needs Options.Board")
	}
	var prev *rollout.FleetState
	for {
		s, ok, err := r.opts.Board.Rollout(ctx)
		if err == nil {
			if ok {
				prev = &s
			}
			break
		}
		r.log.Warn("leader: reading the fleet-wide rollout failed; retrying", "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	if prev != nil && prev.Epoch >= epoch {
		return fmt.Errorf("%w: the fleet-wide rollout has epoch %d, this leadership %d", rollout.ErrFenced, prev.Epoch, epoch)
	}
	h.fw.Lead(ctx, epoch, prev)
	r.mu.Lock()
	h.leading, h.decided, h.prev, h.resume = true, false, nil, nil
	if prev != nil && !prev.Phase.Final() {
		h.prev = prev
		r.log.Info("leader: a fleet-wide rollout is in progress; resumed if this replica's build of the head is its revision",
			"revision", prev.Revision, "stage", prev.StageName, "phase", prev.Phase, "epoch", epoch)
	}
	r.mu.Unlock()
	select {
	case h.leadc <- struct{}{}:
	default:
	}
	var err error
	select {
	case <-ctx.Done():
	case <-h.fw.Fenced():
		err = rollout.ErrFenced
	}
	r.mu.Lock()
	h.leading = false
	r.mu.Unlock()
	// A rollout in progress stops without a write: the next leader
	// resumes it.
	r.engine.Stop()
	return err
}

// takeOver is the reconcile loop's first act as leader: a new head is
// built and rolled out as usual; the head already built is decided now.
func (r *Reconciler) takeOver(ctx context.Context) {
	r.ReconcileOnce(ctx, "leader")
	r.mu.Lock()
	h := r.ha
	b, pending := h.lastBuild, h.leading && !h.decided && !h.overtaken
	r.mu.Unlock()
	if pending && b != nil {
		r.startRollout(b)
	}
}

// decideHA records b, built by this replica, and says whether this
// replica decides its rollout (it leads). A rollout a previous leader
// left in progress is resumed when it is b's, superseded otherwise.
// Caller holds r.mu.
func (r *Reconciler) decideHA(b *pipeline.Result) bool {
	h := r.ha
	h.lastBuild, h.overtaken = b, false
	h.keep(b.Revision, b.Set)
	if !h.leading {
		return false
	}
	h.decided = true
	if p := h.prev; p != nil {
		h.prev = nil
		if p.Revision == b.Revision && p.Hash == b.Set.Hash() {
			h.resume = p
		} else {
			r.log.Info("leader: the head is not the revision in progress; superseding it", "inProgress", p.Revision, "head", b.Revision)
			h.fw.Supersede(*p)
		}
	}
	return true
}

// resumable is the FleetState to resume with b, if any.
func (r *Reconciler) resumable(b *pipeline.Result) *rollout.FleetState {
	if r.ha == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.ha.resume
	r.ha.resume = nil
	if p == nil || p.Hash != b.Set.Hash() {
		return nil
	}
	return p
}

// Set implements rollout.Sets: the Set revision builds to on this
// replica, from its last good, its builds, or a build now.
func (r *Reconciler) Set(ctx context.Context, revision string) (*snapshot.Set, error) {
	cached := func() *snapshot.Set {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.state.LastGood != nil && r.state.LastGoodRevision == revision {
			return r.state.LastGood
		}
		return r.ha.sets[revision]
	}
	if s := cached(); s != nil {
		return s, nil
	}
	rev, err := source.ParseRevision(revision)
	if err != nil {
		return nil, err
	}
	fsys, err := r.opts.Source.FS(ctx, rev)
	if err != nil {
		r.Trigger("fleet-wide revision " + revision) // a poll fetches it
		return nil, fmt.Errorf("fetching %s: %w", revision, err)
	}
	r.buildMu.Lock()
	defer r.buildMu.Unlock()
	if s := cached(); s != nil {
		return s, nil // the reconcile loop built it meanwhile
	}
	r.mu.Lock()
	last := r.state.memory()
	r.mu.Unlock()
	b, err := r.builds.run(ctx, revision, func() (*pipeline.Result, error) {
		return r.opts.Pipeline.Run(fsys, r.opts.Overlay, revision, last)
	})
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", revision, err)
	}
	r.mu.Lock()
	r.ha.keep(revision, b.Set)
	r.mu.Unlock()
	return b.Set, nil
}

// onFleetState records what this replica's applier serves: a rollout
// that Succeeded is this replica's last good (persisted, for a restart
// with Git unreachable), failed revisions are not built again.
func (r *Reconciler) onFleetState(s rollout.FleetState, target, _ *snapshot.Set) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.ha
	h.fleet = &s
	changed := false
	for _, f := range s.Failed {
		known := false
		for _, g := range r.state.Failed {
			known = known || (g.Revision == f.Revision && g.Hash == f.Hash)
		}
		if !known {
			r.state.addFailed(f)
			r.opts.Metrics.Failures.WithLabelValues(status.ReasonRolloutFailed).Inc()
			changed = true
		}
	}
	if s.Phase == rollout.Succeeded && target != nil && r.adoptLastGood(s.Revision, target, s.FastPath) {
		changed = true
	}
	if changed {
		r.st.FailedRevisions = r.state.Failed
		if err := r.opts.Store.Save(&r.state); err != nil {
			r.log.Error("persist state", "error", err)
		}
	}
	if s.Phase.Final() && r.building != nil && r.building.Set.Hash() == s.Hash {
		r.building = nil
	}
	r.summarize()
}

// adoptLastGood makes target, revision's Set, this replica's last good;
// it says whether that changed anything. Caller holds r.mu.
func (r *Reconciler) adoptLastGood(revision string, target *snapshot.Set, fastPath string) bool {
	if r.state.LastGood != nil && r.state.LastGood.Hash() == target.Hash() && r.state.LastGoodRevision == revision {
		return false
	}
	if b := r.ha.lastBuild; b != nil && b.Revision != revision {
		r.ha.overtaken = true
	} else if b != nil {
		r.state.remember(b.Model)
	}
	r.recordSucceededLocked(revision, target, fastPath)
	return true
}

// fleetRolling names the fleet-wide rollout in progress, for the
// conditions. Caller holds r.mu.
func (r *Reconciler) fleetRolling() string {
	s := r.ha.fleet
	if s == nil || s.Phase.Final() {
		return ""
	}
	msg := "rolling out " + s.Revision + " fleet-wide"
	if s.StageName != "" {
		msg += " (stage " + s.StageName + ")"
	}
	return msg
}

// fleetRollout is the fleet-wide rollout as GET /status shows it on any
// replica: the leader's own view while it runs it (with the gates), else
// the FleetState with the stage's nodes summed from the reports.
func (r *Reconciler) fleetRollout() *status.Rollout {
	r.mu.Lock()
	s, leading := r.ha.fleet, r.ha.leading
	r.mu.Unlock()
	if ro, ok := r.engine.Status(); ok && leading && (s == nil || ro.Hash == s.Hash) && !ro.Phase.Final() {
		return &ro
	}
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	reports, err := r.opts.Board.Reports(ctx)
	if err != nil {
		r.log.Warn("reading the replicas' reports failed", "error", err)
	}
	ro := rollout.StatusOf(*s, reports, time.Now(), r.opts.StaleAfter, r.opts.GoneAfter)
	return &ro
}

// Replica is the applier's last report (nil without high availability).
func (r *Reconciler) Replica() *rollout.ReplicaReport {
	if r.ha == nil {
		return nil
	}
	rep := r.ha.applier.Report()
	return &rep
}
