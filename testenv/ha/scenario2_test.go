package ha_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/resolver"

	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/dataplane"
	"gitxds.dev/gitxds/testenv/fleetsim"
	"gitxds.dev/gitxds/testenv/ha"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/xdsclient"
)

// simNode is a simulated node (testenv/fleetsim) on replica r that records
// what it is sent; once it holds the first revision, rejecting makes it
// NACK every version of a type other than the one it holds then (never the
// last good, which it keeps).
type simNode struct {
	*fleetsim.Node
	mu      sync.Mutex
	initial map[string]string
	nackAt  time.Time
	// release, when set, holds the first NACK until it is closed (so that
	// another canary holds the new revision first).
	release chan struct{}
}

func connectSim(t *testing.T, r *ha.Replica, id string, labels map[string]string) *simNode {
	t.Helper()
	n := fleetsim.ConnectT(t, r.XDSAddr, fleetsim.NodeOptions{ID: id, Labels: labels, Record: true})
	return &simNode{Node: n}
}

// hold waits until the node holds a listener, and remembers its versions.
func (n *simNode) hold(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for n.AcceptedVersion(resource.ListenerType) == "" || n.AcceptedVersion(resource.RouteType) == "" {
		if time.Now().After(deadline) {
			t.Fatalf("%s holds no listener and route after %s", n.ID(), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.mu.Lock()
	n.initial = n.Accepted()
	n.mu.Unlock()
}

func (n *simNode) rejectNew() {
	n.Reject(func(typeURL, version string) string {
		n.mu.Lock()
		defer n.mu.Unlock()
		if v, ok := n.initial[typeURL]; ok && v == version {
			return ""
		}
		if n.nackAt.IsZero() {
			if n.release != nil {
				n.mu.Unlock()
				select {
				case <-n.release:
				case <-time.After(20 * time.Second):
				}
				n.mu.Lock()
			}
			n.nackAt = time.Now()
		}
		return "injected: " + n.ID() + " rejects every new version"
	})
}

// changed lists the responses of a version other than the one the node
// held before the commit.
func (n *simNode) changed() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, r := range n.Log() {
		if v, ok := n.initial[r.TypeURL]; ok && v != r.Version {
			out = append(out, r.TypeURL+"@"+r.Version)
		}
	}
	return out
}

func waitAll(t *testing.T, ctx context.Context, backend string, timeout time.Duration, nodes ...node) {
	t.Helper()
	for _, n := range nodes {
		wctx, cancel := context.WithTimeout(ctx, timeout)
		err := n.WaitFor(wctx, ha.Host, backend, nil)
		cancel()
		if err != nil {
			t.Fatalf("%s not answered by %s: %v", n.NodeID(), backend, err)
		}
	}
}

// watchStable samples the nodes every 100 ms until stop, and reports any
// answer from backend.
func watchStable(ctx context.Context, backend string, nodes ...node) (stop func() []string) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan []string)
	go func() {
		var bad []string
		for ctx.Err() == nil {
			for _, n := range nodes {
				if got, err := n.Call(ctx, ha.Host, nil); err == nil && got == backend {
					bad = append(bad, n.NodeID())
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		done <- bad
	}()
	return func() []string { cancel(); return <-done }
}

// TestFollowerNodeNACKs: a simulated canary node on a follower rejects the
// new revision, beside a real gRPC-Go canary on the other follower and
// stable nodes (real and simulated) on every replica. The leader decides
// Failed (NACK) within a second of the NACK, naming the node; every
// replica rolls back (the real canary answers the old backend again); no
// stable node is ever sent the new version; GET /status on every replica
// shows the rollout Failed with the node named.
func TestFollowerNodeNACKs(t *testing.T) {
	scenario(t)
	c, ctx, l, fs := startRollout(t, "10s", "5s", 3*time.Minute)
	canary, stable := map[string]string{"rollout-group": "canary"}, map[string]string{"rollout-group": "stable"}
	nacker := connectSim(t, fs[0], "sim-canary-nack", canary)
	realCanary := fs[1].Client(t, "canary-real", canary)
	realStable := []node{l.Client(t, "stable-real-0", stable), fs[0].Client(t, "stable-real-1", stable), fs[1].Client(t, "stable-real-2", stable)}
	var simStable []*simNode
	for i, r := range c.Replicas {
		simStable = append(simStable, connectSim(t, r, "sim-stable-"+string(rune('0'+i)), stable))
	}
	waitAll(t, ctx, "a", 60*time.Second, append([]node{realCanary}, realStable...)...)
	for _, n := range append([]*simNode{nacker}, simStable...) {
		n.hold(t, 30*time.Second)
	}
	nacker.release = make(chan struct{})
	nacker.rejectNew()
	// The NACK waits until the real canary answers b: the rollback then
	// moves a node that had the new revision.
	movedCanary := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		movedCanary <- realCanary.WaitFor(wctx, ha.Host, "b", nil)
		close(nacker.release)
	}()

	watch := watchStable(ctx, "b", realStable...)
	rev, err := c.Commit(ctx, "route to b", map[string]*string{"teams/echo/routes.yaml": ha.Route("b")})
	if err != nil {
		t.Fatal(err)
	}
	failed := c.WaitRollout(30*time.Second, "Failed", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.Phase == status.RolloutFailed
	})
	if failed.Reason != status.ReasonNACK || !strings.Contains(failed.Message, nacker.ID()) || !strings.Contains(failed.Message, fs[0].Name) {
		t.Errorf("failed %s: %s, want a NACK naming %s on %s", failed.Reason, failed.Message, nacker.ID(), fs[0].Name)
	}
	nacker.mu.Lock()
	nackAt := nacker.nackAt
	nacker.mu.Unlock()
	var decidedAt time.Time
	for _, f := range failed.Failed {
		if f.Revision == rev {
			decidedAt = f.At
		}
	}
	if nackAt.IsZero() || decidedAt.IsZero() {
		t.Fatalf("NACK at %s, decision at %s", nackAt, decidedAt)
	}
	decision := decidedAt.Sub(nackAt)
	if decision > time.Second {
		t.Errorf("the leader decided %s after the follower node's NACK, want within a second", decision)
	}
	// Rollback: the real canary, which had the new revision, answers a.
	if err := <-movedCanary; err != nil {
		t.Fatalf("the real canary on %s never answered b: %v", fs[1].Name, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	if err := realCanary.WaitFor(rctx, ha.Host, "a", nil); err != nil {
		t.Fatalf("the canary on %s after the rollback: %v", fs[1].Name, err)
	}
	rollback := time.Since(decidedAt)
	time.Sleep(time.Second) // a late move would show now
	if bad := watch(); len(bad) > 0 {
		t.Errorf("stable nodes answered by b: %v", bad)
	}
	for _, n := range simStable {
		if ch := n.changed(); len(ch) > 0 {
			t.Errorf("stable %s was sent %v", n.ID(), ch)
		}
	}
	for _, r := range c.Replicas {
		st, err := r.Status(ctx)
		if err != nil {
			t.Errorf("%s: %v", r.Name, err)
			continue
		}
		if st.Rollout == nil || st.Rollout.Revision != rev || st.Rollout.Phase != status.RolloutFailed || !strings.Contains(st.Rollout.Message, nacker.ID()) {
			t.Errorf("GET /status on %s: rollout %+v, want %s Failed naming %s", r.Name, st.Rollout, rev, nacker.ID())
		}
	}
	t.Logf("NACK on %s (follower) to the leader's decision: %s; decision to the canary on %s back on a: %s; %s",
		fs[0].Name, decision.Round(time.Millisecond), fs[1].Name, rollback.Round(time.Millisecond), failed.Message)
}

// serviceRoute is a second HTTPRoute, to Service web: a Service backendRef
// resolves by DNS to web.echo.svc.<--cluster-domain>, so a replica started
// with another --cluster-domain renders it to another hash.
const serviceRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [web.example]
  rules:
  - backendRefs: [{name: web, port: 80}]
`

// TestVersionSkew: a follower runs with another --cluster-domain (a
// realistic skew: a flag changed on one pod) and renders a revision with a
// Service backendRef to another hash than the leader. The rollout fails
// with VersionSkew naming that replica; no stable node moves (the canary,
// on a replica in step with the leader, may: that is what a canary is
// for); every node is back on the last good.
func TestVersionSkew(t *testing.T) {
	scenario(t)
	c, ctx, l, fs := startRollout(t, "10s", "5s", 3*time.Minute)
	skewed := fs[0]
	if !skewed.Stop(20 * time.Second) {
		t.Fatalf("%s did not stop", skewed.Name)
	}
	skewed.Args = []string{"--cluster-domain", "skewed.example"}
	if err := skewed.Start(); err != nil {
		t.Fatal(err)
	}
	if got := c.WaitLeader(30 * time.Second); got != l {
		t.Fatalf("the leader changed to %s", got.Name)
	}
	canary := fs[1].Client(t, "canary-1", map[string]string{"rollout-group": "canary"})
	stable := []node{l.Client(t, "stable-1", map[string]string{"rollout-group": "stable"}),
		skewed.Client(t, "stable-2", map[string]string{"rollout-group": "stable"})}
	waitAll(t, ctx, "a", 60*time.Second, append([]node{canary}, stable...)...)

	watch := watchStable(ctx, "b", stable...)
	kust := "namespace: echo\nresources: [backends.yaml, routes.yaml, web.yaml]\n"
	web := serviceRoute
	rev, err := c.Commit(ctx, "route to b, and web to Service web", map[string]*string{
		"teams/echo/routes.yaml": ha.Route("b"), "teams/echo/web.yaml": &web, "teams/echo/kustomization.yaml": &kust})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	failed := c.WaitRollout(40*time.Second, "Failed", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.Phase.Final()
	})
	if failed.Phase != status.RolloutFailed || failed.Reason != status.ReasonVersionSkew || !strings.Contains(failed.Message, skewed.Name) {
		t.Errorf("%s %s: %s, want Failed VersionSkew naming %s", failed.Phase, failed.Reason, failed.Message, skewed.Name)
	}
	waitAll(t, ctx, "a", 30*time.Second, append([]node{canary}, stable...)...)
	time.Sleep(time.Second)
	if bad := watch(); len(bad) > 0 {
		t.Errorf("stable nodes answered by b: %v", bad)
	}
	t.Logf("skew on %s decided %s after the commit: %s", skewed.Name, time.Since(began).Round(time.Millisecond), failed.Message)
}

// TestLeaderKilledNotRestarted: the leader (no node on it) is killed while
// the canary bakes and is not restarted: its last report stays, then goes
// stale. The new leader resumes the canary with the rest of its bake, and
// the next stage passes once that report is stale (it has 0 nodes: none of
// them can be pending), well within the stage's ackTimeout; before the
// fix it held the stage until the report was forgotten (GoneAfter, 60 s),
// past the ackTimeout (30 s), and the rollout failed.
//
// Its nodes cannot reconnect to another replica here: a gRPC-Go client's
// bootstrap names one xDS server (the replica's address, as a Service
// would be in a cluster), and with nodes the killed replica's stale report
// would count them as pending until it is forgotten, by design.
func TestLeaderKilledNotRestarted(t *testing.T) {
	scenario(t)
	c, ctx, l, fs := startRollout(t, "30s", "8s", 3*time.Minute)
	canary := fs[0].Client(t, "canary-1", map[string]string{"rollout-group": "canary"})
	stable := []node{fs[0].Client(t, "stable-1", map[string]string{"rollout-group": "stable"}),
		fs[1].Client(t, "stable-2", map[string]string{"rollout-group": "stable"})}
	waitAll(t, ctx, "a", 60*time.Second, append([]node{canary}, stable...)...)
	rev, err := c.Commit(ctx, "route to b", map[string]*string{"teams/echo/routes.yaml": ha.Route("b")})
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, ctx, "b", 60*time.Second, canary)
	baking := c.WaitRollout(10*time.Second, "baking the canary", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.StageName == "canary" && s.BakeUntil != nil
	})
	l.Kill()
	killedAt := time.Now()
	next := c.WaitNewLeader(l, 30*time.Second)
	waitAll(t, ctx, "b", 60*time.Second, stable...)
	movedAt := time.Now()
	if movedAt.Before(*baking.BakeUntil) {
		t.Errorf("the stable nodes moved %s before the bake's end", baking.BakeUntil.Sub(movedAt))
	}
	final := c.WaitRollout(30*time.Second, "Succeeded", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.Phase.Final()
	})
	if final.Phase != status.RolloutSucceeded || final.Epoch <= baking.Epoch {
		t.Errorf("%s at epoch %d (was %d): %s", final.Phase, final.Epoch, baking.Epoch, final.Message)
	}
	t.Logf("%s killed and not restarted; %s led at epoch %d; stable nodes moved %s after the kill (%s after the bake's end); %s",
		l.Name, next.Name, final.Epoch, movedAt.Sub(killedAt).Round(time.Millisecond),
		movedAt.Sub(*baking.BakeUntil).Round(time.Millisecond), final.Phase)
}

// TestGateFailsOnFollower: the RolloutPolicy has a metric gate, the error
// ratio of the stage's nodes as the data plane's query API answers it
// (testenv/dataplane, the PromQL a Prometheus scraping its /metrics would
// answer; the demo uses the same). The only canary is on a follower; the
// new revision routes to a backend that does not answer, so the canary's
// calls fail and the gate fails during the bake. Every replica rolls back
// (the canary answers a again, the stable nodes never left a), and the
// failed revision is not retried: polls and a reconcile later it is still
// the last rollout, Failed, and the canary keeps a.
func TestGateFailsOnFollower(t *testing.T) {
	scenario(t)
	m, err := dataplane.StartMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// b is an address nothing listens on: calls routed there fail.
	ups := map[string]string{"a": stack.FreeAddr()}
	files := ha.RolloutRepo(ups["a"], stack.FreeAddr(), "10s", "8s")
	files["platform/rollout.yaml"] += `  analysis:
    interval: 500ms
    prometheus: {address: "` + m.QueryURL() + `"}
    metrics:
    - name: error-ratio
      query: '` + dataplane.ErrorRatioQuery("{{ .NodeRegex }}", 2*time.Second) + `'
      max: 0.2
`
	c := ha.Start(t, ha.Options{Files: files, Upstreams: ups})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := c.WaitLeader(30 * time.Second)
	fs := c.Followers(ctx)
	canary := fs[0].Client(t, "canary-1", map[string]string{"rollout-group": "canary"})
	stable := []node{l.Client(t, "stable-1", map[string]string{"rollout-group": "stable"}),
		fs[1].Client(t, "stable-2", map[string]string{"rollout-group": "stable"})}
	waitAll(t, ctx, "a", 60*time.Second, append([]node{canary}, stable...)...)
	callers := []dataplane.Caller{canary}
	for _, s := range stable {
		callers = append(callers, s.(dataplane.Caller))
	}
	traffic := dataplane.StartTraffic(m, callers, ha.Host, 100*time.Millisecond, time.Second)
	defer traffic.Stop()

	rev, err := c.Commit(ctx, "route to b", map[string]*string{"teams/echo/routes.yaml": ha.Route("b")})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	failed := c.WaitRollout(40*time.Second, "finished", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.Phase.Final()
	})
	decided := time.Since(began)
	if failed.Phase != status.RolloutFailed || failed.Reason != status.ReasonMetricGate || failed.StageName != "canary" {
		t.Fatalf("%s %s at stage %s: %s, want Failed by the metric gate at the canary stage", failed.Phase, failed.Reason, failed.StageName, failed.Message)
	}
	waitAll(t, ctx, "a", 30*time.Second, canary)
	rolledBack := time.Since(began)
	traffic.Reset()
	// Not retried: the Git poll (500 ms) runs several times, and a
	// reconcile is asked for; the revision stays failed and nothing moves.
	if err := fs[1].Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	traffic.Stop()
	for node, answers := range traffic.Answers() {
		for answer, n := range answers {
			if answer != "a" {
				t.Errorf("%s: %d answer(s) %q after the rollback, want a only", node, n, answer)
			}
		}
	}
	now, _, err := c.Rollout(ctx)
	if err != nil || now.Revision != rev || now.Phase != status.RolloutFailed || now.Epoch != failed.Epoch {
		t.Errorf("FleetRollout after the polls: %s %s epoch %d (%v), want %s Failed epoch %d", now.Revision, now.Phase, now.Epoch, err, rev, failed.Epoch)
	}
	for _, r := range c.Replicas {
		st, err := r.Status(ctx)
		if err != nil {
			t.Errorf("%s: %v", r.Name, err)
			continue
		}
		if st.Rollout == nil || st.Rollout.Revision != rev || st.Rollout.Phase != status.RolloutFailed {
			t.Errorf("GET /status on %s: rollout %+v, want %s Failed", r.Name, st.Rollout, rev)
		}
	}
	t.Logf("gate failed %s after the commit, the canary on %s back on a after %s: %s", decided.Round(time.Millisecond), fs[0].Name,
		rolledBack.Round(time.Millisecond), failed.Message)
}

// noEmptyOrOther lists what the node was sent besides the versions it
// held before: another version, or an empty listener or cluster list.
func (n *simNode) noEmptyOrOther() []string {
	bad := n.changed()
	for _, r := range n.Log() {
		if (r.TypeURL == resource.ListenerType || r.TypeURL == resource.ClusterType) && r.Resources == 0 {
			bad = append(bad, "empty "+r.TypeURL+"@"+r.Version)
		}
	}
	return bad
}

// TestAPIServerUnreachable: the API server is frozen (SIGSTOP: its
// connections stay open and nothing answers, as behind a dead network
// path) for 30 s. What is expected, and asserted:
//   - every replica keeps serving the last good it holds: each node, real
//     and simulated, on every replica, keeps answering a, and no node is
//     sent an empty listener or cluster list, or another version;
//   - the leader cannot renew its Lease: it exits within its renew
//     deadline (3 s) and a few seconds, by design (its leadership state
//     is in its process); restarted as a kubelet would (Supervise), it
//     exits again while the API server is unreachable (serve checks the
//     rollout objects at start) — its nodes keep their last config
//     meanwhile (gRPC-Go keeps the resources it holds when its xDS server
//     is gone) and reconnect when it is back;
//   - the followers keep running (they campaign, and wait);
//   - once the API server answers again, a replica leads at a higher
//     epoch, and a new commit rolls out normally to every node.
func TestAPIServerUnreachable(t *testing.T) {
	scenario(t)
	c, ctx, l, fs := startRollout(t, "10s", "2s", 4*time.Minute)
	e1 := epoch(t, c)
	var nodes []node
	var sims []*simNode
	for i, r := range c.Replicas {
		group := map[string]string{"rollout-group": "stable"}
		if r == fs[0] {
			group = map[string]string{"rollout-group": "canary"}
		}
		nodes = append(nodes, r.Client(t, "real-"+string(rune('0'+i)), group))
		sims = append(sims, connectSim(t, r, "sim-"+string(rune('0'+i)), group))
	}
	waitAll(t, ctx, "a", 60*time.Second, nodes...)
	for _, n := range sims {
		n.hold(t, 30*time.Second)
	}
	restarts := l.Supervise(time.Second)

	api, err := os.FindProcess(c.API.APIServerPID)
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Signal(syscall.SIGCONT) })
	frozenAt := time.Now()
	bad := map[string]int{}
	leaderExited := time.Duration(0)
	for time.Since(frozenAt) < 30*time.Second {
		for _, n := range nodes {
			if got, err := n.Call(ctx, ha.Host, nil); err != nil || got != "a" {
				bad[n.NodeID()]++
			}
		}
		if leaderExited == 0 && !l.Running() {
			leaderExited = time.Since(frozenAt)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, f := range fs {
		if !f.Running() {
			t.Errorf("follower %s exited while the API server was unreachable", f.Name)
		}
	}
	if err := api.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if len(bad) > 0 {
		t.Errorf("calls not answered by a while the API server was unreachable: %v", bad)
	}
	if leaderExited == 0 {
		t.Errorf("the leader %s still ran 30 s after the API server became unreachable (it cannot renew its Lease)", l.Name)
	}

	// The Lease still names the old leadership when the API server comes
	// back: wait for a new one (a higher epoch).
	for epoch(t, c) <= e1 {
		if time.Since(back) > 60*time.Second {
			t.Fatalf("no new leadership 60 s after the API server came back (epoch %d)", e1)
		}
		time.Sleep(200 * time.Millisecond)
	}
	next := c.WaitLeader(30 * time.Second)
	e2 := epoch(t, c)
	for _, n := range sims {
		if b := n.noEmptyOrOther(); len(b) > 0 {
			t.Errorf("%s was sent %v", n.ID(), b)
		}
	}
	// Every replica is up again (the supervised one restarted) before the
	// commit, so that every node takes part.
	deadline := time.Now().Add(60 * time.Second)
	for _, r := range c.Replicas {
		for !r.Ready(ctx) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready 60 s after the API server came back", r.Name)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	n := restarts()
	rev, err := c.Commit(ctx, "route to b", map[string]*string{"teams/echo/routes.yaml": ha.Route("b")})
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, ctx, "b", 60*time.Second, nodes...)
	final := c.WaitRollout(30*time.Second, "Succeeded", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.Phase.Final()
	})
	if final.Phase != status.RolloutSucceeded || final.Epoch != e2 {
		t.Errorf("%s at epoch %d: %s, want Succeeded at %d", final.Phase, final.Epoch, final.Message, e2)
	}
	t.Logf("API server frozen 30 s: the leader %s exited after %s and was restarted %d time(s); %s led at epoch %d (was %d) %s after it came back; the next commit %s",
		l.Name, leaderExited.Round(time.Millisecond), n, next.Name, e2, e1, time.Since(back).Round(time.Second), final.Phase)
}

// replicasResolver resolves its scheme to the replicas' xDS addresses in a
// fixed order, as a Service in front of the replicas would: gRPC-Go's
// pick_first connects to the first that answers, and to the next one when
// that one is gone.
type replicasResolver struct {
	scheme string
	addrs  []string
}

var resolverSeq atomic.Int64

func newReplicasResolver(rs ...*ha.Replica) *replicasResolver {
	b := &replicasResolver{scheme: fmt.Sprintf("gitxds-ha-%d", resolverSeq.Add(1))}
	for _, r := range rs {
		b.addrs = append(b.addrs, r.XDSAddr)
	}
	resolver.Register(b)
	return b
}

func (b *replicasResolver) Target() string { return b.scheme + ":///replicas" }
func (b *replicasResolver) Scheme() string { return b.scheme }
func (b *replicasResolver) Build(_ resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	var st resolver.State
	for _, a := range b.addrs {
		st.Addresses = append(st.Addresses, resolver.Address{Addr: a})
	}
	return noResolve{}, cc.UpdateState(st)
}

type noResolve struct{}

func (noResolve) ResolveNow(resolver.ResolveNowOptions) {}
func (noResolve) Close()                                {}

// TestLeaderKilledNodesReconnect: the leader, with the canary and a stable
// node connected to it, is killed while the canary bakes and is not
// restarted. Its nodes reconnect to the next replica (their xDS server is
// every replica, in order, as behind a Service); the new leader resumes
// the canary with the rest of its bake; the canary keeps its stage on the
// replica it reconnected to (a stage is computed from id and labels), and
// the rollout completes. The killed replica's last report named its nodes
// (ReplicaReport.NodeIDs): once it is stale, the nodes a live replica
// reports are counted there, so the stage after the canary goes on well
// before the report is forgotten (GoneAfter, 60 s), within an ackTimeout
// of 20 s; a node that reconnected nowhere would still count as pending.
func TestLeaderKilledNodesReconnect(t *testing.T) {
	scenario(t)
	c, ctx, l, fs := startRollout(t, "20s", "8s", 4*time.Minute)
	svc := newReplicasResolver(l, fs[0], fs[1])
	client := func(id, group string) node {
		return xdsclient.NewT(t, xdsclient.Options{ServerAddr: svc.Target(), NodeID: id, Metadata: map[string]string{"rollout-group": group}})
	}
	canary := client("canary-1", "canary")
	stable := []node{client("stable-1", "stable"), fs[1].Client(t, "stable-2", map[string]string{"rollout-group": "stable"})}
	waitAll(t, ctx, "a", 60*time.Second, append([]node{canary}, stable...)...)
	waitConnected(t, c, l.Name, 2, 15*time.Second)
	rev, err := c.Commit(ctx, "route to b", map[string]*string{"teams/echo/routes.yaml": ha.Route("b")})
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, ctx, "b", 60*time.Second, canary)
	baking := c.WaitRollout(10*time.Second, "baking the canary", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.StageName == "canary" && s.BakeUntil != nil
	})
	watch := watchStable(ctx, "b", stable...)
	l.Kill()
	killedAt := time.Now()
	next := c.WaitNewLeader(l, 30*time.Second)
	waitConnected(t, c, fs[0].Name, 2, 30*time.Second)
	reconnected := time.Since(killedAt)
	if got, err := canary.Call(ctx, ha.Host, nil); err != nil || got != "b" {
		t.Errorf("the canary, reconnected to %s, answered by %q (%v), want b (its stage kept)", fs[0].Name, got, err)
	}
	for time.Now().Before(*baking.BakeUntil) {
		time.Sleep(100 * time.Millisecond)
	}
	if bad := watch(); len(bad) > 0 {
		t.Errorf("stable nodes answered by b before the canary's bake ended: %v", bad)
	}
	waitAll(t, ctx, "b", 90*time.Second, stable...)
	movedAt := time.Now()
	final := c.WaitRollout(30*time.Second, "finished", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.Phase.Final()
	})
	if final.Phase != status.RolloutSucceeded || final.Epoch <= baking.Epoch {
		t.Errorf("%s at epoch %d (was %d): %s", final.Phase, final.Epoch, baking.Epoch, final.Message)
	}
	if d := movedAt.Sub(killedAt); d >= rollout.DefaultGoneAfter {
		t.Errorf("stable nodes moved %s after the kill: the killed replica's report held the stage until it was forgotten", d)
	}
	t.Logf("%s killed, not restarted; its 2 nodes on %s after %s; %s led; stable nodes moved %s after the kill (%s after the bake's end); %s",
		l.Name, fs[0].Name, reconnected.Round(time.Millisecond), next.Name, movedAt.Sub(killedAt).Round(time.Millisecond),
		movedAt.Sub(*baking.BakeUntil).Round(time.Millisecond), final.Phase)
}

// waitConnected waits until replica's ReplicaReport says n nodes are
// connected to it.
func waitConnected(t *testing.T, c *ha.Cluster, replica string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := connected(t, c, replica)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s reports %d connected node(s) after %s, want %d", replica, got, timeout, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// connected is how many nodes replica's ReplicaReport says are connected
// to it (-1 without a report).
func connected(t *testing.T, c *ha.Cluster, replica string) int {
	t.Helper()
	reports, err := c.Reports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		if r.Replica == replica {
			return r.Connected
		}
	}
	return -1
}
