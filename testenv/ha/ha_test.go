package ha_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/leader"
	"gitxds.dev/gitxds/testenv/ha"
	"gitxds.dev/gitxds/testenv/stack"
)

func TestMain(m *testing.M) { ha.Main(m) }

func epoch(t *testing.T, c *ha.Cluster) int64 {
	t.Helper()
	l, err := c.Kube.CoordinationV1().Leases(c.Namespace).Get(context.Background(), ha.Lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := strconv.ParseInt(l.Annotations[leader.EpochAnnotation], 10, 64)
	if err != nil {
		t.Fatalf("Lease epoch %q: %v", l.Annotations[leader.EpochAnnotation], err)
	}
	return e
}

// The harness itself: three `gitxds serve --leader-elect --kubeconfig`
// processes, each on its own state directory, elect one leader through
// the real API server, which serves a real gRPC client the route; stopped,
// it hands the Lease over to another replica at a higher epoch; killed,
// the next leader is replaced once its Lease expires.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ups := map[string]string{"a": stack.FreeAddr(), "b": stack.FreeAddr()}
	c := ha.Start(t, ha.Options{Files: ha.RolloutRepo(ups["a"], ups["b"], "10s", "1s"), Upstreams: ups})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := c.WaitLeader(30 * time.Second)
	e1 := epoch(t, c)
	dirs := map[string]bool{}
	for _, r := range c.Replicas {
		if !r.Healthy(ctx) {
			t.Errorf("%s not healthy", r.Name)
		}
		dirs[r.StateDir] = true
	}
	if len(dirs) != len(c.Replicas) {
		t.Errorf("state directories shared: %v", dirs)
	}
	if f := c.Followers(ctx); len(f) != len(c.Replicas)-1 {
		t.Errorf("%d followers", len(f))
	}
	n := l.Client(t, "stable-1", map[string]string{"rollout-group": "stable"})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := n.WaitFor(wctx, ha.Host, "a", nil); err != nil {
		t.Fatalf("the leader %s: %v", l.Name, err)
	}

	if !l.Stop(30 * time.Second) {
		t.Fatalf("%s did not stop on SIGTERM", l.Name)
	}
	next := c.WaitLeader(30 * time.Second)
	if next == l {
		t.Fatalf("%s still leads after it stopped", l.Name)
	}
	if e2 := epoch(t, c); e2 <= e1 {
		t.Errorf("epoch %d after %d", e2, e1)
	}
	e2 := epoch(t, c)
	t.Logf("%s led at epoch %d; %s took over at %d", l.Name, e1, next.Name, e2)

	// Killed, the leader releases nothing: another replica takes the
	// Lease once it expires, at a higher epoch still.
	next.Kill()
	third := c.WaitLeader(30 * time.Second)
	if third == next || third == l {
		t.Fatalf("%s leads after %s was killed", third.Name, next.Name)
	}
	if e3 := epoch(t, c); e3 <= e2 {
		t.Errorf("epoch %d after %d", e3, e2)
	}
}
