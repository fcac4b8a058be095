package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/reconciler/translate"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/testenv/dataplane"
	"gitxds.dev/gitxds/testenv/prom"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/xdsclient"
)

// The rollout tests: docs/architecture.md §4 with real gRPC-Go xDS clients in two groups
// (rollout-group: canary, rollout-group: stable), gitxds as `serve` runs it,
// and, for the metric gates, a real Prometheus scraping the test data
// plane's per-node call counters.

// rolloutRepo is the spine's repository with backends a, b, c (and the
// extra ones given), the route to `to`, and a RolloutPolicy.
func rolloutRepo(ups map[string]string, to, policy string) map[string]string {
	files := repo(ups["A"], ups["B"])
	files["platform/kustomization.yaml"] = "resources: [namespaces.yaml, gateways.yaml, rollout.yaml]\n"
	files["platform/rollout.yaml"] = policy
	files["teams/echo/backends.yaml"] = backends(ups)
	files["teams/echo/routes.yaml"] = routeTo(to)
	return files
}

// backends declares one Backend per upstream, named after it in lower case.
func backends(ups map[string]string) string {
	var b strings.Builder
	for _, name := range []string{"A", "B", "C", "POISON"} {
		addr, ok := ups[name]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, `---
apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata: {name: %s}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: %s}}]
`, strings.ToLower(name), addr[strings.LastIndex(addr, ":")+1:])
	}
	return b.String()
}

// policy is a two-stage RolloutPolicy: canary (by label) with bake, then all.
// analysis is the YAML of spec.analysis, or "".
func policy(ackTimeout, bake, analysis string) string {
	p := `apiVersion: gitxds.dev/v1alpha1
kind: RolloutPolicy
metadata: {name: default}
spec:
  ackTimeout: ` + ackTimeout + `
  stages:
  - name: canary
    nodeSelector: {matchLabels: {rollout-group: canary}}
    bake: ` + bake + `
  - name: all
    percent: 100
`
	if analysis != "" {
		p += "  analysis:\n" + analysis
	}
	return p
}

// errorRateGate is the analysis of the metric-gate test: the 5xx rate of
// the stage's nodes, as Prometheus scraped it from the data plane.
func errorRateGate(promURL string) string {
	return `    interval: 500ms
    prometheus: {address: "` + promURL + `"}
    metrics:
    - name: error-rate
      query: 'sum(rate(` + dataplane.MetricName + `{code_class="5xx",node=~"{{ .NodeRegex }}"}[5s]))'
      max: 0.5
`
}

type group struct {
	canary, stable []*xdsclient.Client
}

func (g group) all() []*xdsclient.Client {
	return append(append([]*xdsclient.Client(nil), g.canary...), g.stable...)
}

func (g group) callers() []dataplane.Caller {
	var out []dataplane.Caller
	for _, c := range g.all() {
		out = append(out, c)
	}
	return out
}

// clients connects n canary and n stable real gRPC xDS clients and waits
// until each is answered by want.
func clients(ctx context.Context, t *testing.T, s *stack.Stack, n int, want string) group {
	t.Helper()
	var g group
	for i := 1; i <= n; i++ {
		for _, grp := range []string{"canary", "stable"} {
			c, err := s.Client(fmt.Sprintf("%s-%d", grp, i), map[string]string{"rollout-group": grp})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if grp == "canary" {
				g.canary = append(g.canary, c)
			} else {
				g.stable = append(g.stable, c)
			}
		}
	}
	waitAll(ctx, t, g.all(), want)
	return g
}

func waitAll(ctx context.Context, t *testing.T, cs []*xdsclient.Client, want string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for _, c := range cs {
		if err := c.WaitFor(wctx, host, want, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// onlyAnswered fails unless every node of ids got answers and all from want.
func onlyAnswered(t *testing.T, what string, answers map[string]map[string]int, ids []string, want string) {
	t.Helper()
	for _, id := range ids {
		a := answers[id]
		total := 0
		for k, v := range a {
			total += v
			if k != want {
				t.Errorf("%s: node %s got %d answer(s) %q, want only %s (%s)", what, id, v, k, want, dataplane.Format(answers))
			}
		}
		if total == 0 {
			t.Errorf("%s: node %s made no call", what, id)
		}
	}
}

func ids(cs []*xdsclient.Client) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.NodeID())
	}
	return out
}

func rolloutOf(st status.Status, rev string) (status.Rollout, bool) {
	if st.Rollout == nil || st.Rollout.Revision != rev {
		return status.Rollout{}, false
	}
	return *st.Rollout, true
}

func testLog(t *testing.T) *slog.Logger {
	if os.Getenv("GITXDS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return nil
}

// TestRolloutMetricGate: a good change reaches the canary group, is
// analysed with a real Prometheus while it bakes, then reaches the stable
// group; a change whose gate fails reaches only the canary group, which is
// put back on the last good version while the stable group never sees it,
// and is not retried without a new commit; its git revert then applies.
func TestRolloutMetricGate(t *testing.T) {
	start := time.Now()
	dp, err := dataplane.StartMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	// Prometheus takes ~5 s to scrape a new target: start it first.
	pm := prom.StartT(t, prom.Options{Targets: []string{dp.Addr()}})

	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr(), "C": stack.FreeAddr()}
	s, err := stack.Start(context.Background(), stack.Options{
		Files:     rolloutRepo(ups, "a", policy("5s", "3s", errorRateGate(pm.URL))),
		Upstreams: ups,
		Interval:  100 * time.Millisecond,
		Log:       testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	head := "main@sha1:" + must[string](t)(s.Repo.Head())
	must[status.Status](t)(s.WaitApplied(20*time.Second, head))
	g := clients(ctx, t, s, 2, "A")
	traffic := dataplane.StartTraffic(dp, g.callers(), host, 50*time.Millisecond, 2*time.Second)
	defer traffic.Stop()
	if err := pm.WaitScraped(ctx, 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("set up in %s (Prometheus scraping the data plane)", time.Since(start).Round(time.Millisecond))

	// (a) A good change: canary first, analysed while it bakes, then all.
	traffic.Reset()
	good := must[string](t)(s.Commit("route to b", map[string]*string{"teams/echo/routes.yaml": ptr(routeTo("b"))}))
	st := must[status.Status](t)(s.WaitStatus(20*time.Second, "canary baking with gate values", func(st status.Status) bool {
		ro, ok := rolloutOf(st, good)
		return ok && ro.Stage == "canary" && ro.Stages[0].Phase == "Baking" &&
			len(ro.Stages[0].Gates) == 1 && ro.Stages[0].Gates[0].Value != nil
	}))
	bakeAnswers := traffic.Answers()
	canaryStage := st.Rollout.Stages[0]
	gv := canaryStage.Gates[0]
	t.Logf("(a) canary baking: nodes %v, acked %d, gate %s = %g (ok %v)", canaryStage.Nodes, canaryStage.Acked, gv.Name, *gv.Value, gv.OK)
	if strings.Join(canaryStage.Nodes, ",") != "canary-1,canary-2" || canaryStage.Acked != 2 || !gv.OK {
		t.Fatalf("(a) canary stage %+v", canaryStage)
	}
	if c := readyCond(t, st); c.Status != metav1.ConditionFalse || c.Reason != status.ReasonRollingOut || !strings.Contains(c.Message, "rolling out "+good) {
		t.Errorf("(a) Ready while the canary bakes: %s %s %q", c.Status, c.Reason, c.Message)
	}
	// While the canary bakes, the stable group is still on A.
	onlyAnswered(t, "(a) stable group during the canary bake", bakeAnswers, ids(g.stable), "A")
	for _, id := range ids(g.canary) {
		if bakeAnswers[id]["B"] == 0 {
			t.Errorf("(a) canary %s not answered by B during its bake: %s", id, dataplane.Format(bakeAnswers))
		}
	}
	st = must[status.Status](t)(s.WaitApplied(20*time.Second, good))
	if c := readyCond(t, st); c.Status != metav1.ConditionTrue {
		t.Fatalf("(a) after the rollout: Ready %s %q", c.Status, c.Message)
	}
	ro := *st.Rollout
	if ro.Phase != "Succeeded" || ro.Stages[0].Phase != "Passed" || ro.Stages[1].Phase != "Passed" || ro.FastPath != "" {
		t.Fatalf("(a) rollout %+v", ro)
	}
	t.Logf("(a) %s rolled out in %s: %s", good, time.Since(ro.StartedAt).Round(time.Millisecond), ro.Message)
	waitAll(ctx, t, g.all(), "B")
	for id, a := range traffic.Answers() {
		for k, n := range a {
			switch {
			case k == dataplane.RaceAnswer:
				t.Logf("(a) node %s: %d call(s) failed by gRPC-Go's own cluster-switch race (dataplane.GRPCGoClusterRace)", id, n)
			case strings.HasPrefix(k, "error"):
				t.Errorf("(a) node %s saw errors during a good rollout: %v", id, a)
			}
		}
	}

	// (b) A change whose gate fails: its backend C answers every call with
	// UNAVAILABLE, so the canary's error rate rises.
	s.Upstreams["C"].SetFailure(codes.Unavailable, -1)
	traffic.Reset()
	bad := must[string](t)(s.Commit("route to c", map[string]*string{"teams/echo/routes.yaml": ptr(routeTo("c"))}))
	st = must[status.Status](t)(s.WaitStatus(30*time.Second, "bad revision rolled back", func(st status.Status) bool {
		c := st.Get(status.Ready)
		return st.LastAttemptedRevision == bad && c != nil && c.Reason == status.ReasonRolloutFailed
	}))
	rc := readyCond(t, st)
	t.Logf("(b) Ready=%s %s: %s", rc.Status, rc.Reason, rc.Message)
	for _, want := range []string{bad, "stage canary", "metric error-rate", "out of bounds", "max 0.5", "canary-1"} {
		if !strings.Contains(rc.Message, want) {
			t.Errorf("(b) Ready message %q does not say %q", rc.Message, want)
		}
	}
	if rc.Status != metav1.ConditionFalse {
		t.Errorf("(b) Ready %s, want False", rc.Status)
	}
	if st.LastAppliedRevision != good {
		t.Errorf("(b) lastAppliedRevision %s, want %s", st.LastAppliedRevision, good)
	}
	ro = *st.Rollout
	if ro.Revision != bad || ro.Phase != "Failed" || ro.Stages[0].Phase != "Failed" || ro.Stages[1].Phase != "Pending" {
		t.Errorf("(b) rollout %+v", ro)
	}
	if gates := ro.Stages[0].Gates; len(gates) != 1 || gates[0].Value == nil || gates[0].OK {
		t.Errorf("(b) canary gate %+v, want a value out of bounds", gates)
	} else {
		t.Logf("(b) canary gate %s = %g (max 0.5)", gates[0].Name, *gates[0].Value)
	}
	if n := len(st.FailedRevisions); n == 0 || st.FailedRevisions[n-1].Revision != bad || st.FailedRevisions[n-1].Reason != "MetricGate" {
		t.Errorf("(b) failedRevisions %+v", st.FailedRevisions)
	}
	// The canary group is back on B (the last good version).
	waitAll(ctx, t, g.canary, "B")
	failed := traffic.Answers()
	onlyAnswered(t, "(b) stable group", failed, ids(g.stable), "B")
	for _, id := range ids(g.canary) {
		if failed[id]["error: Unavailable"] == 0 {
			t.Errorf("(b) canary %s never reached C: %s", id, dataplane.Format(failed))
		}
	}

	// No retry without a new commit: ten poll intervals later, the same
	// failed rollout, and nothing moved.
	traffic.Reset()
	time.Sleep(time.Second)
	later := s.Status()
	if later.Rollout == nil || !later.Rollout.StartedAt.Equal(ro.StartedAt) || later.Rollout.Phase != "Failed" ||
		later.LastAttemptedRevision != bad || later.LastAppliedRevision != good {
		t.Errorf("(b) a rollout started without a new commit: %+v (attempted %s, applied %s)", later.Rollout, later.LastAttemptedRevision, later.LastAppliedRevision)
	}
	onlyAnswered(t, "(b) after the rollback", traffic.Answers(), ids(g.all()), "B")

	// (c) git revert of the bad commit: served config equals the last good
	// version, so it applies without a rollout and says so.
	traffic.Reset()
	reverted := must[string](t)(s.Revert(bad))
	st = must[status.Status](t)(s.WaitApplied(20*time.Second, reverted))
	rc = readyCond(t, st)
	t.Logf("(c) Ready=%s %s: %s", rc.Status, rc.Reason, rc.Message)
	if rc.Status != metav1.ConditionTrue || st.LastAttemptedRevision != reverted {
		t.Fatalf("(c) after git revert: Ready %s (%q), attempted %s; want True at %s", rc.Status, rc.Message, st.LastAttemptedRevision, reverted)
	}
	// The bad commit never served, so its revert changes nothing served:
	// no rollout at all (not even the fast path, which (d) covers).
	if !strings.Contains(rc.Message, "no change to what is served") || (st.Rollout != nil && st.Rollout.Revision == reverted) {
		t.Errorf("(c) the revert of a commit that never served: Ready %q, rollout %+v; want no change and no rollout", rc.Message, st.Rollout)
	}
	time.Sleep(300 * time.Millisecond)
	onlyAnswered(t, "(c) after the revert", traffic.Answers(), ids(g.all()), "B")

	// (d) git revert of the good commit, which was serving: what it serves
	// equals the first revision, which completed a rollout, so it goes to
	// every node at once (the fast path), without the canary's 3 s bake,
	// and says why.
	reverted = must[string](t)(s.Revert(good))
	st = must[status.Status](t)(s.WaitApplied(20*time.Second, reverted))
	ro = *st.Rollout
	t.Logf("(d) Ready: %s; rollout %s, fast path: %s", readyCond(t, st).Message, ro.Phase, ro.FastPath)
	if ro.Revision != reverted || ro.Phase != "Succeeded" || !strings.Contains(ro.FastPath, head) {
		t.Fatalf("(d) revert of a serving change: rollout %+v, want Succeeded by the fast path naming %s", ro, head)
	}
	// One stage holding every node, not the policy's canary then all.
	if len(ro.Stages) != 1 || ro.Stages[0].Name != "all" || len(ro.Stages[0].Nodes) != len(g.all()) || ro.Stages[0].Bake != "" {
		t.Errorf("(d) fast path stages %+v, want one stage of all %d nodes without a bake", ro.Stages, len(g.all()))
	}
	if c := readyCond(t, st); c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "every node at once") {
		t.Errorf("(d) Ready %s %q does not say the revert went to every node at once", c.Status, c.Message)
	}
	waitAll(ctx, t, g.all(), "A")
	t.Logf("test time %s", time.Since(start).Round(time.Millisecond))
}

// poisonGRPCRoutes is the translator's seam of the NACK test: it wraps
// translate.Translate and, for a revision that routes to the Backend
// "poison", gives gRPC nodes a route whose weighted_clusters total 0 —
// something gRPC-Go's xDS client rejects (a NACK) though the user could not
// have written it.
func poisonGRPCRoutes(x *ir.IR, revision string) (*snapshot.Set, error) {
	set, err := translate.Translate(x, revision)
	if err != nil {
		return nil, err
	}
	const poison = "echo/poison"
	classes := map[snapshot.Class]*snapshot.Resources{}
	poisoned := false
	for c, res := range set.Classes {
		cp := *res
		if c == snapshot.GRPC {
			cp.Routes = nil
			for _, rc := range res.Routes {
				rc = proto.Clone(rc).(*routev3.RouteConfiguration)
				for _, vh := range rc.GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						if a := r.GetRoute(); a != nil && a.GetCluster() == poison {
							a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
								Clusters: []*routev3.WeightedCluster_ClusterWeight{{Name: poison, Weight: wrapperspb.UInt32(0)}},
							}}
							poisoned = true
						}
					}
				}
				cp.Routes = append(cp.Routes, rc)
			}
		}
		classes[c] = &cp
	}
	if !poisoned {
		return set, nil
	}
	return snapshot.New(set.Revision, classes), nil
}

var _ pipeline.TranslateFunc = poisonGRPCRoutes

// TestRolloutNACKFromRealClient: a real gRPC client rejects the canary's
// new routes; every node goes back to the last good version, status names
// the node and the NACK, and the rejected version is sent once, not in a
// loop.
func TestRolloutNACKFromRealClient(t *testing.T) {
	start := time.Now()
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr(), "POISON": stack.FreeAddr()}
	s, err := stack.Start(context.Background(), stack.Options{
		Files:     rolloutRepo(ups, "a", policy("5s", "1s", "")),
		Upstreams: ups,
		Interval:  100 * time.Millisecond,
		Translate: poisonGRPCRoutes,
		Log:       testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	head := "main@sha1:" + must[string](t)(s.Repo.Head())
	must[status.Status](t)(s.WaitApplied(20*time.Second, head))
	g := clients(ctx, t, s, 1, "A")
	dp, err := dataplane.StartMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	traffic := dataplane.StartTraffic(dp, g.callers(), host, 50*time.Millisecond, 2*time.Second)
	defer traffic.Stop()

	var mu sync.Mutex
	var events []xds.Event
	evc, unsubscribe := s.Daemon.XDS.Subscribe()
	defer unsubscribe()
	go func() {
		for ev := range evc {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		}
	}()

	bad := must[string](t)(s.Commit("route to poison", map[string]*string{"teams/echo/routes.yaml": ptr(routeTo("poison"))}))
	st := must[status.Status](t)(s.WaitStatus(20*time.Second, "NACK rolled back", func(st status.Status) bool {
		c := st.Get(status.Ready)
		return st.LastAttemptedRevision == bad && c != nil && c.Reason == status.ReasonRolloutFailed
	}))
	failedAt := time.Now()
	rc := readyCond(t, st)
	t.Logf("Ready=%s %s: %s", rc.Status, rc.Reason, rc.Message)
	for _, want := range []string{"stage canary", "node canary-1", "rejected", "no valid cluster in WeightedCluster"} {
		if !strings.Contains(rc.Message, want) {
			t.Errorf("Ready message does not say %q", want)
		}
	}
	if rc.Status != metav1.ConditionFalse || st.LastAppliedRevision != head {
		t.Errorf("Ready %s, lastAppliedRevision %s; want False and %s", rc.Status, st.LastAppliedRevision, head)
	}
	if n := len(st.FailedRevisions); n == 0 || st.FailedRevisions[n-1].Reason != "NACK" {
		t.Errorf("failedRevisions %+v", st.FailedRevisions)
	}
	badHash := st.Rollout.Hash
	var badRDS string
	// Watch for re-sends: every response of the rejected version reaches
	// a gRPC client, which NACKs it; a hot loop would show as many NACKs.
	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	nacks := map[string]int{}
	for _, ev := range events {
		if ev.Kind == xds.NACK {
			nacks[ev.NodeID]++
			badRDS = ev.Version
			if ev.TypeURL != resource.RouteType {
				t.Errorf("NACK of %s: %+v", ev.TypeURL, ev)
			}
		}
	}
	for _, ev := range events {
		if ev.NodeID != "canary-1" && ev.Version == badRDS {
			t.Errorf("%s got the rejected version: %+v", ev.NodeID, ev)
		}
	}
	mu.Unlock()
	t.Logf("NACKs in the %s after the rollback: %v", time.Since(failedAt).Round(time.Millisecond), nacks)
	if nacks["canary-1"] != 1 || len(nacks) != 1 {
		t.Errorf("NACKs %v, want exactly one, from canary-1 (the rejected version was re-sent)", nacks)
	}
	info, ok := s.Daemon.XDS.Node("canary-1")
	if !ok {
		t.Fatal("canary-1 not connected")
	}
	if _, rejected := info.Failed[badHash]; !rejected || info.Served == nil || info.Served.Hash() == badHash || !info.HasACKed(info.Served) {
		t.Errorf("canary-1: failed %v, served %v, types %+v; want the rejected hash %s recorded and the last good served and ACKed", info.Failed, info.Served.Hash(), info.Types, badHash)
	}
	if r := info.Types[resource.RouteType].LastNACK; r == nil || r.Version != badRDS {
		t.Errorf("canary-1 last RDS NACK %+v", r)
	}
	stable, _ := s.Daemon.XDS.Node("stable-1")
	if stable.Types[resource.RouteType].ACKed == badRDS || len(stable.Failed) != 0 {
		t.Errorf("stable-1 saw the rejected revision: %+v", stable.Types)
	}
	// Traffic never moved: the client kept the routes it had.
	onlyAnswered(t, "traffic", traffic.Answers(), ids(g.all()), "A")
	t.Logf("test time %s", time.Since(start).Round(time.Millisecond))
}

// TestRolloutKilledMidwayGitUnreachable: gitxds is killed while the canary
// bakes a new revision and restarted with Git unreachable; a new client
// gets the last good config within a second, the canary goes back to it,
// and when Git is back the rollout starts over from the canary stage.
func TestRolloutKilledMidwayGitUnreachable(t *testing.T) {
	start := time.Now()
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr()}
	s, err := stack.Start(context.Background(), stack.Options{
		Files:     rolloutRepo(ups, "a", policy("5s", "60s", "")),
		Upstreams: ups,
		Interval:  100 * time.Millisecond,
		Log:       testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	head := "main@sha1:" + must[string](t)(s.Repo.Head())
	must[status.Status](t)(s.WaitApplied(20*time.Second, head))
	g := clients(ctx, t, s, 1, "A")

	next := must[string](t)(s.Commit("route to b", map[string]*string{"teams/echo/routes.yaml": ptr(routeTo("b"))}))
	must[status.Status](t)(s.WaitStatus(20*time.Second, "canary baking", func(st status.Status) bool {
		ro, ok := rolloutOf(st, next)
		return ok && ro.Stages[0].Phase == "Baking"
	}))
	waitAll(ctx, t, g.canary, "B")
	assertAnswers(ctx, t, g.stable[0], "A", 5)

	// Kill mid-rollout; Git goes away; restart on the same xDS address.
	xdsAddr := s.Daemon.XDSAddr
	s.StopDaemon()
	s.Git.Stop()
	restart := time.Now()
	if err := s.StartDaemonAt("", xdsAddr); err != nil {
		t.Fatal(err)
	}
	started := time.Since(restart)
	c := xdsclient.NewT(t, xdsclient.Options{ServerAddr: xdsAddr, NodeID: "new-1", Metadata: map[string]string{"rollout-group": "stable"}})
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	got, err := c.Call(cctx, host, nil)
	ccancel()
	served := time.Since(restart)
	if err != nil || got != "A" {
		t.Fatalf("new client after restart: %q, %v; want A (the last good config)", got, err)
	}
	t.Logf("restart with Git unreachable: daemon up in %s, new client served the last good config %s %s after the restart began",
		started.Round(time.Microsecond), head, served.Round(time.Microsecond))
	if served > time.Second {
		t.Errorf("new client got the last good config after %s, want within 1s", served)
	}
	st := s.Status()
	if st.LastAppliedRevision != head {
		t.Errorf("after restart lastAppliedRevision %s, want %s", st.LastAppliedRevision, head)
	}
	// The canary, which had the unfinished revision, reconnects to the last
	// good version too (gRPC's reconnect backoff decides when).
	reconnect := time.Now()
	waitAll(ctx, t, g.canary, "A")
	t.Logf("canary-1 back on the last good config %s after it reconnected (waited %s)", head, time.Since(reconnect).Round(time.Millisecond))
	assertAnswers(ctx, t, g.stable[0], "A", 5)
	st = must[status.Status](t)(s.WaitStatus(10*time.Second, "source error", func(st status.Status) bool { return st.Source.LastError != "" }))
	if st.LastAppliedRevision != head || (st.Rollout != nil && st.Rollout.Phase == "Progressing") {
		t.Errorf("with Git unreachable: applied %s, rollout %+v", st.LastAppliedRevision, st.Rollout)
	}

	// Git is back: the rollout starts over, from the canary stage.
	if err := s.Git.Start(); err != nil {
		t.Fatal(err)
	}
	s.Trigger()
	st = must[status.Status](t)(s.WaitStatus(20*time.Second, "rollout restarted", func(st status.Status) bool {
		ro, ok := rolloutOf(st, next)
		return ok && ro.Stage == "canary" && ro.Stages[0].Phase == "Baking"
	}))
	t.Logf("Git back: rollout of %s restarted at stage %s (nodes %v)", next, st.Rollout.Stage, st.Rollout.Stages[0].Nodes)
	waitAll(ctx, t, g.canary, "B")
	assertAnswers(ctx, t, g.stable[0], "A", 5)
	assertAnswers(ctx, t, c, "A", 5)
	t.Logf("test time %s", time.Since(start).Round(time.Millisecond))
}
