package rollout

import (
	"context"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"time"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// Sets gives a replica the Set a revision builds to. The reconciler
// implements it: it renders the revision from Git itself (its pipeline is
// deterministic), and keeps the last few.
type Sets interface {
	// Set may take as long as a build: the applier calls it in its own
	// goroutine, never on the path that handles NACKs.
	Set(ctx context.Context, revision string) (*snapshot.Set, error)
}

// ReplicaOptions of an applier.
type ReplicaOptions struct {
	// Name of the replica, in its report.
	Name  string
	Board Board
	// Changes signals a change of the Board (Board.Changes when nil).
	Changes <-chan struct{}
	// Fleet is this replica's xDS server.
	Fleet Fleet
	Sets  Sets
	// OnState is told, from the applier's goroutine, each FleetState it
	// applies with the Sets it serves from it (target nil until built or
	// on version skew; lastGood nil when unknown). It must not block.
	OnState func(s FleetState, target, lastGood *snapshot.Set)
	// Heartbeat: the report is written at least this often
	// (DefaultHeartbeat when zero).
	Heartbeat time.Duration
	// Coalesce: ACKs and connections are reported at most this often
	// (100ms when zero); a NACK at once.
	Coalesce time.Duration
	Now      func() time.Time
	Log      *slog.Logger
}

// Replica applies the fleet-wide rollout to this replica's nodes: every
// replica runs one, the leader too. It follows the Board's FleetState
// (ignoring one of a lower epoch than it saw), and serves its nodes:
// while the rollout is Progressing or Paused, a node whose stage (from
// its id and labels only) is at most the stage reached gets the target,
// the others the last good; every node gets the target once it
// Succeeded, the last good once it Failed, was Aborted, Superseded or
// Interrupted. Its report says what its nodes did with it.
type Replica struct {
	o ReplicaOptions

	// Owned by the Run goroutine.
	ctx      context.Context
	state    *FleetState
	maxEpoch int64
	stages   []Stage
	sets     map[string]*snapshot.Set // by revision
	errs     map[string]string        // by revision: why it cannot be built
	building map[string]bool
	def      *snapshot.Set   // what nodes without an assignment are served
	assigned map[string]bool // nodes served the target
	// assignedTo is the hash of the Set the assigned nodes are served.
	assignedTo string
	nacks      map[string]NodeNACK
	built      chan builtSet

	mu   sync.Mutex
	last FleetState
	rep  ReplicaReport
	pub  chan struct{}
}

type builtSet struct {
	revision string
	set      *snapshot.Set
	err      error
}

// NewReplica returns an applier; Run runs it.
func NewReplica(o ReplicaOptions) *Replica {
	if o.Changes == nil {
		o.Changes = o.Board.Changes()
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Coalesce <= 0 {
		o.Coalesce = 100 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Replica{o: o, sets: map[string]*snapshot.Set{}, errs: map[string]string{}, building: map[string]bool{},
		assigned: map[string]bool{}, nacks: map[string]NodeNACK{}, built: make(chan builtSet, 4), pub: make(chan struct{}, 1)}
}

// State is the FleetState this replica last applied; ok is false before
// the first.
func (r *Replica) State() (FleetState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return copyState(r.last), r.last.Revision != ""
}

// Run applies the FleetState and reports until ctx ends.
func (r *Replica) Run(ctx context.Context) {
	r.ctx = ctx
	events, unsubscribe := r.o.Fleet.Subscribe()
	defer unsubscribe()
	written := make(chan struct{})
	go func() { defer close(written); r.write(ctx) }()
	beat := time.NewTicker(r.o.Heartbeat)
	defer beat.Stop()
	var coalesce <-chan time.Time
	r.refresh(ctx)
	r.report(true)
	for {
		select {
		case <-ctx.Done():
			<-written
			r.leave()
			return
		case <-r.o.Changes:
			if r.refresh(ctx) {
				r.report(true)
			}
		case b := <-r.built:
			delete(r.building, b.revision)
			if b.err != nil {
				r.errs[b.revision] = b.err.Error()
				r.o.Log.Warn("rollout: this replica cannot build the fleet-wide revision", "revision", b.revision, "error", b.err)
			} else {
				r.sets[b.revision] = b.set
				delete(r.errs, b.revision)
			}
			r.apply(ctx)
			r.report(true)
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch r.handle(ev) {
			case reportNow:
				r.report(true)
			case reportSoon:
				if coalesce == nil {
					coalesce = time.After(r.o.Coalesce)
				}
			}
		case <-coalesce:
			coalesce = nil
			r.report(false)
		case <-beat.C:
			if len(r.errs) > 0 {
				// A build that failed (Git unreachable) is tried again.
				clear(r.errs)
				r.apply(ctx)
			}
			r.report(true)
		}
	}
}

// refresh reads the FleetState and applies it; it says whether it changed.
func (r *Replica) refresh(ctx context.Context) bool {
	s, ok, err := r.o.Board.Rollout(ctx)
	if err != nil {
		r.o.Log.Warn("rollout: reading the fleet-wide rollout failed", "error", err)
		return false
	}
	if !ok || (r.state != nil && reflect.DeepEqual(*r.state, s)) {
		return false
	}
	if s.Epoch < r.maxEpoch {
		// A leader fenced since wrote it (or a cache lags): ignored.
		r.o.Log.Warn("rollout: ignoring a fleet-wide rollout of an older leadership", "epoch", s.Epoch, "seen", r.maxEpoch)
		return false
	}
	stages, err := StagesOf(s.Stages)
	if err != nil {
		r.o.Log.Error("rollout: the fleet-wide rollout's stages do not compile; ignoring it", "error", err)
		return false
	}
	if r.state == nil || r.state.Hash != s.Hash || r.state.Revision != s.Revision {
		clear(r.nacks)
	}
	r.maxEpoch, r.state, r.stages = s.Epoch, &s, stages
	r.apply(ctx)
	return true
}

// set is the Set of revision when this replica has built it to hash; it
// starts the build otherwise.
func (r *Replica) set(ctx context.Context, revision, hash string) *snapshot.Set {
	if revision == "" {
		return nil
	}
	if s := r.sets[revision]; s != nil {
		if s.Hash() == hash {
			return s
		}
		return nil
	}
	if !r.building[revision] && r.errs[revision] == "" {
		r.building[revision] = true
		go func() {
			s, err := r.o.Sets.Set(ctx, revision)
			select {
			case r.built <- builtSet{revision: revision, set: s, err: err}:
			case <-ctx.Done():
			}
		}()
	}
	return nil
}

// target is the target Set when this replica built it to the leader's
// hash; skew says it built another.
func (r *Replica) target(ctx context.Context) (set *snapshot.Set, skew bool) {
	s := r.state
	set = r.set(ctx, s.Revision, s.Hash)
	if b := r.sets[s.Revision]; set == nil && b != nil {
		return nil, true
	}
	return set, false
}

func (r *Replica) stageOf(n Node) int {
	if r.state.FastPath != "" {
		return 0
	}
	return StageOf(r.stages, n.ID, n.Labels)
}

// apply serves the FleetState to this replica's nodes.
func (r *Replica) apply(ctx context.Context) {
	s := r.state
	if s == nil {
		return
	}
	target, skew := r.target(ctx)
	lastGood := r.set(ctx, s.LastGoodRevision, s.LastGoodHash)
	if skew {
		r.o.Log.Error("rollout: version skew: this replica renders the fleet-wide revision to another hash; its nodes are not moved",
			"revision", s.Revision, "leader", s.Hash, "here", r.sets[s.Revision].Hash())
	}
	// Nodes served a previous target go back to the default first.
	if len(r.assigned) > 0 && (target == nil || r.assignedTo != target.Hash()) {
		r.unassignAll()
	}
	switch s.Phase {
	case Progressing, Paused:
		r.setDefault(lastGood)
		if target == nil {
			break
		}
		var ids []string
		for _, n := range r.o.Fleet.Nodes() {
			if !r.assigned[n.ID] && r.stageOf(n) <= s.Stage {
				ids = append(ids, n.ID)
			}
		}
		if len(ids) > 0 {
			for _, id := range ids {
				r.assigned[id] = true
			}
			r.assignedTo = target.Hash()
			r.o.Fleet.Assign(ids, target)
		}
	case Succeeded:
		if target != nil {
			r.setDefault(target)
			r.unassignAll()
		} else {
			r.setDefault(lastGood)
		}
	default: // Failed, Aborted, Superseded, Interrupted
		r.setDefault(lastGood)
		r.unassignAll()
	}
	r.mu.Lock()
	r.last = copyState(*s)
	r.mu.Unlock()
	if r.o.OnState != nil {
		r.o.OnState(copyState(*s), target, lastGood)
	}
}

func (r *Replica) setDefault(set *snapshot.Set) {
	if set == nil || set == r.def {
		return
	}
	r.def = set
	r.o.Fleet.SetDefault(set)
}

func (r *Replica) unassignAll() {
	if len(r.assigned) == 0 {
		return
	}
	r.o.Fleet.Unassign(keys(r.assigned))
	clear(r.assigned)
}

type reportWhen int

const (
	reportNot reportWhen = iota
	reportSoon
	reportNow
)

// handle reacts to an event of this replica's xDS server.
func (r *Replica) handle(ev Event) reportWhen {
	s := r.state
	if s == nil {
		return reportNot
	}
	switch ev.Kind {
	case NACK:
		if r.assigned[ev.NodeID] {
			if _, ok := r.nacks[ev.NodeID]; !ok {
				r.nacks[ev.NodeID] = NodeNACK{Node: ev.NodeID, TypeURL: ev.TypeURL, Version: ev.Version, Error: ev.Error}
			}
			return reportNow
		}
	case Connect:
		// A node that (re)connects here gets what its stage has reached,
		// whichever replica it was on before.
		if s.Phase == Progressing || s.Phase == Paused {
			if target, _ := r.target(r.ctx); target != nil {
				r.apply(r.ctx)
			}
		}
		return reportSoon
	case ACK, Disconnect:
		return reportSoon
	}
	return reportNot
}

// report computes this replica's report and hands it to the writer: now
// (a NACK, a new FleetState, a heartbeat) or when it changed.
func (r *Replica) report(force bool) {
	rep := ReplicaReport{Replica: r.o.Name}
	if s := r.state; s != nil {
		rep.Epoch, rep.Revision, rep.Hash, rep.Stage = s.Epoch, s.Revision, s.Hash, s.Stage
		if b := r.sets[s.Revision]; b != nil {
			rep.RenderedHash = b.Hash()
		}
		rep.RenderError = r.errs[s.Revision]
	}
	if r.def != nil {
		rep.ServedHash = r.def.Hash()
	}
	target := r.sets[rep.Revision]
	nodes := r.o.Fleet.Nodes()
	for _, n := range nodes {
		rep.Connected++
		if len(nodes) <= MaxNodeIDs {
			rep.NodeIDs = append(rep.NodeIDs, n.ID)
		}
		if r.state == nil {
			continue
		}
		inStage := r.stageOf(n) == r.state.Stage
		if inStage {
			rep.InStage++
			if len(rep.StageNodes) < MaxReportedNodes {
				rep.StageNodes = append(rep.StageNodes, n.ID)
			}
		}
		if !r.assigned[n.ID] || target == nil {
			continue
		}
		rep.Moved++
		if why, ok := n.Rejected[target.Hash()]; ok {
			if _, seen := r.nacks[n.ID]; !seen {
				r.nacks[n.ID] = NodeNACK{Node: n.ID, Error: why}
			}
		}
		if n.HasAcked(target) {
			rep.Acked++
			if inStage {
				rep.StageAcked++
			}
			continue
		}
		rep.Pending++
		if len(rep.PendingNodes) < 5 {
			rep.PendingNodes = append(rep.PendingNodes, n.ID)
		}
	}
	for _, n := range r.nacks {
		rep.NACKs = append(rep.NACKs, n)
	}
	sort.Slice(rep.NACKs, func(i, j int) bool { return rep.NACKs[i].Node < rep.NACKs[j].Node })
	if len(rep.NACKs) > 5 {
		rep.NACKs = rep.NACKs[:5]
	}
	sort.Strings(rep.StageNodes)
	sort.Strings(rep.PendingNodes)
	sort.Strings(rep.NodeIDs)
	r.mu.Lock()
	prev := r.rep
	prev.Heartbeat = time.Time{}
	changed := !reflect.DeepEqual(prev, rep)
	if changed || force {
		rep.Heartbeat = r.o.Now().UTC()
		r.rep = rep
	}
	r.mu.Unlock()
	if changed || force {
		select {
		case r.pub <- struct{}{}:
		default:
		}
	}
}

// leave writes the report of a replica that stops: no node, and a
// heartbeat at the zero time, so that the leader forgets it at once
// rather than wait for it to go stale (its nodes reconnect elsewhere).
func (r *Replica) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.o.Board.PutReport(ctx, ReplicaReport{Replica: r.o.Name}); err != nil {
		r.o.Log.Warn("rollout: writing this replica's last report failed; the leader forgets it once it is gone", "error", err)
	}
}

// Report is the report this replica last computed.
func (r *Replica) Report() ReplicaReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rep
}

// write writes the latest report until ctx ends (latest wins: a slow
// Board never holds up the applier).
func (r *Replica) write(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.pub:
		}
		r.mu.Lock()
		rep := r.rep
		r.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if err := r.o.Board.PutReport(ctx, rep); err != nil && ctx.Err() == nil {
			r.o.Log.Warn("rollout: writing this replica's report failed; retried at the next change or heartbeat", "error", err)
		}
	}
}
