package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
)

// fakeSets builds revisions from a map.
type fakeSets struct {
	mu   sync.Mutex
	sets map[string]*snapshot.Set
}

func (f *fakeSets) Set(_ context.Context, rev string) (*snapshot.Set, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.sets[rev]; s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("no revision %s", rev)
}

func (f *fakeFleet) remove(id string) {
	f.mu.Lock()
	delete(f.nodes, id)
	delete(f.assigned, id)
	f.mu.Unlock()
	f.emit(Event{Kind: Disconnect, NodeID: id})
}

// served is what node id is served now: its assignment, else the default.
func (f *fakeFleet) served(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.assigned[id]; s != nil {
		return s.Revision
	}
	if f.def != nil {
		return f.def.Revision
	}
	return ""
}

type replicaEnv struct {
	t     *testing.T
	ctx   context.Context
	board *MemoryBoard
	lead  Board
	sets  *fakeSets
}

func newReplicaEnv(t *testing.T, sets map[string]*snapshot.Set) *replicaEnv {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b := NewMemoryBoard()
	return &replicaEnv{t: t, ctx: ctx, board: b, lead: b.Client(), sets: &fakeSets{sets: sets}}
}

func (e *replicaEnv) replica(name string, f *fakeFleet, sets Sets) *Replica {
	if sets == nil {
		sets = e.sets
	}
	r := NewReplica(ReplicaOptions{Name: name, Board: e.board.Client(), Fleet: f, Sets: sets, Log: quiet, Coalesce: time.Millisecond})
	go r.Run(e.ctx)
	return r
}

func (e *replicaEnv) put(s FleetState) {
	e.t.Helper()
	if _, _, err := e.lead.Rollout(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if err := e.lead.PutRollout(e.ctx, s); err != nil {
		e.t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *replicaEnv) report(name string) ReplicaReport {
	reps, _ := e.board.Client().Reports(e.ctx)
	for _, r := range reps {
		if r.Replica == name {
			return r
		}
	}
	return ReplicaReport{}
}

func canaryState(t *testing.T, epoch int64, good, next *snapshot.Set, stage int, phase string) FleetState {
	pol := canaryPolicy(t, "0s")
	return FleetState{Epoch: epoch, Revision: next.Revision, Hash: next.Hash(), LastGoodRevision: good.Revision, LastGoodHash: good.Hash(),
		Stages: Specs(pol.Stages), Stage: stage, StageName: pol.Stages[stage].Name, Phase: statusPhase(phase)}
}

// A node's stage comes from its id and labels only: the canary node is
// served the target on whichever replica it connects to, the stable node
// is not until the stage "all" is reached; then Succeeded serves every
// node the target as the default, and a Failed rollout after it the last
// good again.
func TestReplicaServesStageFromIDAndLabels(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	e := newReplicaEnv(t, map[string]*snapshot.Set{"r1": good, "r2": next})
	fa, fb := newFakeFleet(), newFakeFleet()
	fa.add("canary-1", map[string]string{"rollout-group": "canary"})
	fa.add("stable-1", map[string]string{"rollout-group": "stable"})
	e.replica("a", fa, nil)
	e.replica("b", fb, nil)
	e.put(canaryState(t, 1, good, next, 0, "Progressing"))
	eventually(t, "canary-1 on r2 at replica a", func() bool { return fa.served("canary-1") == "r2" })
	if got := fa.served("stable-1"); got != "r1" {
		t.Fatalf("stable-1 served %q during the canary stage", got)
	}
	eventually(t, "a's report of the canary stage", func() bool {
		r := e.report("a")
		return r.Stage == 0 && r.Revision == "r2" && r.InStage == 1 && r.StageAcked == 1 && r.Pending == 0 && r.RenderedHash == next.Hash() &&
			slices.Equal(r.StageNodes, []string{"canary-1"})
	})

	// The canary reconnects to replica b: b serves it the target too.
	fa.remove("canary-1")
	fb.add("canary-1", map[string]string{"rollout-group": "canary"})
	eventually(t, "canary-1 on r2 at replica b", func() bool { return fb.served("canary-1") == "r2" })
	eventually(t, "b's report", func() bool { r := e.report("b"); return r.InStage == 1 && r.StageAcked == 1 })

	e.put(canaryState(t, 1, good, next, 1, "Progressing"))
	eventually(t, "stable-1 on r2", func() bool { return fa.served("stable-1") == "r2" })
	s := canaryState(t, 1, good, next, 1, "Succeeded")
	e.put(s)
	eventually(t, "r2 the default at a", func() bool {
		fa.mu.Lock()
		defer fa.mu.Unlock()
		return fa.def == next && len(fa.assigned) == 0
	})
	// A new rollout fails: everything back on its last good.
	bad := testSet("r3", "c")
	e.sets.mu.Lock()
	e.sets.sets["r3"] = bad
	e.sets.mu.Unlock()
	e.put(canaryState(t, 1, next, bad, 0, "Progressing"))
	eventually(t, "canary-1 on r3", func() bool { return fb.served("canary-1") == "r3" })
	e.put(canaryState(t, 1, next, bad, 0, "Failed"))
	eventually(t, "canary-1 back on r2", func() bool { return fb.served("canary-1") == "r2" })
}

// A node's NACK of the target is in the report at once; a FleetState of a
// lower epoch than one seen is ignored.
func TestReplicaReportsNACKAndIgnoresOlderEpoch(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	e := newReplicaEnv(t, map[string]*snapshot.Set{"r1": good, "r2": next})
	f := newFakeFleet()
	f.nack["canary-1"] = true
	f.add("canary-1", map[string]string{"rollout-group": "canary"})
	logs := &syncBuffer{}
	r := NewReplica(ReplicaOptions{Name: "a", Board: e.board.Client(), Fleet: f, Sets: e.sets, Coalesce: time.Millisecond,
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	go r.Run(e.ctx)
	e.put(canaryState(t, 2, good, next, 0, "Progressing"))
	eventually(t, "the NACK in a's report", func() bool {
		r := e.report("a")
		return len(r.NACKs) == 1 && r.NACKs[0].Node == "canary-1" && strings.Contains(r.NACKs[0].Error, "bad config")
	})
	// An older leadership's write (a cache that lags, a paused ex-leader
	// whose write slipped through) moves no node.
	old := canaryState(t, 1, good, next, 1, "Failed")
	e.board.mu.Lock()
	e.board.state = &old
	e.board.version++
	e.board.changed()
	e.board.mu.Unlock()
	eventually(t, "the replica to read it", func() bool { return strings.Contains(logs.String(), "older leadership") })
	if got := f.served("canary-1"); got != "r2" {
		t.Fatalf("canary-1 served %q after an epoch-1 state over epoch 2", got)
	}
	if st, _ := r.State(); st.Epoch != 2 || st.Phase != Progressing {
		t.Fatalf("applied %+v", st)
	}
}

// A replica that renders the revision to another hash reports it and
// moves none of its nodes.
func TestReplicaVersionSkewMovesNoNode(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	e := newReplicaEnv(t, nil)
	f := newFakeFleet()
	f.add("canary-1", map[string]string{"rollout-group": "canary"})
	e.replica("a", f, &fakeSets{sets: map[string]*snapshot.Set{"r1": good, "r2": testSet("r2", "other")}})
	e.put(canaryState(t, 1, good, next, 0, "Progressing"))
	eventually(t, "the skew in a's report", func() bool {
		r := e.report("a")
		return r.Revision == "r2" && r.RenderedHash != "" && r.RenderedHash != next.Hash()
	})
	if got := f.assignedTo("canary-1"); len(got) != 0 {
		t.Fatalf("canary-1 assigned %v on version skew", got)
	}
	if got := f.served("canary-1"); got != "r1" {
		t.Fatalf("canary-1 served %q", got)
	}
}

func statusPhase(s string) status.RolloutPhase { return status.RolloutPhase(s) }

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Every replica places a node in the same stage as the leader's policy
// does, from the stages the FleetState carries.
func TestSpecsPlaceNodesAsThePolicy(t *testing.T) {
	ten := int32(10)
	pol, err := Compile(&v1alpha1.RolloutPolicy{Spec: v1alpha1.RolloutPolicySpec{Stages: []v1alpha1.RolloutStage{
		{Name: "canary", NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"rollout-group": "canary"}}},
		{Name: "eu", NodeSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "region", Operator: metav1.LabelSelectorOpIn, Values: []string{"eu-west", "eu-north"}},
			{Key: "legacy", Operator: metav1.LabelSelectorOpDoesNotExist}}}},
		{Name: "everything", NodeSelector: &metav1.LabelSelector{}}, // matches every node left
		{Name: "ten", Percent: &ten},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	stages, err := StagesOf(Specs(pol.Stages))
	if err != nil {
		t.Fatal(err)
	}
	labelSets := []map[string]string{nil, {"rollout-group": "canary"}, {"region": "eu-west"}, {"region": "eu-north", "legacy": "1"}, {"region": "us"}}
	seen := map[int]bool{}
	for i := range 200 {
		id := fmt.Sprintf("node-%d", i)
		for _, l := range labelSets {
			want := pol.StageOf(id, l)
			if got := StageOf(stages, id, l); got != want {
				t.Fatalf("%s %v: stage %d from the FleetState, %d from the policy", id, l, got, want)
			}
			seen[want] = true
		}
	}
	if len(seen) != 3 || seen[3] {
		t.Fatalf("stages reached %v, want the first three", seen)
	}
}
