package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-git/go-git/v5/plumbing"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/status"
)

// The Reconciler's conditions, one transition at a time, with every
// collaborator faked: a Source that hands out commits, a Builder that
// returns a prepared build or error per commit, and a Fleet of one node
// that ACKs, NACKs or stays silent. No Git, no kustomize, no xDS.

// fakeSource serves one commit (or a poll error) at a time.
type fakeSource struct {
	mu      sync.Mutex
	head    source.Revision
	pollErr error
}

func (s *fakeSource) set(n int) source.Revision {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.head = source.Revision{Ref: "main", Hash: plumbing.NewHash(fmt.Sprintf("%040x", n))}
	s.pollErr = nil
	return s.head
}

func (s *fakeSource) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pollErr = err
}

func (s *fakeSource) Poll(context.Context) (source.Revision, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pollErr != nil {
		return source.Revision{}, false, s.pollErr
	}
	return s.head, true, nil
}

func (s *fakeSource) FS(context.Context, source.Revision) (filesys.FileSystem, error) {
	return filesys.MakeFsInMemory(), nil
}

// fakeBuilder returns, per revision, a build serving one cluster, a build
// with a rejected object, or an error.
type fakeBuilder struct {
	mu      sync.Mutex
	cluster map[string]string
	reject  map[string]bool
	err     map[string]error
}

func (b *fakeBuilder) Run(_ filesys.FileSystem, _, revision string, _ *model.Memory) (*pipeline.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.err[revision]; err != nil {
		return nil, err
	}
	out := &model.Output{}
	if b.reject[revision] {
		out.Status = []status.Object{{
			ObjectRef:  ir.ObjectRef{Kind: "HTTPRoute", Namespace: "shop", Name: "web", File: "teams/shop/routes.yaml"},
			Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionFalse, Reason: "NoMatchingParent", Message: "no Gateway"}},
		}}
	}
	set := snapshot.New(revision, map[snapshot.Class]*snapshot.Resources{
		snapshot.Envoy: {Clusters: []*clusterv3.Cluster{{Name: b.cluster[revision]}}},
	})
	return &pipeline.Result{Revision: revision, Model: out, Set: set}, nil
}

// oneNode is a Fleet of one Envoy node that ACKs what it is served, NACKs
// it, or says nothing.
type oneNode struct {
	mu     sync.Mutex
	mode   string // "ack", "nack", "silent"
	acked  string
	served *snapshot.Set
	subs   []chan rollout.Event
}

func (f *oneNode) Nodes() []rollout.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []rollout.Node{{ID: "n1", Class: snapshot.Envoy,
		Requested: map[string]bool{resource.ClusterType: true},
		Acked:     map[string]string{resource.ClusterType: f.acked}}}
}

func (f *oneNode) serve(set *snapshot.Set) {
	f.mu.Lock()
	f.served = set
	mode, subs := f.mode, append([]chan rollout.Event(nil), f.subs...)
	v := set.Version(snapshot.Envoy, resource.ClusterType)
	ev := rollout.Event{Kind: rollout.ACK, NodeID: "n1", TypeURL: resource.ClusterType, Version: v}
	switch mode {
	case "ack":
		f.acked = v
	case "nack":
		ev.Kind, ev.Error = rollout.NACK, "rejected by the fake node"
	default:
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (f *oneNode) SetDefault(set *snapshot.Set)         { f.serve(set) }
func (f *oneNode) Assign(_ []string, set *snapshot.Set) { f.serve(set) }
func (f *oneNode) Unassign([]string)                    {}
func (f *oneNode) Subscribe() (<-chan rollout.Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan rollout.Event, 16)
	f.subs = append(f.subs, ch)
	return ch, func() {}
}

func (f *oneNode) setMode(m string) {
	f.mu.Lock()
	f.mode = m
	f.mu.Unlock()
}

type condFixture struct {
	t     *testing.T
	src   *fakeSource
	build *fakeBuilder
	fleet *oneNode
	rec   *Reconciler
}

func newCondFixture(t *testing.T) *condFixture {
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &condFixture{t: t, src: &fakeSource{},
		build: &fakeBuilder{cluster: map[string]string{}, reject: map[string]bool{}, err: map[string]error{}},
		fleet: &oneNode{mode: "ack"}}
	f.rec = New(Options{Source: f.src, URL: "fake", Pipeline: f.build, Fleet: f.fleet, Store: store, Log: quietLog(),
		Exit: func(int) { t.Error("the reconciler asked to exit") }})
	if err := f.rec.Restore(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.rec.engine.Stop)
	return f
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// commit makes commit n the head, serving cluster c, and reconciles once;
// it waits for a rollout the commit starts to end.
func (f *condFixture) commit(n int, c string) string {
	rev := f.src.set(n).String()
	f.build.mu.Lock()
	f.build.cluster[rev] = c
	f.build.mu.Unlock()
	return rev
}

func (f *condFixture) reconcile() {
	f.t.Helper()
	_ = f.rec.ReconcileOnce(context.Background(), "test")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, active := f.rec.engine.Active(); !active {
			return
		}
		if time.Now().After(deadline) {
			return // a silent node: the caller checks the in-progress conditions
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// conds is Ready, Reconciling and Stalled as "status/reason" each.
func (f *condFixture) conds() [3]string {
	st := f.rec.Status()
	var out [3]string
	for i, typ := range []string{status.Ready, status.Reconciling, status.Stalled} {
		out[i] = "absent"
		for _, c := range st.Conditions {
			if c.Type == typ {
				out[i] = string(c.Status) + "/" + c.Reason
			}
		}
	}
	return out
}

func (f *condFixture) want(step string, ready, reconciling, stalled string) {
	f.t.Helper()
	if got := f.conds(); got != [3]string{ready, reconciling, stalled} {
		f.t.Fatalf("%s: Ready, Reconciling, Stalled = %v, want [%s %s %s]", step, got, ready, reconciling, stalled)
	}
}

func TestReconcilerConditions(t *testing.T) {
	f := newCondFixture(t)
	f.want("before the first revision", "Unknown/"+status.ReasonRollingOut, "absent", "absent")

	// A good revision: applied, nothing stalled.
	r1 := f.commit(1, "a")
	f.reconcile()
	f.want("r1 applied", "True/"+status.ReasonSucceeded, "False/"+status.ReasonSucceeded, "False/"+status.ReasonSucceeded)
	if st := f.rec.Status(); st.LastAppliedRevision != r1 {
		t.Fatalf("applied %s, want %s", st.LastAppliedRevision, r1)
	}

	// A revision that cannot be rendered: refused and stalled until a new
	// commit; r1 keeps serving.
	r2 := f.commit(2, "b")
	f.build.err[r2] = &pipeline.Error{Step: pipeline.StepRender, Revision: r2, Err: errors.New("teams/shop/x.yaml: bad YAML")}
	f.reconcile()
	f.want("r2 render failure", "False/"+status.ReasonRenderFailed, "False/"+status.ReasonRenderFailed, "True/"+status.ReasonRenderFailed)
	if st := f.rec.Status(); st.LastAppliedRevision != r1 || st.LastAttemptedRevision != r2 {
		t.Fatalf("after a refused build: applied %s attempted %s", st.LastAppliedRevision, st.LastAttemptedRevision)
	}
	// Polling the same commit again changes nothing.
	f.reconcile()
	f.want("r2 polled again", "False/"+status.ReasonRenderFailed, "False/"+status.ReasonRenderFailed, "True/"+status.ReasonRenderFailed)

	// A translate failure has its own reason.
	r3 := f.commit(3, "c")
	f.build.err[r3] = &pipeline.Error{Step: pipeline.StepTranslate, Revision: r3, Err: errors.New("invalid cluster")}
	f.reconcile()
	f.want("r3 translate failure", "False/"+status.ReasonTranslateFailed, "False/"+status.ReasonTranslateFailed, "True/"+status.ReasonTranslateFailed)

	// A model that breaks the IR's invariants (a gitxds bug) is not
	// reported as the user's render failure.
	r35 := f.commit(35, "c")
	f.build.err[r35] = &pipeline.Error{Step: pipeline.StepModel, Revision: r35, Err: errors.New("route r1: route has no action")}
	f.reconcile()
	f.want("r35 model failure", "False/"+status.ReasonModelFailed, "False/"+status.ReasonModelFailed, "True/"+status.ReasonModelFailed)

	// The source fails: Ready says so; Stalled is left as it was (the
	// revision is still refused); the next good poll summarizes again.
	f.src.fail(errors.New("connection refused"))
	f.reconcile()
	if got := f.conds(); got[0] != "False/"+status.ReasonSourceFailed || got[2] != "True/"+status.ReasonModelFailed {
		t.Fatalf("source failure: %v", got)
	}

	// A new good commit clears everything.
	f.commit(4, "d")
	f.reconcile()
	f.want("r4 applied", "True/"+status.ReasonSucceeded, "False/"+status.ReasonSucceeded, "False/"+status.ReasonSucceeded)

	// Objects rejected, the rest served: not Ready, not stalled.
	r5 := f.commit(5, "e")
	f.build.reject[r5] = true
	f.reconcile()
	f.want("r5 with a rejected object", "False/"+status.ReasonObjectsRejected, "False/"+status.ReasonSucceeded, "False/"+status.ReasonSucceeded)

	// A node that NACKs: the rollout fails, is rolled back, and the
	// revision is stalled until a new commit.
	f.fleet.setMode("nack")
	r6 := f.commit(6, "f")
	f.reconcile()
	f.want("r6 NACKed", "False/"+status.ReasonRolloutFailed, "False/"+status.ReasonRolloutFailed, "True/"+status.ReasonRolloutFailed)
	if st := f.rec.Status(); st.LastAppliedRevision != r5 || len(st.FailedRevisions) == 0 || st.FailedRevisions[len(st.FailedRevisions)-1].Revision != r6 {
		t.Fatalf("after the NACK: applied %s, failed %+v", st.LastAppliedRevision, st.FailedRevisions)
	}

	// A node that says nothing: while the rollout waits for its ACK, the
	// revision is reconciling, not ready and not stalled.
	f.fleet.setMode("silent")
	f.commit(7, "g")
	_ = f.rec.ReconcileOnce(context.Background(), "test")
	f.want("r7 rolling out", "False/"+status.ReasonRollingOut, "True/"+status.ReasonRollingOut, "False/"+status.ReasonRollingOut)
}
