package ha_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"gitxds.dev/gitxds/reconciler/kubestate"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/ha"
	"gitxds.dev/gitxds/testenv/kubeapi"
	"gitxds.dev/gitxds/testenv/stack"
)

// scenario marks a scenario of the fleet-wide rollout (issue: high
// availability that keeps the rollout): it runs whenever the Kubernetes
// API server's binaries are built (testenv/kubeapi), and fails instead of
// skipping without them when GITXDS_REQUIRE_KUBE=1, as .ci/run sets it.
func scenario(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes")
	}
	kubeapi.Require(t)
}

// writes counts the writes of the FleetRollout and the ReplicaReports the
// API server reports (watch events) until stop is called.
func writes(t *testing.T, c *ha.Cluster) (stop func() (rollouts, reports int)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	counts := make(chan [2]int, 1)
	var ws [2]watch.Interface
	for i, res := range []string{"fleetrollouts", "replicareports"} {
		gvr := kubestate.FleetRollouts
		if i == 1 {
			gvr = kubestate.ReplicaReports
		}
		w, err := c.Dynamic.Resource(gvr).Namespace(c.Namespace).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			cancel()
			t.Fatalf("watch %s: %v", res, err)
		}
		ws[i] = w
	}
	go func() {
		var n [2]int
		// The initial ADDED events of existing objects are not writes of
		// this rollout: a watch without resourceVersion starts with them.
		seen := [2]map[string]bool{{}, {}}
		for {
			select {
			case ev, ok := <-ws[0].ResultChan():
				if !ok {
					counts <- n
					return
				}
				n[0] += count(ev, seen[0])
			case ev, ok := <-ws[1].ResultChan():
				if !ok {
					counts <- n
					return
				}
				n[1] += count(ev, seen[1])
			}
		}
	}()
	return func() (int, int) {
		cancel()
		ws[0].Stop()
		ws[1].Stop()
		n := <-counts
		return n[0], n[1]
	}
}

func count(ev watch.Event, seen map[string]bool) int {
	o, ok := ev.Object.(metav1.Object)
	if !ok {
		return 0
	}
	if ev.Type == watch.Added && !seen[o.GetName()] && o.GetCreationTimestamp().Time.Before(time.Now().Add(-time.Second)) {
		seen[o.GetName()] = true
		return 0
	}
	seen[o.GetName()] = true
	if ev.Type == watch.Added || ev.Type == watch.Modified {
		return 1
	}
	return 0
}

// TestCanaryOnFollower: the only canary node is connected to a follower.
// The canary stage is fleet-wide: that node gets the new revision first,
// while the other nodes — on the leader and on the other follower — keep
// the old one through the bake; then every node moves, and the
// FleetRollout says Succeeded with every replica's report at its epoch and
// hash. (Before the fleet-wide rollout, the leader's canary stage matched
// none of its own nodes and passed at once, and the follower's canary
// moved last.)
func TestCanaryOnFollower(t *testing.T) {
	scenario(t)
	c, ctx, l, fs := startRollout(t, "10s", "5s", 3*time.Minute)
	canary := fs[0].Client(t, "canary-1", map[string]string{"rollout-group": "canary"})
	stable := []interface {
		WaitFor(context.Context, string, string, map[string]string) error
		Call(context.Context, string, map[string]string) (string, error)
		NodeID() string
	}{
		l.Client(t, "stable-1", map[string]string{"rollout-group": "stable"}),
		fs[1].Client(t, "stable-2", map[string]string{"rollout-group": "stable"}),
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := canary.WaitFor(wctx, ha.Host, "a", nil); err != nil {
		t.Fatalf("canary-1 on %s: %v", fs[0].Name, err)
	}
	for _, s := range stable {
		if err := s.WaitFor(wctx, ha.Host, "a", nil); err != nil {
			t.Fatal(err)
		}
	}

	stop := writes(t, c)
	rev, err := c.Commit(ctx, "route to b", map[string]*string{"teams/echo/routes.yaml": ha.Route("b")})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	if err := canary.WaitFor(cctx, ha.Host, "b", nil); err != nil {
		t.Fatalf("the canary on a follower did not get the new revision: %v", err)
	}
	canaryAt := time.Since(began)
	// The canary bakes (5 s): the others still answer a.
	for _, s := range stable {
		if got, err := s.Call(ctx, ha.Host, nil); err != nil || got != "a" {
			t.Errorf("%s answered by %q (%v) while the canary bakes, want a", s.NodeID(), got, err)
		}
	}
	st := c.WaitRollout(5*time.Second, "at the canary stage", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.StageName == "canary"
	})
	if st.Phase != status.RolloutProgressing && st.Phase != status.RolloutPaused {
		t.Errorf("phase %s during the canary's bake", st.Phase)
	}
	for _, s := range stable {
		if err := s.WaitFor(cctx, ha.Host, "b", nil); err != nil {
			t.Fatal(err)
		}
	}
	allAt := time.Since(began)
	final := c.WaitRollout(30*time.Second, "Succeeded", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.Phase == status.RolloutSucceeded
	})
	rw, rr := stop()
	reports, err := c.Reports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != len(c.Replicas) {
		t.Errorf("%d reports, want %d", len(reports), len(c.Replicas))
	}
	for _, r := range reports {
		if r.Epoch != final.Epoch || r.RenderedHash != final.Hash {
			t.Errorf("report of %s: epoch %d hash %s, want %d %s", r.Replica, r.Epoch, r.RenderedHash, final.Epoch, final.Hash)
		}
	}
	t.Logf("canary on %s moved after %s, every node after %s; writes during the rollout: FleetRollout %d, ReplicaReports %d (%d replicas, 2 stages)",
		fs[0].Name, canaryAt.Round(time.Millisecond), allAt.Round(time.Millisecond), rw, rr, len(c.Replicas))
}

type node interface {
	WaitFor(context.Context, string, string, map[string]string) error
	Call(context.Context, string, map[string]string) (string, error)
	NodeID() string
}

// TestPausedLeaderFenced: the leader is frozen (SIGSTOP) while its canary
// bakes, past its Lease; another replica takes over at a higher epoch and
// the rollout is aborted there, every node back on the old revision. The
// ex-leader, resumed, still believes for a moment that it leads and that
// its bake goes on: it moves no node (its writes are fenced), the
// FleetRollout keeps the new epoch, and it exits.
func TestPausedLeaderFenced(t *testing.T) {
	scenario(t)
	c, ctx, l, fs := startRollout(t, "10s", "30s", 3*time.Minute)
	nodes := []node{
		fs[0].Client(t, "canary-1", map[string]string{"rollout-group": "canary"}),
		fs[1].Client(t, "stable-1", map[string]string{"rollout-group": "stable"}),
		l.Client(t, "stable-2", map[string]string{"rollout-group": "stable"}),
	}
	for _, n := range nodes {
		wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
		err := n.WaitFor(wctx, ha.Host, "a", nil)
		wcancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	rev, err := c.Commit(ctx, "route to b", map[string]*string{"teams/echo/routes.yaml": ha.Route("b")})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := nodes[0].WaitFor(wctx, ha.Host, "b", nil); err != nil {
		t.Fatal(err)
	}
	baking := c.WaitRollout(10*time.Second, "baking the canary", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.StageName == "canary" && s.BakeUntil != nil
	})

	l.Pause()
	next := c.WaitNewLeader(l, 30*time.Second)
	e2 := epoch(t, c)
	if e2 <= baking.Epoch {
		t.Fatalf("new leader's epoch %d, the paused one's %d", e2, baking.Epoch)
	}
	if err := next.Post(ctx, "/rollout/abort"); err != nil {
		t.Fatal(err)
	}
	aborted := c.WaitRollout(30*time.Second, "aborted by the new leader", func(s rollout.FleetState) bool {
		return s.Epoch == e2 && s.Phase.Final() && s.Phase != status.RolloutSucceeded
	})
	for _, n := range nodes {
		if err := n.WaitFor(wctx, ha.Host, "a", nil); err != nil {
			t.Fatalf("after the abort: %v", err)
		}
	}

	l.Resume()
	exited := l.Wait(30 * time.Second)
	// Whatever the ex-leader tried meanwhile, no node moved and the
	// FleetRollout is the new leader's.
	for _, n := range nodes {
		for range 5 {
			if got, err := n.Call(ctx, ha.Host, nil); err != nil || got != "a" {
				t.Errorf("%s answered by %q (%v) after the ex-leader resumed, want a", n.NodeID(), got, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	st, _, err := c.Rollout(ctx)
	if err != nil || st.Epoch != e2 || st.Phase != aborted.Phase {
		t.Errorf("FleetRollout after the ex-leader resumed: epoch %d phase %s (%v), want %d %s", st.Epoch, st.Phase, err, e2, aborted.Phase)
	}
	if !exited {
		t.Errorf("the ex-leader %s still runs 30 s after it resumed", l.Name)
	}
	t.Logf("%s paused at epoch %d; %s took over at %d and aborted (%s); %s resumed and exited: %v", l.Name, baking.Epoch, next.Name, e2, aborted.Phase, l.Name, exited)
}

// TestLeaderKilledMidBake: the leader is killed (SIGKILL: no release, no
// last write) while the canary, on a follower, bakes, and restarted as the
// kubelet would. Once its Lease expires another replica leads at a higher
// epoch and resumes the canary stage with the rest of its bake (the same
// deadline): the stable nodes keep the old revision until then, and the
// rollout then succeeds.
func TestLeaderKilledMidBake(t *testing.T) {
	scenario(t)
	c, ctx, l, fs := startRollout(t, "30s", "12s", 3*time.Minute)
	// No node on the leader: a killed replica's nodes would have nowhere
	// to reconnect (their bootstrap names it alone).
	canary := fs[0].Client(t, "canary-1", map[string]string{"rollout-group": "canary"})
	stable := []node{
		fs[0].Client(t, "stable-1", map[string]string{"rollout-group": "stable"}),
		fs[1].Client(t, "stable-2", map[string]string{"rollout-group": "stable"}),
	}
	for _, n := range append([]node{canary}, stable...) {
		wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
		err := n.WaitFor(wctx, ha.Host, "a", nil)
		wcancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	rev, err := c.Commit(ctx, "route to b", map[string]*string{"teams/echo/routes.yaml": ha.Route("b")})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
	defer wcancel()
	if err := canary.WaitFor(wctx, ha.Host, "b", nil); err != nil {
		t.Fatal(err)
	}
	baking := c.WaitRollout(10*time.Second, "baking the canary", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.StageName == "canary" && s.BakeUntil != nil
	})

	l.Kill()
	killedAt := time.Now()
	next := c.WaitNewLeader(l, 30*time.Second)
	// As the kubelet restarts a killed container, in the same pod: the
	// replica comes back under its name, now a follower, and reports.
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	resumed := c.WaitRollout(20*time.Second, "resumed by the new leader", func(s rollout.FleetState) bool {
		return s.Epoch > baking.Epoch
	})
	if resumed.Revision != rev || resumed.StageName != "canary" || resumed.BakeUntil == nil || !resumed.BakeUntil.Equal(*baking.BakeUntil) {
		t.Errorf("resumed %+v, want revision %s at the canary stage, bake until %s", resumed, rev, baking.BakeUntil)
	}
	if time.Until(*baking.BakeUntil) > time.Second {
		for _, n := range stable {
			if got, err := n.Call(ctx, ha.Host, nil); err != nil || got != "a" {
				t.Errorf("%s answered by %q (%v) before the bake's end, want a", n.NodeID(), got, err)
			}
		}
	} else {
		t.Logf("the takeover took until the bake's end: the stable nodes were not checked before it")
	}
	for _, n := range stable {
		if err := n.WaitFor(wctx, ha.Host, "b", nil); err != nil {
			t.Fatal(err)
		}
	}
	movedAt := time.Now()
	if movedAt.Before(*baking.BakeUntil) {
		t.Errorf("the stable nodes moved %s before the bake's end", baking.BakeUntil.Sub(movedAt))
	}
	final := c.WaitRollout(30*time.Second, "Succeeded", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.Phase == status.RolloutSucceeded
	})
	t.Logf("%s killed %s before the bake's end; %s resumed at epoch %d (was %d); stable moved %s after the bake's end; %s",
		l.Name, baking.BakeUntil.Sub(killedAt).Round(time.Millisecond), next.Name, resumed.Epoch, baking.Epoch,
		movedAt.Sub(*baking.BakeUntil).Round(time.Millisecond), final.Phase)
}

// startRollout starts what most scenarios start from: three replicas
// serving ha.RolloutRepo (a canary stage, then every node) with the given
// ackTimeout and bake, routing to upstreams a and b. It returns the
// cluster, a context that ends after timeout (or with the test), the
// leader and its two followers.
func startRollout(t *testing.T, ackTimeout, bake string, timeout time.Duration) (*ha.Cluster, context.Context, *ha.Replica, []*ha.Replica) {
	t.Helper()
	ups := map[string]string{"a": stack.FreeAddr(), "b": stack.FreeAddr()}
	c := ha.Start(t, ha.Options{Files: ha.RolloutRepo(ups["a"], ups["b"], ackTimeout, bake), Upstreams: ups})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	l := c.WaitLeader(30 * time.Second)
	fs := c.Followers(ctx)
	if len(fs) != 2 {
		t.Fatalf("%d followers", len(fs))
	}
	return c, ctx, l, fs
}
