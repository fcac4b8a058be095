package ha_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/fleetsim"
	"gitxds.dev/gitxds/testenv/ha"
	"gitxds.dev/gitxds/testenv/stack"
)

// envFleet is the number of simulated nodes per replica of TestFleet
// ("1000"); unset, it is skipped.
const envFleet = "GITXDS_HA_FLEET"

// fleetCanaryEvery: node i of every replica's share is a canary when
// i % fleetCanaryEvery == 0 (1 % of the fleet).
const fleetCanaryEvery = 100

// fleetRun is one measured configuration of TestFleet.
type fleetRun struct {
	replicas, perReplica int
	// Rollout: commit → every canary ACKed the new route configuration,
	// → every node ACKed it, → the FleetRollout Succeeded.
	canaries, allAcked, succeeded time.Duration
	// Rollback: commit → the first canary NACK; that NACK → the
	// FleetRollout Failed, → every node of every replica served the last
	// good (GET /nodes).
	firstNACK, failed, lastGood time.Duration
	// Writes of the FleetRollout and of the ReplicaReports (watch events)
	// from the commit to the end, for the rollout and the rollback.
	rolloutWrites, rollbackWrites [2]int
}

// TestFleet measures the fleet-wide rollout with $GITXDS_HA_FLEET
// simulated state of the world nodes (fleetsim) per replica, split evenly
// across three replicas, beside one replica serving the same fleet (three
// times as many nodes), in the same run: rollout latency (a 2-stage
// policy: the canaries by label, then 100 %), rollback latency (the
// canaries NACK), and the writes to the API server of each.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	v := os.Getenv(envFleet)
	if v == "" {
		t.Skipf("a benchmark; set %s=1000 (nodes per replica) to run it", envFleet)
	}
	per, err := strconv.Atoi(v)
	if err != nil || per < fleetCanaryEvery {
		t.Fatalf("%s=%q: want a number of nodes ≥ %d", envFleet, v, fleetCanaryEvery)
	}
	var runs []fleetRun
	// The peer is one replica with the same fleet (3 × per nodes): the
	// same nodes on the same CPUs, so the difference is what coordinating
	// through the API server costs. One replica with per nodes (each
	// replica's share) is measured too, for the cost of the fleet size.
	for _, shape := range []struct{ replicas, per int }{{3, per}, {1, 3 * per}, {1, per}} {
		t.Run(fmt.Sprintf("%dx%d", shape.replicas, shape.per), func(t *testing.T) {
			runs = append(runs, measureFleet(t, shape.replicas, shape.per))
		})
	}
	for _, r := range runs {
		t.Logf("FLEET %d replica(s) × %d nodes: rollout: canaries %s, every node %s, Succeeded %s; writes FleetRollout %d ReplicaReports %d | rollback: first NACK %s after the commit, then Failed %s, every node on last good %s; writes FleetRollout %d ReplicaReports %d",
			r.replicas, r.perReplica, ms(r.canaries), ms(r.allAcked), ms(r.succeeded), r.rolloutWrites[0], r.rolloutWrites[1],
			ms(r.firstNACK), ms(r.failed), ms(r.lastGood), r.rollbackWrites[0], r.rollbackWrites[1])
	}
	for _, peer := range runs[1:] {
		t.Logf("FLEET ratio 3 × %d / 1 × %d: rollout (every node ACKed) %.2f, rollback (NACK → every node on last good) %.2f",
			runs[0].perReplica, peer.perReplica,
			float64(runs[0].allAcked)/float64(peer.allAcked), float64(runs[0].lastGood)/float64(peer.lastGood))
	}
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

func measureFleet(t *testing.T, replicas, per int) fleetRun {
	run := fleetRun{replicas: replicas, perReplica: per}
	ups := map[string]string{"a": stack.FreeAddr(), "b": stack.FreeAddr()}
	c := ha.Start(t, ha.Options{Replicas: replicas, Files: ha.RolloutRepo(ups["a"], ups["b"], "120s", "0s"), Upstreams: ups})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c.WaitLeader(time.Minute)
	labels := func(i int) map[string]string {
		if i%fleetCanaryEvery == 0 {
			return map[string]string{"rollout-group": "canary"}
		}
		return map[string]string{"rollout-group": "stable"}
	}
	// The canaries' NACK rule: set for the rollback only.
	var mu sync.Mutex
	var rejectNew bool
	var good string
	var nackAt time.Time
	rule := func(_, typeURL, version string) string {
		if typeURL != resource.RouteType {
			return ""
		}
		mu.Lock()
		defer mu.Unlock()
		if !rejectNew || version == good {
			return ""
		}
		if nackAt.IsZero() {
			nackAt = time.Now()
		}
		return "fleet: the canary rejects " + version
	}
	var fleets []*fleetsim.Fleet
	var canaries []*fleetsim.Node
	for i, r := range c.Replicas {
		f, err := fleetsim.Start(ctx, per, r.XDSAddr, fleetsim.Options{Prefix: fmt.Sprintf("r%d", i), Labels: labels})
		if err != nil {
			t.Fatalf("fleet on %s: %v", r.Name, err)
		}
		defer f.Close()
		fleets = append(fleets, f)
		for j, n := range f.Nodes() {
			if j%fleetCanaryEvery == 0 {
				canaries = append(canaries, n)
				n.Reject(func(typ, v string) string { return rule(n.ID(), typ, v) })
			}
		}
	}
	routeOf := func() map[*fleetsim.Node]string {
		out := map[*fleetsim.Node]string{}
		for _, f := range fleets {
			for _, n := range f.Nodes() {
				out[n] = n.AcceptedVersion(resource.RouteType)
			}
		}
		return out
	}
	waitAll := func(nodes []*fleetsim.Node, cond func(*fleetsim.Node) bool) time.Time {
		t.Helper()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			ok := true
			for _, n := range nodes {
				if err := n.Err(); err != nil {
					t.Fatalf("node %s: %v", n.ID(), err)
				}
				if !cond(n) {
					ok = false
					break
				}
			}
			if ok {
				return time.Now()
			}
			select {
			case <-ctx.Done():
				t.Fatalf("nodes not there: %v", ctx.Err())
			case <-tick.C:
			}
		}
	}
	var all []*fleetsim.Node
	for _, f := range fleets {
		all = append(all, f.Nodes()...)
	}
	c.WaitRollout(5*time.Minute, "Succeeded (the initial revision)", func(s rollout.FleetState) bool {
		return s.Phase == status.RolloutSucceeded
	})
	waitAll(all, func(n *fleetsim.Node) bool { return n.AcceptedVersion(resource.RouteType) != "" })
	// Let the connection storm settle (reports, GC) before measuring.
	time.Sleep(5 * time.Second)

	// Rollout.
	before := routeOf()
	stop := writes(t, c)
	began := time.Now()
	rev, err := c.Commit(ctx, "route to b", map[string]*string{"teams/echo/routes.yaml": ha.Route("b")})
	if err != nil {
		t.Fatal(err)
	}
	moved := func(n *fleetsim.Node) bool {
		v := n.AcceptedVersion(resource.RouteType)
		return v != "" && v != before[n]
	}
	run.canaries = waitAll(canaries, moved).Sub(began)
	run.allAcked = waitAll(all, moved).Sub(began)
	done := c.WaitRollout(5*time.Minute, "Succeeded", func(s rollout.FleetState) bool {
		return s.Revision == rev && s.Phase == status.RolloutSucceeded
	})
	run.succeeded = time.Since(began)
	run.rolloutWrites[0], run.rolloutWrites[1] = stop()
	good = canaries[0].AcceptedVersion(resource.RouteType)

	// Rollback: the canaries NACK the next route configuration.
	time.Sleep(3 * time.Second)
	mu.Lock()
	rejectNew = true
	mu.Unlock()
	stop = writes(t, c)
	began = time.Now()
	bad := ha.Route("a")
	*bad += "  - matches: [{path: {type: PathPrefix, value: /fleet}}]\n    backendRefs: [{group: gitxds.dev, kind: Backend, name: a}]\n"
	rev2, err := c.Commit(ctx, "a route the canaries NACK", map[string]*string{"teams/echo/routes.yaml": bad})
	if err != nil {
		t.Fatal(err)
	}
	failed := c.WaitRollout(5*time.Minute, "Failed", func(s rollout.FleetState) bool {
		return s.Revision == rev2 && s.Phase == status.RolloutFailed
	})
	failedAt := time.Now()
	if failed.LastGoodHash != done.Hash {
		t.Errorf("last good %s after the rollback, want %s", failed.LastGoodHash, done.Hash)
	}
	// Every node of every replica served the last good.
	for {
		off := 0
		for _, r := range c.Replicas {
			nodes, err := r.Nodes(ctx)
			if err != nil {
				off++
				continue
			}
			for _, n := range nodes {
				if ha.ServedHash(n.Served) != failed.LastGoodHash {
					off++
				}
			}
		}
		if off == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d node(s) not back on the last good: %v", off, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	backAt := time.Now()
	run.rollbackWrites[0], run.rollbackWrites[1] = stop()
	mu.Lock()
	first := nackAt
	mu.Unlock()
	if first.IsZero() {
		t.Fatal("no canary NACKed")
	}
	run.firstNACK = first.Sub(began)
	run.failed = failedAt.Sub(first)
	run.lastGood = backAt.Sub(first)
	for _, n := range all {
		if v := n.AcceptedVersion(resource.RouteType); v != good {
			t.Errorf("node %s runs route configuration %s after the rollback, want the last good %s", n.ID(), v, good)
			break
		}
	}
	return run
}
