package daemon_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/daemon"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/fleetsim"
)

// canaryFiles is files with a RolloutPolicy: the canary stage (nodes
// labelled rollout-group: canary) bakes, then every node.
func canaryFiles(port string) map[string]string {
	fs := files(port)
	fs["platform/kustomization.yaml"] = "resources: [namespaces.yaml, gateways.yaml, rollout.yaml]\n"
	fs["platform/rollout.yaml"] = `apiVersion: gitxds.dev/v1alpha1
kind: RolloutPolicy
metadata: {name: default}
spec:
  ackTimeout: 10s
  stages:
  - {name: canary, nodeSelector: {matchLabels: {rollout-group: canary}}, bake: 30s}
  - {name: all, percent: 100}
`
	return fs
}

func failedWith(st status.Status, rev, reason string) (status.FailedRevision, bool) {
	for _, f := range st.FailedRevisions {
		if f.Revision == rev && f.Reason == reason {
			return f, true
		}
	}
	return status.FailedRevision{}, false
}

// Three replicas, each with its own state directory, meet on one Board.
// The only canary node is on a follower: it gets the new revision first
// (no stable node on any replica does), and its NACK fails the rollout
// the leader decides, so every replica puts its nodes back on the last
// good version and records the revision failed.
func TestHACanaryOnFollowerNACKRollsBackEveryReplica(t *testing.T) {
	e := newEnvFiles(t, canaryFiles("9001"))
	rs := newReplicas(e)
	ds := []*daemon.Daemon{rs.start("a"), rs.start("b"), rs.start("c")}
	var lead *daemon.Daemon
	waitUntil(t, "a leader", func() bool {
		for _, d := range ds {
			if d.Elector.IsLeader() {
				lead = d
				return true
			}
		}
		return false
	})
	var followers []*daemon.Daemon
	for _, d := range ds {
		if d != lead {
			followers = append(followers, d)
		}
	}
	head, _ := e.Repo.Head()
	for _, d := range ds {
		waitUntil(t, "every replica to serve the first revision", func() bool { return lastGood(d) == "main@sha1:"+head })
	}
	initial := lead.Reconciler.LastGood()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := func(addr, prefix string, n int, labels map[string]string) *fleetsim.Fleet {
		f, err := fleetsim.Start(ctx, n, addr, fleetsim.Options{Prefix: prefix, Labels: func(int) map[string]string { return labels }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		if _, err := f.WaitRuns(ctx, initial); err != nil {
			t.Fatal(err)
		}
		return f
	}
	canary := start(followers[0].XDSAddr, "canary", 1, map[string]string{"rollout-group": "canary"})
	stable := []*fleetsim.Fleet{
		start(lead.XDSAddr, "stable-lead", 2, map[string]string{"rollout-group": "stable"}),
		start(followers[1].XDSAddr, "stable-follower", 2, map[string]string{"rollout-group": "stable"}),
	}
	// The canary rejects every version but those of the first revision.
	var mu sync.Mutex
	rejected := map[string]string{} // type URL -> version
	var firstNACK time.Time
	canary.Node(0).Reject(func(typeURL, version string) string {
		if version == initial.Version(snapshot.Envoy, typeURL) {
			return ""
		}
		mu.Lock()
		rejected[typeURL] = version
		if firstNACK.IsZero() {
			firstNACK = time.Now()
		}
		mu.Unlock()
		return "injected: the canary rejects the new revision"
	})

	next := e.commit("9002")
	w0, r0 := rs.board.Writes()
	began := time.Now()
	for _, d := range ds {
		d.Reconciler.Trigger("test") // every replica polls and builds
	}
	for _, d := range ds {
		waitUntil(t, "every replica to record the revision failed", func() bool {
			_, ok := failedWith(d.Reconciler.Status(), next, status.ReasonNACK)
			return ok
		})
	}
	took := time.Since(began)
	w1, r1 := rs.board.Writes()
	t.Logf("commit polled to every replica rolled back: %s; Board writes: %d FleetState, %d reports", took.Round(time.Millisecond), w1-w0, r1-r0)
	f, _ := failedWith(lead.Reconciler.Status(), next, status.ReasonNACK)
	follower := strings.SplitN(followers[0].Elector.Identity(), "@", 2)[0]
	if !strings.Contains(f.Message, "canary-0 (replica "+follower+")") || !strings.Contains(f.Message, "stage canary") {
		t.Errorf("failure %q: want the canary node and its replica named", f.Message)
	}
	mu.Lock()
	t.Logf("leader %s: %s; decided %s after the follower's node NACKed", lead.Elector.Identity(), f.Message, f.At.Sub(firstNACK).Round(time.Millisecond))
	mu.Unlock()
	if _, err := canary.WaitRuns(ctx, initial); err != nil {
		t.Fatalf("the canary is not back on the last good version: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rejected) == 0 {
		t.Fatal("the canary never got the new revision")
	}
	for _, s := range stable {
		for typeURL, version := range rejected {
			if n := s.Responses(typeURL, version); n != 0 {
				t.Errorf("a stable node got %s version %s (%d responses)", typeURL, version, n)
			}
		}
		if _, err := s.WaitRuns(ctx, initial); err != nil {
			t.Error(err)
		}
	}
	if s, _, _ := rs.board.Client().Rollout(ctx); s.Revision != next || s.Phase != rollout.Failed || s.Reason != status.ReasonNACK {
		t.Errorf("FleetState %+v", s)
	}
	// GET /status on the other follower shows the fleet-wide rollout.
	var st status.Status
	if err := json.Unmarshal([]byte(get(t, "http://"+followers[1].AdminAddr+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Rollout == nil || st.Rollout.Revision != next || st.Rollout.Phase != status.RolloutFailed || st.LastAppliedRevision != "main@sha1:"+head {
		t.Errorf("follower's /status: rollout %+v, applied %s", st.Rollout, st.LastAppliedRevision)
	}
}

// The leader stops during the canary's bake: the new leader resumes the
// rollout at the canary stage with the rest of the bake (the same
// StartedAt and BakeUntil, a higher epoch), rather than start over or
// skip the bake, and the revision then succeeds on every node.
func TestHAFailoverResumesTheBake(t *testing.T) {
	fs := canaryFiles("9001")
	fs["platform/rollout.yaml"] = strings.Replace(fs["platform/rollout.yaml"], "bake: 30s", "bake: 2s", 1)
	e := newEnvFiles(t, fs)
	rs := newReplicas(e)
	a := rs.start("a")
	waitUntil(t, "a to lead", a.Elector.IsLeader)
	b := rs.start("b")
	head, _ := e.Repo.Head()
	waitUntil(t, "b to serve the first revision", func() bool { return lastGood(b) == "main@sha1:"+head })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	canary, err := fleetsim.Start(ctx, 1, b.XDSAddr, fleetsim.Options{Prefix: "canary",
		Labels: func(int) map[string]string { return map[string]string{"rollout-group": "canary"} }})
	if err != nil {
		t.Fatal(err)
	}
	defer canary.Close()

	next := e.commit("9002")
	a.Reconciler.Trigger("test")
	b.Reconciler.Trigger("test")
	board := rs.board.Client()
	var baking rollout.FleetState
	waitUntil(t, "the canary stage to bake", func() bool {
		s, ok, _ := board.Rollout(ctx)
		baking = s
		return ok && s.Revision == next && s.Stage == 0 && s.BakeUntil != nil
	})
	a.Close()
	waitUntil(t, "b to lead", b.Elector.IsLeader)
	var resumed rollout.FleetState
	waitUntil(t, "b to resume the rollout", func() bool {
		s, _, _ := board.Rollout(ctx)
		resumed = s
		return s.Epoch > baking.Epoch && s.Revision == next
	})
	if resumed.Phase == rollout.Progressing && (resumed.Stage != 0 || resumed.BakeUntil == nil || !resumed.BakeUntil.Equal(*baking.BakeUntil)) {
		t.Fatalf("resumed at stage %d bake until %v, want stage 0 until %v", resumed.Stage, resumed.BakeUntil, baking.BakeUntil)
	}
	waitUntil(t, "b to apply the revision", func() bool { return lastGood(b) == next })
	if now := time.Now(); now.Before(*baking.BakeUntil) {
		t.Fatalf("succeeded at %s, before the canary's bake ended (%s)", now, baking.BakeUntil)
	}
	final, _, _ := board.Rollout(ctx)
	if final.Phase != rollout.Succeeded || !final.StartedAt.Equal(baking.StartedAt) || final.Epoch <= baking.Epoch {
		t.Fatalf("final %+v; want Succeeded, started at %s, epoch above %d", final, baking.StartedAt, baking.Epoch)
	}
	if _, err := canary.WaitRuns(ctx, b.Reconciler.LastGood()); err != nil {
		t.Fatal(err)
	}
	t.Logf("epoch %d -> %d; resumed at stage %s with the bake until %s", baking.Epoch, final.Epoch, baking.StageName, baking.BakeUntil.Format(time.StampMilli))
}
