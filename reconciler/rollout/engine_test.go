package rollout

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
)

// fakeFleet is a hand-written Fleet: nodes ACK what they are assigned unless
// told to NACK or stay silent.
type fakeFleet struct {
	mu       sync.Mutex
	nodes    map[string]*Node
	def      *snapshot.Set
	assigned map[string]*snapshot.Set
	history  []string // "assign <node> <hash>", "unassign <node>", "default <hash>"
	nack     map[string]bool
	silent   map[string]bool
	subs     []chan Event
}

func newFakeFleet() *fakeFleet {
	return &fakeFleet{nodes: map[string]*Node{}, assigned: map[string]*snapshot.Set{}, nack: map[string]bool{}, silent: map[string]bool{}}
}

func (f *fakeFleet) add(id string, labels map[string]string) {
	f.mu.Lock()
	n := &Node{ID: id, Class: snapshot.Envoy, Labels: labels,
		Requested: map[string]bool{resource.ClusterType: true}, Acked: map[string]string{}}
	f.nodes[id] = n
	if f.def != nil {
		n.Acked[resource.ClusterType] = f.def.Version(snapshot.Envoy, resource.ClusterType)
	}
	f.mu.Unlock()
	f.emit(Event{Kind: Connect, NodeID: id})
}

func (f *fakeFleet) Nodes() []Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Node
	for _, n := range f.nodes {
		c := *n
		c.Acked = map[string]string{}
		for k, v := range n.Acked {
			c.Acked[k] = v
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (f *fakeFleet) serve(id string, set *snapshot.Set) {
	// Caller holds f.mu.
	n := f.nodes[id]
	if n == nil || set == nil || f.silent[id] {
		return
	}
	v := set.In(n.Group).Version(snapshot.Envoy, resource.ClusterType)
	if f.nack[id] && set != f.def {
		go f.emit(Event{Kind: NACK, NodeID: id, TypeURL: resource.ClusterType, Version: v, Error: "bad config"})
		return
	}
	n.Acked[resource.ClusterType] = v
	go f.emit(Event{Kind: ACK, NodeID: id, TypeURL: resource.ClusterType, Version: v})
}

func (f *fakeFleet) SetDefault(set *snapshot.Set) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.def = set
	f.history = append(f.history, "default "+set.Hash())
	for id := range f.nodes {
		if f.assigned[id] == nil {
			f.serve(id, set)
		}
	}
}

func (f *fakeFleet) Assign(ids []string, set *snapshot.Set) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.assigned[id] = set
		f.history = append(f.history, "assign "+id+" "+set.Hash())
		f.serve(id, set)
	}
}

func (f *fakeFleet) Unassign(ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		delete(f.assigned, id)
		f.history = append(f.history, "unassign "+id)
		f.serve(id, f.def)
	}
}

func (f *fakeFleet) Subscribe() (<-chan Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan Event, 64)
	f.subs = append(f.subs, ch)
	return ch, func() {}
}

func (f *fakeFleet) emit(ev Event) {
	f.mu.Lock()
	subs := append([]chan Event(nil), f.subs...)
	f.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (f *fakeFleet) assignedTo(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, h := range f.history {
		if len(h) > 7 && h[:7] == "assign " && h[7:7+len(id)] == id && h[7+len(id)] == ' ' {
			out = append(out, h[8+len(id):])
		}
	}
	return out
}

func testSet(rev, cluster string) *snapshot.Set {
	return snapshot.New(rev, map[snapshot.Class]*snapshot.Resources{
		snapshot.Envoy: {Clusters: []*clusterv3.Cluster{{Name: cluster}}},
	})
}

func d(s string) *metav1.Duration {
	v, _ := time.ParseDuration(s)
	return &metav1.Duration{Duration: v}
}

func canaryPolicy(t *testing.T, bake string, metrics ...v1alpha1.RolloutMetric) *Policy {
	t.Helper()
	hundred := int32(100)
	p := &v1alpha1.RolloutPolicy{Spec: v1alpha1.RolloutPolicySpec{
		AckTimeout: d("500ms"),
		Stages: []v1alpha1.RolloutStage{
			{Name: "canary", NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"rollout-group": "canary"}}, Bake: d(bake)},
			{Name: "all", Percent: &hundred},
		},
	}}
	if len(metrics) > 0 {
		p.Spec.Analysis = &v1alpha1.RolloutAnalysis{Interval: d("50ms"), Prometheus: &v1alpha1.PrometheusSource{Address: "http://prom"}, Metrics: metrics}
	}
	pol, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type fakeQuerier struct{ v float64 }

func (q fakeQuerier) Query(context.Context, string) (float64, error) { return q.v, nil }

func runPlan(t *testing.T, f *fakeFleet, plan Plan, q Querier) Result {
	t.Helper()
	done := make(chan Result, 1)
	e := New(f, Options{Log: quiet, OnDone: func(r Result) { done <- r },
		NewQuerier: func(string) (Querier, error) { return q, nil }})
	e.Start(plan)
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("rollout did not finish")
	}
	return Result{}
}

func fleetWith(good *snapshot.Set) *fakeFleet {
	f := newFakeFleet()
	f.def = good
	f.add("canary-1", map[string]string{"rollout-group": "canary"})
	f.add("stable-1", map[string]string{"rollout-group": "stable"})
	f.add("stable-2", map[string]string{"rollout-group": "stable"})
	return f
}

func TestRolloutSucceedsStageByStage(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	f := fleetWith(good)
	max := 0.5
	res := runPlan(t, f, Plan{Revision: "r2", Target: next, LastGood: good,
		Policy: canaryPolicy(t, "200ms", v1alpha1.RolloutMetric{Name: "errors", Query: `x{node=~"{{ .NodeRegex }}"}`, Max: &max})}, fakeQuerier{0.1})
	if res.Phase != Succeeded {
		t.Fatalf("phase %s: %s", res.Phase, res.Message)
	}
	// The canary moved first, the stable nodes only after its stage passed.
	f.mu.Lock()
	hist := append([]string(nil), f.history...)
	f.mu.Unlock()
	first := -1
	for i, h := range hist {
		if h == "assign canary-1 "+next.Hash() {
			first = i
		}
		if (h == "assign stable-1 "+next.Hash() || h == "assign stable-2 "+next.Hash()) && (first < 0 || i < first) {
			t.Fatalf("a stable node moved before the canary: %v", hist)
		}
	}
	if f.def != next {
		t.Fatalf("default is not the new revision after success")
	}
	if g := res.Status.Stages[0].Gates; len(g) != 1 || !g[0].OK {
		t.Fatalf("canary gates %+v", g)
	}
}

func TestRolloutNACKRollsBackAndStableNeverSeesIt(t *testing.T) {
	good, bad := testSet("r1", "a"), testSet("r2", "bad")
	f := fleetWith(good)
	f.nack["canary-1"] = true
	res := runPlan(t, f, Plan{Revision: "r2", Target: bad, LastGood: good, Policy: canaryPolicy(t, "1s")}, nil)
	if res.Phase != Failed || res.Reason != "NACK" {
		t.Fatalf("got %s/%s: %s", res.Phase, res.Reason, res.Message)
	}
	if got := f.assignedTo("stable-1"); len(got) != 0 {
		t.Fatalf("stable-1 was assigned %v", got)
	}
	if f.def != good || len(f.assigned) != 0 {
		t.Fatalf("not rolled back: default %v assigned %v", f.def.Hash(), f.assigned)
	}
}

func TestRolloutMetricGateFails(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	f := fleetWith(good)
	max := 0.01
	res := runPlan(t, f, Plan{Revision: "r2", Target: next, LastGood: good,
		Policy: canaryPolicy(t, "2s", v1alpha1.RolloutMetric{Name: "error-rate", Query: `q`, Max: &max})}, fakeQuerier{0.5})
	if res.Phase != Failed || res.Reason != "MetricGate" {
		t.Fatalf("got %s/%s: %s", res.Phase, res.Reason, res.Message)
	}
	if got := f.assignedTo("stable-2"); len(got) != 0 {
		t.Fatalf("stable-2 was assigned %v", got)
	}
	t.Log(res.Message)
}

func TestRolloutAckTimeout(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	f := fleetWith(good)
	f.silent["canary-1"] = true
	res := runPlan(t, f, Plan{Revision: "r2", Target: next, LastGood: good, Policy: canaryPolicy(t, "0s")}, nil)
	if res.Phase != Failed || res.Reason != "AckTimeout" {
		t.Fatalf("got %s/%s: %s", res.Phase, res.Reason, res.Message)
	}
}

// A selector stage that selects no node (minNodes defaults to 1) waits up
// to the ackTimeout, warning in the status, then fails naming its
// selector; no other node ever sees the revision.
func TestRolloutEmptySelectorStageFails(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	f := newFakeFleet()
	f.def = good
	f.add("stable-1", nil) // no canary node at all
	warned := make(chan string, 1)
	done := make(chan Result, 1)
	e := New(f, Options{Log: quiet, OnDone: func(r Result) { done <- r }, OnChange: func(st status.Rollout) {
		if w := st.Stages[0].Warning; w != "" {
			select {
			case warned <- w:
			default:
			}
		}
	}})
	e.Start(Plan{Revision: "r2", Target: next, LastGood: good, Policy: canaryPolicy(t, "10s")})
	res := <-done
	if res.Phase != Failed || res.Reason != status.ReasonTooFewNodes || !strings.Contains(res.Message, "rollout-group=canary") {
		t.Fatalf("got %s/%s: %s", res.Phase, res.Reason, res.Message)
	}
	select {
	case w := <-warned:
		if !strings.Contains(w, "needs at least 1") {
			t.Errorf("warning %q", w)
		}
	default:
		t.Error("the status never warned while the stage waited for nodes")
	}
	if got := f.assignedTo("stable-1"); len(got) != 0 {
		t.Fatalf("stable-1 was assigned %v", got)
	}
	t.Log(res.Message)
}

// The canary stage waits for its node: one that connects within the
// ackTimeout gets the revision, and the rollout goes on.
func TestRolloutStageWaitsForMinNodes(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	f := newFakeFleet()
	f.def = good
	f.add("stable-1", nil)
	waiting := make(chan struct{})
	var once sync.Once
	done := make(chan Result, 1)
	e := New(f, Options{Log: quiet, OnDone: func(r Result) { done <- r }, OnChange: func(st status.Rollout) {
		if st.Stages[0].Warning != "" {
			once.Do(func() { close(waiting) })
		}
	}})
	pol := canaryPolicy(t, "0s")
	pol.AckTimeout = time.Minute
	e.Start(Plan{Revision: "r2", Target: next, LastGood: good, Policy: pol})
	<-waiting
	f.add("canary-1", map[string]string{"rollout-group": "canary"})
	if res := <-done; res.Phase != Succeeded {
		t.Fatalf("phase %s: %s", res.Phase, res.Message)
	}
	if got := f.assignedTo("canary-1"); len(got) != 1 || got[0] != next.Hash() {
		t.Fatalf("canary-1 assigned %v", got)
	}
}

// minNodes is not enforced for the very first revision: there is no last
// good version to protect, and nodes outside the stage have nothing else
// to be served. A stage with minNodes: 0 passes empty too.
func TestRolloutEmptyStagePassesWhenNothingToProtect(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	f := newFakeFleet()
	f.add("stable-1", nil)
	if res := runPlan(t, f, Plan{Revision: "r1", Target: good, Policy: canaryPolicy(t, "10s")}, nil); res.Phase != Succeeded {
		t.Fatalf("first revision: %s %s", res.Phase, res.Message)
	}
	pol := canaryPolicy(t, "10s")
	pol.Stages[0].MinNodes = 0
	if res := runPlan(t, f, Plan{Revision: "r2", Target: next, LastGood: good, Policy: pol}, nil); res.Phase != Succeeded {
		t.Fatalf("minNodes 0: %s %s", res.Phase, res.Message)
	}
}

func TestMinNodesDefaults(t *testing.T) {
	ten, two := int32(10), int32(2)
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"g": "c"}}
	pol, err := Compile(&v1alpha1.RolloutPolicy{Spec: v1alpha1.RolloutPolicySpec{Stages: []v1alpha1.RolloutStage{
		{Name: "sel", NodeSelector: sel},
		{Name: "pct", Percent: &ten},
		{Name: "both", NodeSelector: sel, Percent: &ten},
		{Name: "set", NodeSelector: sel, MinNodes: &two},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, s := range pol.Stages {
		got = append(got, s.MinNodes)
	}
	if want := []int{1, 0, 0, 2}; !slices.Equal(got, want) {
		t.Fatalf("minNodes %v, want %v", got, want)
	}
}

func TestRolloutSupersede(t *testing.T) {
	good, r2, r3 := testSet("r1", "a"), testSet("r2", "b"), testSet("r3", "c")
	f := fleetWith(good)
	results := make(chan Result, 2)
	e := New(f, Options{Log: quiet, OnDone: func(r Result) { results <- r }})
	e.Start(Plan{Revision: "r2", Target: r2, LastGood: good, Policy: canaryPolicy(t, "10s")})
	time.Sleep(100 * time.Millisecond)
	e.Start(Plan{Revision: "r3", Target: r3, LastGood: good, Policy: canaryPolicy(t, "0s")})
	if r := <-results; r.Phase != Superseded || r.Plan.Revision != "r2" {
		t.Fatalf("first result %s %s", r.Plan.Revision, r.Phase)
	}
	if r := <-results; r.Phase != Succeeded || r.Plan.Revision != "r3" {
		t.Fatalf("second result %s %s: %s", r.Plan.Revision, r.Phase, r.Message)
	}
}

func TestStageOfIsStable(t *testing.T) {
	pol := canaryPolicy(t, "0s")
	if got := pol.StageOf("n1", map[string]string{"rollout-group": "canary"}); got != 0 {
		t.Fatalf("canary node in stage %d", got)
	}
	if got := pol.StageOf("n1", nil); got != 1 {
		t.Fatalf("other node in stage %d", got)
	}
	if Bucket("node-42") != Bucket("node-42") {
		t.Fatal("bucket not stable")
	}
}

func TestQueryDataEscapes(t *testing.T) {
	qd := NewQueryData([]string{"a.b", "c"}, "canary", "r")
	if qd.NodeRegex != `a\\.b|c` {
		t.Fatalf("NodeRegex %q", qd.NodeRegex)
	}
}

// Pause holds the rollout after the stage in progress; resume lets it go on.
func TestRolloutPauseResume(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	f := fleetWith(good)
	done := make(chan Result, 1)
	e := New(f, Options{Log: quiet, OnDone: func(r Result) { done <- r }})
	e.Start(Plan{Revision: "r2", Target: next, LastGood: good, Policy: canaryPolicy(t, "300ms")})
	if err := e.Control("pause"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond) // well past the canary's bake
	if got := f.assignedTo("stable-1"); len(got) != 0 {
		t.Fatalf("a paused rollout moved stable-1: %v", got)
	}
	if st, _ := e.Status(); st.Phase != Paused {
		t.Fatalf("phase %s, want %s", st.Phase, Paused)
	}
	if err := e.Control("resume"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.Phase != Succeeded {
			t.Fatalf("after resume: %s %s", r.Phase, r.Message)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("resumed rollout did not finish")
	}
	if err := e.Control("pause"); err == nil {
		t.Fatal("pause with no rollout in progress: no error")
	}
}

// Abort rolls every node back and reports Aborted.
func TestRolloutAbort(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	f := fleetWith(good)
	done := make(chan Result, 1)
	e := New(f, Options{Log: quiet, OnDone: func(r Result) { done <- r }})
	e.Start(Plan{Revision: "r2", Target: next, LastGood: good, Policy: canaryPolicy(t, "10s")})
	time.Sleep(100 * time.Millisecond)
	if err := e.Control("abort"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.Phase != Aborted {
		t.Fatalf("phase %s, want %s", r.Phase, Aborted)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.def != good || len(f.assigned) != 0 {
		t.Fatal("abort did not put every node back on the last good snapshot")
	}
}
