package rollout

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
)

// fakeReplica follows the Board's FleetState and reports what report
// says of it (nothing when report returns false).
func fakeReplica(ctx context.Context, b Board, report func(FleetState) (ReplicaReport, bool)) {
	go func() {
		var last ReplicaReport
		for {
			if s, ok, _ := b.Rollout(ctx); ok {
				if rep, ok := report(s); ok {
					rep.Heartbeat = time.Time{}
					if !reflect.DeepEqual(rep, last) {
						last = rep
						if rep.Heartbeat.IsZero() {
							rep.Heartbeat = time.Now()
						}
						_ = b.PutReport(ctx, rep)
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-b.Changes():
			}
		}
	}()
}

// at is a report of s's stage by replica name: connected nodes, of which
// inStage in the stage, pending not ACKed yet.
func at(name string, s FleetState, connected, inStage, pending int) ReplicaReport {
	return ReplicaReport{Replica: name, Epoch: s.Epoch, Revision: s.Revision, Hash: s.Hash, Stage: s.Stage,
		RenderedHash: s.Hash, Connected: connected, InStage: inStage, Moved: connected, Acked: connected - pending,
		Pending: pending, StageAcked: inStage - min(pending, inStage)}
}

type fleetRun struct {
	t     *testing.T
	board *MemoryBoard
	fw    *FleetWide
	e     *Engine
	done  chan Result
	ctx   context.Context
}

// leaderOf starts a leader at epoch on board.
func leaderOf(t *testing.T, board *MemoryBoard, epoch int64, prev *FleetState, o FleetWideOptions) *fleetRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	o.Board, o.Log = board.Client(), quiet
	fw := NewFleetWide(o)
	fw.Lead(ctx, epoch, prev)
	done := make(chan Result, 4)
	e := NewEngine(fw, Options{Log: quiet, OnDone: func(r Result) { done <- r },
		NewQuerier: func(string) (Querier, error) { return fakeQuerier{0}, nil }})
	return &fleetRun{t: t, board: board, fw: fw, e: e, done: done, ctx: ctx}
}

func (f *fleetRun) result() Result {
	f.t.Helper()
	select {
	case r := <-f.done:
		return r
	case <-time.After(20 * time.Second):
		f.t.Fatal("rollout did not finish")
	}
	return Result{}
}

// state waits until the board holds a FleetState cond accepts.
func (f *fleetRun) state(what string, cond func(FleetState) bool) FleetState {
	f.t.Helper()
	c := f.board.Client()
	deadline := time.After(20 * time.Second)
	for {
		if s, ok, _ := c.Rollout(f.ctx); ok && cond(s) {
			return s
		}
		select {
		case <-c.Changes():
		case <-deadline:
			f.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A stage passes only when every replica reports 0 pending at the current
// stage: the canary node is on replica b; until it ACKs, the leader does
// not move stage "all", even though replica a's nodes are all done.
func TestFleetWideStagePassesAtZeroPending(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	board := NewMemoryBoard()
	f := leaderOf(t, board, 1, nil, FleetWideOptions{})
	release := make(chan struct{})
	var mu sync.Mutex
	movedEarly := false
	fakeReplica(f.ctx, board.Client(), func(s FleetState) (ReplicaReport, bool) {
		return at("a", s, 2, 0, 0), true
	})
	fakeReplica(f.ctx, board.Client(), func(s FleetState) (ReplicaReport, bool) {
		select {
		case <-release:
			return at("b", s, 1, 1, 0), true
		default:
			mu.Lock()
			movedEarly = movedEarly || s.Stage > 0
			mu.Unlock()
			return at("b", s, 1, 1, 1), true
		}
	})
	pol := canaryPolicy(t, "0s")
	pol.AckTimeout = time.Minute
	f.e.Start(Plan{Revision: "r2", Target: next, LastGood: good, Policy: pol})
	waiting := f.state("the canary stage written", func(s FleetState) bool { return s.Revision == "r2" && s.Stage == 0 })
	if waiting.Phase != Progressing || waiting.LastGoodHash != good.Hash() || len(waiting.Stages) != 2 || waiting.Stages[0].Selector != "rollout-group=canary" {
		t.Fatalf("FleetState %+v", waiting)
	}
	// The leader observes b pending (the status says so) before b ACKs.
	deadline := time.Now().Add(10 * time.Second)
	for st, _ := f.e.Status(); st.Stages[0].NodeCount != 1 && time.Now().Before(deadline); st, _ = f.e.Status() {
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	_ = board.Client().PutReport(f.ctx, at("a", f.fw.State(), 2, 0, 0)) // wakes b
	res := f.result()
	if res.Phase != Succeeded {
		t.Fatalf("%s: %s", res.Phase, res.Message)
	}
	mu.Lock()
	defer mu.Unlock()
	if movedEarly {
		t.Fatal("stage all was written while the canary on replica b was pending")
	}
	final := f.state("Succeeded written", func(s FleetState) bool { return s.Phase == Succeeded })
	if final.Stage != 1 || final.Epoch != 1 {
		t.Fatalf("final %+v", final)
	}
	if st := res.Status.Stages[0]; st.NodeCount != 1 || st.Acked != 1 {
		t.Fatalf("canary stage status %+v: want its node counted from b's report", st)
	}
}

// A NACK on another replica fails the stage during its bake, at the next
// observe, and the FleetState says Failed with the revision recorded.
func TestFleetWideNACKOnAnotherReplicaFails(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	board := NewMemoryBoard()
	f := leaderOf(t, board, 1, nil, FleetWideOptions{})
	nack := make(chan struct{})
	fakeReplica(f.ctx, board.Client(), func(s FleetState) (ReplicaReport, bool) {
		r := at("b", s, 1, 1, 0)
		select {
		case <-nack:
			r.NACKs = []NodeNACK{{Node: "canary-1", TypeURL: "type.googleapis.com/envoy.config.cluster.v3.Cluster", Version: "v2", Error: "bad config"}}
		default:
		}
		return r, true
	})
	f.e.Start(Plan{Revision: "r2", Target: next, LastGood: good, Policy: canaryPolicy(t, "1h")})
	f.state("the canary baking", func(s FleetState) bool { return s.BakeUntil != nil })
	close(nack)
	// The fake replica reports at its next wake-up: the leader's own
	// write of the bake woke it already, so nudge it with a report of a.
	_ = board.Client().PutReport(f.ctx, at("a", f.fw.State(), 0, 0, 0))
	res := f.result()
	if res.Phase != Failed || res.Reason != status.ReasonNACK || !strings.Contains(res.Message, "canary-1 (replica b)") {
		t.Fatalf("%s/%s: %s", res.Phase, res.Reason, res.Message)
	}
	final := f.state("Failed written", func(s FleetState) bool { return s.Phase == Failed })
	if len(final.Failed) != 1 || final.Failed[0].Revision != "r2" || final.Failed[0].Reason != status.ReasonNACK {
		t.Fatalf("failed %+v", final.Failed)
	}
}

// A stale report's nodes count as pending: the stage cannot pass and fails
// at its ackTimeout, naming the replica.
func TestFleetWideStaleReportBlocks(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	board := NewMemoryBoard()
	f := leaderOf(t, board, 1, nil, FleetWideOptions{StaleAfter: time.Minute, GoneAfter: time.Hour})
	fakeReplica(f.ctx, board.Client(), func(s FleetState) (ReplicaReport, bool) { return at("a", s, 1, 1, 0), true })
	old := at("c", FleetState{Epoch: 1, Revision: "r1", Hash: good.Hash()}, 3, 0, 0)
	old.Heartbeat = time.Now().Add(-2 * time.Minute)
	if err := board.Client().PutReport(f.ctx, old); err != nil {
		t.Fatal(err)
	}
	res := func() Result {
		f.e.Start(Plan{Revision: "r2", Target: next, LastGood: good, Policy: canaryPolicy(t, "0s")})
		return f.result()
	}()
	if res.Phase != Failed || res.Reason != status.ReasonAckTimeout || !strings.Contains(res.Message, "replica c's report is stale") {
		t.Fatalf("%s/%s: %s", res.Phase, res.Reason, res.Message)
	}
	t.Log(res.Message)
}

// A replica that renders the revision to another hash fails the rollout
// (version skew).
func TestFleetWideVersionSkewFails(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	board := NewMemoryBoard()
	f := leaderOf(t, board, 1, nil, FleetWideOptions{})
	fakeReplica(f.ctx, board.Client(), func(s FleetState) (ReplicaReport, bool) {
		r := at("b", s, 1, 1, 1)
		r.RenderedHash, r.Moved, r.Pending = "0123456789abcdef", 0, 0
		return r, true
	})
	pol := canaryPolicy(t, "0s")
	pol.AckTimeout = time.Minute
	f.e.Start(Plan{Revision: "r2", Target: next, LastGood: good, Policy: pol})
	res := f.result()
	if res.Phase != Failed || res.Reason != status.ReasonVersionSkew || !strings.Contains(res.Message, "replica b rendered r2 to 0123456789abcdef") {
		t.Fatalf("%s/%s: %s", res.Phase, res.Reason, res.Message)
	}
}

// A canary stage no replica has a node of waits up to ackTimeout, then
// fails naming its selector.
func TestFleetWideMinNodesFailsNamingSelector(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	board := NewMemoryBoard()
	f := leaderOf(t, board, 1, nil, FleetWideOptions{})
	for _, name := range []string{"a", "b", "c"} {
		fakeReplica(f.ctx, board.Client(), func(s FleetState) (ReplicaReport, bool) { return at(name, s, 4, 0, 0), true })
	}
	f.e.Start(Plan{Revision: "r2", Target: next, LastGood: good, Policy: canaryPolicy(t, "0s")})
	res := f.result()
	if res.Phase != Failed || res.Reason != status.ReasonTooFewNodes || !strings.Contains(res.Message, "nodeSelector rollout-group=canary selected 0 node(s)") {
		t.Fatalf("%s/%s: %s", res.Phase, res.Reason, res.Message)
	}
}

// A new leader resumes a Progressing rollout at its stage with the rest of
// its bake: the canary stage (bake 1h) ends at the BakeUntil the previous
// leader wrote, and the next stage follows.
func TestFleetWideResumeWithRemainingBake(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	board := NewMemoryBoard()
	pol := canaryPolicy(t, "1h")
	until := time.Now().Add(200 * time.Millisecond).UTC()
	started := time.Now().Add(-time.Hour).UTC()
	prev := FleetState{Epoch: 3, Revision: "r2", Hash: next.Hash(), LastGoodRevision: "r1", LastGoodHash: good.Hash(),
		Stages: Specs(pol.Stages), Stage: 0, StageName: "canary", Phase: Progressing, BakeUntil: &until, StartedAt: started,
		Failed: []status.FailedRevision{{Revision: "r0", Reason: status.ReasonNACK}}}
	if err := board.Client().PutRollout(context.Background(), prev); err != nil {
		t.Fatal(err)
	}
	f := leaderOf(t, board, 4, &prev, FleetWideOptions{})
	fakeReplica(f.ctx, board.Client(), func(s FleetState) (ReplicaReport, bool) { return at("a", s, 2, 1, 0), true })
	f.e.Start(Plan{Revision: "r2", Target: next, LastGood: good, Policy: pol, Resume: &prev})
	res := f.result()
	if res.Phase != Succeeded {
		t.Fatalf("%s: %s", res.Phase, res.Message)
	}
	final := f.state("Succeeded written", func(s FleetState) bool { return s.Phase == Succeeded })
	if final.Epoch != 4 || !final.StartedAt.Equal(started) || len(final.Failed) != 1 {
		t.Fatalf("final %+v", final)
	}
}

// A leader fenced by a newer one stops deciding at once and writes
// nothing more.
func TestFleetWideFencedStops(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	board := NewMemoryBoard()
	f := leaderOf(t, board, 1, nil, FleetWideOptions{})
	fakeReplica(f.ctx, board.Client(), func(s FleetState) (ReplicaReport, bool) { return at("a", s, 1, 1, 1), true }) // never ACKs
	pol := canaryPolicy(t, "0s")
	pol.AckTimeout = time.Hour
	f.e.Start(Plan{Revision: "r2", Target: next, LastGood: good, Policy: pol})
	f.state("the canary stage written", func(s FleetState) bool { return s.Revision == "r2" })
	newer := board.Client()
	cur, _, _ := newer.Rollout(f.ctx)
	cur.Epoch, cur.Phase, cur.Message = 2, Superseded, "the new leader's"
	if err := newer.PutRollout(f.ctx, cur); err != nil {
		t.Fatal(err)
	}
	res := f.result()
	if res.Phase != Superseded || res.Reason != ReasonFenced {
		t.Fatalf("%s/%s: %s", res.Phase, res.Reason, res.Message)
	}
	<-f.fw.Fenced()
	if s, _, _ := newer.Rollout(f.ctx); s.Epoch != 2 || s.Message != "the new leader's" {
		t.Fatalf("the fenced leader wrote after the new one: %+v", s)
	}
	// Its writes are refused by the Board too.
	if err := f.fw.o.Board.PutRollout(f.ctx, FleetState{Epoch: 1}); err != ErrFenced {
		t.Fatalf("write of epoch 1 over epoch 2: %v", err)
	}
}

// Sum's rules, one report at a time: what passes, what waits, what fails.
func TestSumLiveness(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := FleetState{Epoch: 3, Revision: "r2", Hash: "h2", Stages: []StageSpec{{Name: "canary"}, {Name: "all"}}, Stage: 0}
	cur := func(mod func(*ReplicaReport)) ReplicaReport {
		r := ReplicaReport{Replica: "b", Epoch: 3, Revision: "r2", Hash: "h2", Stage: 0, RenderedHash: "h2",
			Connected: 4, InStage: 1, StageAcked: 1, Moved: 1, Acked: 1, Heartbeat: now.Add(-time.Second)}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	for _, c := range []struct {
		name    string
		rep     ReplicaReport
		pending int
		waiting string // a substring of Waiting, "" for none
		failure string // the reason, "" for none
	}{
		{"current, all ACKed", cur(nil), 0, "", ""},
		{"current, one pending", cur(func(r *ReplicaReport) { r.Pending, r.StageAcked = 1, 0 }), 1, "", ""},
		{"stale: its connected nodes pending", cur(func(r *ReplicaReport) { r.Heartbeat = now.Add(-20 * time.Second) }), 4, "stale", ""},
		{"stale with 0 nodes: nothing pending, nothing to wait for", cur(func(r *ReplicaReport) {
			r.Heartbeat, r.Connected, r.InStage, r.StageAcked, r.Moved, r.Acked = now.Add(-20*time.Second), 0, 0, 0, 0, 0
		}), 0, "", ""},
		{"stale with 0 nodes at an older epoch", ReplicaReport{Replica: "b", Epoch: 2, Revision: "r2", Hash: "h2", RenderedHash: "h2",
			Heartbeat: now.Add(-20 * time.Second)}, 0, "", ""},
		{"gone: forgotten", cur(func(r *ReplicaReport) { r.Heartbeat = now.Add(-2 * time.Minute) }), 0, "", ""},
		{"a stopped replica's last report", ReplicaReport{Replica: "b"}, 0, "", ""},
		{"previous stage", cur(func(r *ReplicaReport) { r.Stage = 1 }), 0, "has not applied stage canary", ""},
		{"older epoch", cur(func(r *ReplicaReport) { r.Epoch = 2 }), 0, "has not applied", ""},
		{"not built yet", cur(func(r *ReplicaReport) { r.RenderedHash = "" }), 0, "has not built r2", ""},
		{"cannot build", cur(func(r *ReplicaReport) { r.RenderedHash, r.RenderError = "", "git: timeout" }), 0, "cannot build r2: git: timeout", ""},
		{"skew", cur(func(r *ReplicaReport) { r.RenderedHash = "h9" }), 0, "version skew", status.ReasonVersionSkew},
		{"NACK", cur(func(r *ReplicaReport) { r.NACKs = []NodeNACK{{Node: "n1", Error: "bad"}} }), 0, "", status.ReasonNACK},
		{"NACK at the previous stage, older epoch", cur(func(r *ReplicaReport) {
			r.Epoch, r.Stage, r.NACKs = 2, 1, []NodeNACK{{Node: "n1", Error: "bad"}}
		}), 0, "has not applied", status.ReasonNACK},
		{"NACK of another revision", cur(func(r *ReplicaReport) {
			r.Revision, r.Hash, r.NACKs = "r1", "h1", []NodeNACK{{Node: "n1", Error: "bad"}}
		}), 0, "has not applied", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, _ := Sum(st, 0, []ReplicaReport{c.rep}, now, DefaultStaleAfter, DefaultGoneAfter)
			if o.Pending != c.pending {
				t.Errorf("pending %d, want %d", o.Pending, c.pending)
			}
			if (c.waiting == "") != (o.Waiting == "") || !strings.Contains(o.Waiting, c.waiting) {
				t.Errorf("waiting %q, want %q", o.Waiting, c.waiting)
			}
			reason := ""
			if f, ok := o.Failure.(*failure); ok {
				reason = f.reason
			}
			if reason != c.failure {
				t.Errorf("failure %v, want %q", o.Failure, c.failure)
			}
		})
	}
}

// TestSumStaleNodesReconnected: a stale report's nodes that a live
// replica reports (they reconnected there) are not pending twice; those
// no live replica reports are.
func TestSumStaleNodesReconnected(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := FleetState{Epoch: 3, Revision: "r2", Hash: "h2", Stages: []StageSpec{{Name: "canary"}, {Name: "all"}}, Stage: 0}
	dead := ReplicaReport{Replica: "a", Epoch: 3, Revision: "r2", Hash: "h2", RenderedHash: "h2",
		Connected: 3, NodeIDs: []string{"n1", "n2", "n3"}, Heartbeat: now.Add(-20 * time.Second)}
	alive := func(ids ...string) ReplicaReport {
		return ReplicaReport{Replica: "b", Epoch: 3, Revision: "r2", Hash: "h2", RenderedHash: "h2",
			Connected: len(ids), NodeIDs: ids, Heartbeat: now.Add(-time.Second)}
	}
	for _, c := range []struct {
		name    string
		live    ReplicaReport
		pending int
	}{
		{"none reconnected", alive("m1"), 3},
		{"two reconnected", alive("m1", "n1", "n2"), 1},
		{"all reconnected", alive("n1", "n2", "n3"), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, _ := Sum(st, 0, []ReplicaReport{dead, c.live}, now, DefaultStaleAfter, DefaultGoneAfter)
			if o.Pending != c.pending {
				t.Errorf("pending %d, want %d (waiting %q)", o.Pending, c.pending, o.Waiting)
			}
			if (c.pending == 0) != (o.Waiting == "") {
				t.Errorf("waiting %q with %d pending", o.Waiting, c.pending)
			}
		})
	}
	// A stale report without ids (over MaxNodeIDs) counts every node.
	noIDs := dead
	noIDs.NodeIDs = nil
	if o, _ := Sum(st, 0, []ReplicaReport{noIDs, alive("n1", "n2", "n3")}, now, DefaultStaleAfter, DefaultGoneAfter); o.Pending != 3 {
		t.Errorf("without ids: pending %d, want 3", o.Pending)
	}
}
