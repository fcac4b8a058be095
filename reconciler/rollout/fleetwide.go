package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// Liveness of the replicas' reports (docs/architecture.md section 4.1, high
// availability). A replica writes its report when it changes and at least
// every heartbeat. A report whose heartbeat is older than StaleAfter is
// stale: the replica may be dead or cut off, its nodes count as pending
// (a stage cannot pass on them, and fails at its ackTimeout). A report
// older than GoneAfter is forgotten: the replica is gone and its nodes
// have reconnected to the others.
const (
	DefaultHeartbeat  = 5 * time.Second
	DefaultStaleAfter = 3 * DefaultHeartbeat
	DefaultGoneAfter  = 12 * DefaultHeartbeat
	// MaxReportedNodes bounds the node names a report carries.
	MaxReportedNodes = 50
	// MaxNodeIDs bounds ReplicaReport.NodeIDs: about 40 bytes an id, a
	// report stays well under the API server's object size limit.
	MaxNodeIDs = 10000
)

// FleetWideOptions of the leader's reach.
type FleetWideOptions struct {
	Board Board
	// Changes signals a change of the Board (Board.Changes when nil; pass
	// one output of Fanout when the replica's applier reads the Board's
	// changes too).
	Changes <-chan struct{}
	// StaleAfter and GoneAfter: DefaultStaleAfter, DefaultGoneAfter when
	// zero.
	StaleAfter, GoneAfter time.Duration
	// Now is the clock reports' heartbeats are compared with (time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// FleetWide is the leader's reach under high availability: it writes the
// stage reached to the Board as a FleetState (every replica's applier
// serves it to its own nodes) and observes a stage by summing the
// replicas' reports. Writes go through one goroutine, latest state wins,
// so a slow or unreachable API server never delays a decision or NACK
// handling; a write refused with ErrFenced closes Fenced.
type FleetWide struct {
	o FleetWideOptions

	mu     sync.Mutex
	ctx    context.Context
	epoch  int64
	state  FleetState
	failed []status.FailedRevision
	moved  int

	pub       chan struct{}
	events    chan Event
	fenced    chan struct{}
	fenceOnce sync.Once
}

var _ Reach = (*FleetWide)(nil)

// NewFleetWide returns the reach; call Lead when the leadership starts.
func NewFleetWide(o FleetWideOptions) *FleetWide {
	if o.Changes == nil {
		o.Changes = o.Board.Changes()
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.GoneAfter <= 0 {
		o.GoneAfter = DefaultGoneAfter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &FleetWide{o: o, ctx: context.Background(), pub: make(chan struct{}, 1), events: make(chan Event, 1), fenced: make(chan struct{})}
}

// Lead starts the leadership of epoch: its writes carry the epoch, the
// failed revisions go on from prev (the FleetState on the Board, if any),
// and its writer runs until ctx ends.
func (f *FleetWide) Lead(ctx context.Context, epoch int64, prev *FleetState) {
	f.mu.Lock()
	f.ctx, f.epoch = ctx, epoch
	if prev != nil {
		f.failed = append([]status.FailedRevision(nil), prev.Failed...)
	}
	f.mu.Unlock()
	go f.write(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-f.o.Changes:
				if s, ok, err := f.o.Board.Rollout(ctx); err == nil && ok && s.Epoch > epoch {
					f.fence() // a newer leader wrote: stop before the next write
				}
				select {
				case f.events <- Event{Kind: Changed}:
				default:
				}
			}
		}
	}()
}

// Epoch of the leadership.
func (f *FleetWide) Epoch() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.epoch
}

// Fenced implements Reach: closed once a write was refused because a
// newer leader owns the rollout.
func (f *FleetWide) Fenced() <-chan struct{} { return f.fenced }

func (f *FleetWide) fence() {
	f.fenceOnce.Do(func() {
		f.o.Log.Error("rollout: fenced: a newer leader wrote the fleet-wide rollout; this replica stops deciding")
		close(f.fenced)
	})
}

func (f *FleetWide) publish() {
	select {
	case f.pub <- struct{}{}:
	default:
	}
}

// write writes the latest state until ctx ends; a write that fails for
// another reason than fencing is retried with the state then latest.
func (f *FleetWide) write(ctx context.Context) {
	var last *FleetState
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.fenced:
			return
		case <-f.pub:
		}
		for {
			f.mu.Lock()
			s := copyState(f.state)
			f.mu.Unlock()
			if last != nil && reflect.DeepEqual(*last, s) {
				break
			}
			err := f.o.Board.PutRollout(ctx, s)
			if errors.Is(err, ErrFenced) {
				f.fence()
				return
			}
			if err == nil {
				last = &s
				break
			}
			f.o.Log.Warn("rollout: writing the fleet-wide rollout failed; retrying", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// Begin implements Reach.
func (f *FleetWide) Begin(p Plan, stages []Stage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moved = 0
	f.state = FleetState{Epoch: f.epoch, Revision: p.Revision, Hash: p.Target.Hash(), Stages: Specs(stages),
		Phase: Progressing, FastPath: p.FastPath, StartedAt: f.o.Now().UTC(), Failed: f.failed}
	if p.LastGood != nil {
		f.state.LastGoodRevision, f.state.LastGoodHash = p.LastGood.Revision, p.LastGood.Hash()
	}
	if p.Resume != nil && !p.Resume.StartedAt.IsZero() {
		f.state.StartedAt = p.Resume.StartedAt
	}
}

// Save implements Reach: the progress goes to the Board.
func (f *FleetWide) Save(p Progress) {
	f.mu.Lock()
	f.state.Stage, f.state.StageName, f.state.Phase, f.state.BakeUntil = p.Stage, p.StageName, p.Phase, p.BakeUntil
	f.mu.Unlock()
	f.publish()
}

// Move implements Reach: the stage reached goes to the Board, and every
// replica moves its own nodes of stages 0..i.
func (f *FleetWide) Move(i int) {
	f.mu.Lock()
	if f.state.Stage != i {
		f.state.Stage, f.state.StageName = i, f.state.Stages[i].Name
	}
	f.mu.Unlock()
	f.publish()
}

// Events implements Reach: a change of the Board.
func (f *FleetWide) Events() <-chan Event { return f.events }

// Handle implements Reach: a report that changed may carry a NACK or a
// version skew, which fails the stage at once.
func (f *FleetWide) Handle(ev Event, i int, _ string) error {
	if ev.Kind != Changed {
		return nil
	}
	return f.Observe(i).Failure
}

// Observe implements Reach: the sum of the replicas' reports.
func (f *FleetWide) Observe(i int) Observation {
	f.mu.Lock()
	st, ctx := f.state, f.ctx
	f.mu.Unlock()
	reports, err := f.o.Board.Reports(ctx)
	if err != nil {
		return Observation{Waiting: "cannot read the replicas' reports: " + err.Error()}
	}
	o, moved := Sum(st, i, reports, f.o.Now(), f.o.StaleAfter, f.o.GoneAfter)
	f.mu.Lock()
	f.moved = moved
	f.mu.Unlock()
	return o
}

// Moved implements Reach.
func (f *FleetWide) Moved() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.moved
}

// End implements Reach: the outcome goes to the Board, and every replica
// serves it (the target to every node, or the last good). A stopping
// leader writes nothing, so the next one resumes; a fenced one neither.
func (f *FleetWide) End(res Result, stopped bool) {
	select {
	case <-f.fenced:
		return
	default:
	}
	if stopped {
		return
	}
	f.mu.Lock()
	f.state.Phase, f.state.Reason, f.state.Message, f.state.BakeUntil = res.Phase, res.Reason, res.Message, nil
	if res.Phase == Failed || res.Phase == Aborted {
		f.failed = append(f.failed, status.FailedRevision{Revision: f.state.Revision, Hash: f.state.Hash,
			Reason: res.Reason, Message: res.Message, At: f.o.Now().UTC()})
		if n := len(f.failed); n > 20 {
			f.failed = f.failed[n-20:]
		}
		f.state.Failed = append([]status.FailedRevision(nil), f.failed...)
	}
	f.mu.Unlock()
	f.publish()
}

// Supersede ends the rollout prev a previous leader left in progress,
// when this leader will not resume it: every replica serves its last good.
func (f *FleetWide) Supersede(prev FleetState) {
	f.mu.Lock()
	f.state = copyState(prev)
	f.state.Epoch, f.state.Phase, f.state.BakeUntil = f.epoch, Superseded, nil
	f.state.Message = "superseded: the new leader's build of the head is another revision"
	f.state.Failed = append([]status.FailedRevision(nil), f.failed...)
	f.mu.Unlock()
	f.publish()
}

// State is the FleetState this leader last published.
func (f *FleetWide) State() FleetState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return copyState(f.state)
}

// Sum is stage i of st as the replicas' reports tell it, at now: a stage
// passes when every live replica reports 0 pending at st's epoch,
// revision, hash and stage i. A NACK of the target, or a replica that
// rendered the revision to another hash (version skew), is a failure; a
// stale report's nodes count as pending, but for those a live replica
// reports (they reconnected there; a stale report of 0 nodes holds
// nothing); a live replica that has not
// applied the stage (or not built the revision) makes the stage wait.
// moved is how many nodes the replicas moved to the target.
func Sum(st FleetState, i int, reports []ReplicaReport, now time.Time, staleAfter, goneAfter time.Duration) (o Observation, moved int) {
	stage := st.StageName
	if i >= 0 && i < len(st.Stages) {
		stage = st.Stages[i].Name
	}
	var waiting []string
	// The nodes live replicas report: a stale report's node that
	// reconnected to one of them is counted there, not twice.
	live := map[string]bool{}
	for _, r := range reports {
		if now.Sub(r.Heartbeat) <= staleAfter {
			for _, id := range r.NodeIDs {
				live[id] = true
			}
		}
	}
	for _, r := range reports {
		age := now.Sub(r.Heartbeat)
		if age > goneAfter {
			continue
		}
		ofTarget := r.Revision == st.Revision && r.Epoch <= st.Epoch
		if ofTarget && r.RenderedHash != "" && r.RenderedHash != st.Hash && o.Failure == nil {
			o.Failure = &failure{reason: status.ReasonVersionSkew, msg: fmt.Sprintf(
				"stage %s: replica %s rendered %s to %s, the leader to %s (version skew: another gitxds version, or other inputs); its nodes were not moved",
				stage, r.Replica, st.Revision, r.RenderedHash, st.Hash)}
		}
		if ofTarget && r.Hash == st.Hash && len(r.NACKs) > 0 && o.Failure == nil {
			n := r.NACKs[0]
			o.Failure = &failure{reason: status.ReasonNACK, msg: fmt.Sprintf("stage %s: node %s (replica %s) rejected %s (version %s): %s",
				stage, n.Node, r.Replica, xdsres.ShortType(n.TypeURL), n.Version, n.Error)}
		}
		ghosts := r.Connected
		if age > staleAfter && len(r.NodeIDs) > 0 {
			ghosts = 0
			for _, id := range r.NodeIDs {
				if !live[id] {
					ghosts++
				}
			}
		}
		switch {
		case age > staleAfter && ghosts == 0:
			// A replica killed and not restarted, whose nodes went
			// elsewhere (or that had none): nothing of it can be pending,
			// and waiting for it would hold a resumed stage until the
			// report is gone.
			continue
		case age > staleAfter:
			o.Pending += ghosts
			waiting = append(waiting, fmt.Sprintf("replica %s's report is stale (last heartbeat %s ago): %d of its node(s), reported by no live replica, count as pending",
				r.Replica, age.Round(time.Second), ghosts))
			continue
		case r.Epoch != st.Epoch || r.Revision != st.Revision || r.Hash != st.Hash || r.Stage != i:
			waiting = append(waiting, fmt.Sprintf("replica %s has not applied stage %s yet", r.Replica, stage))
			continue
		case r.RenderedHash != st.Hash:
			why := "has not built " + st.Revision + " yet"
			switch {
			case r.RenderedHash != "":
				why = "rendered " + st.Revision + " to another hash (version skew)"
			case r.RenderError != "":
				why = "cannot build " + st.Revision + ": " + r.RenderError
			}
			waiting = append(waiting, fmt.Sprintf("replica %s %s", r.Replica, why))
			continue
		}
		o.InStage += r.InStage
		o.Acked += r.StageAcked
		o.Pending += r.Pending
		o.PendingNodes = append(o.PendingNodes, r.PendingNodes...)
		o.Nodes = append(o.Nodes, r.StageNodes...)
		moved += r.Moved
	}
	sort.Strings(o.Nodes)
	sort.Strings(o.PendingNodes)
	o.Waiting = strings.Join(waiting, "; ")
	return o, moved
}

// Fanout copies every signal of in to n outputs (coalesced, never
// blocking) until ctx ends: the leader's reach and the replica's applier
// both follow one Board's changes.
func Fanout(ctx context.Context, in <-chan struct{}, n int) []<-chan struct{} {
	outs := make([]chan struct{}, n)
	ro := make([]<-chan struct{}, n)
	for i := range outs {
		outs[i] = make(chan struct{}, 1)
		ro[i] = outs[i]
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-in:
				for _, o := range outs {
					select {
					case o <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	return ro
}
